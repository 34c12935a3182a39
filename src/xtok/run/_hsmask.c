/* The masker's inner loop in C (optional; see NativeMatcher in xtok/run/matcher.py).

   Python's per-match cost (the scan callback, then building and merging spans) capped output
   dense with secrets at ~50 MB/s. Here each match is confirmed as the pattern behind its key
   (see xtok.run.mask._Literals, which this mirrors), the spans are sorted in C, and `emit`
   writes the masked bytes in one pass. Python keeps the rare work: wrapped base64.

   Keys of SAMPLE_MIN bytes or more (nearly all: a secret's forms and anchors) are not given to
   Hyperscan: its literal matcher reads every byte, and at ~140 keys for 20 secrets it ran at
   ~5 GB/s (this, ~16). An occurrence of a key of length L >= m covers L - 3 consecutive
   offsets, so it holds a 4-byte gram at one offset of every stride s = m - 3 (m the shortest
   such key): only those grams are looked up, first in a bitmap, then in tables of the 8 bytes
   around them; a hit is confirmed whole (see `sample`). Shorter keys, if any, still go to
   Hyperscan.

   Keys(keys, exact, longer, owners): the per-key tables of _Literals.
     scan(buf) -> (spans, anchors, cut): spans are the occurrences, by start, packed as
       native int64 pairs (start, end): not merged, as a scan of text with its wraps removed maps
       each back on its own; anchors the starts of anchor hits not inside an unbroken owner;
       cut the start of the earliest tail of buf that may still become a pattern's occurrence
       with what comes next (len(buf) if none): as _Literals.cut, from the keys alone.
     hits(buf) -> [(key index, end)]: every occurrence of every key.
   emit(buf, spans, cut, in_mark) -> (masked bytes of buf[:cut], reach): spans as scan packs
     them (by start; overlapping or touching ones become one mark).
   write(fd, buf, spans, cut, in_mark) -> (delivered, reach): emit's bytes written to fd,
     gathered from buf where it can; delivered is False if fd's reader is gone.
   keep_heap(): see there. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <hs.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

typedef struct {
    const char *p;
    Py_ssize_t n;
    Py_ssize_t off; /* owners: where the anchor lies in the pattern */
} Lit;

typedef struct {
    long long s, e;
} Span;

/* Keys this long or longer are sampled: each of their stride's offsets gets 8 known bytes
   around its gram (the next 8, or from 4 before, see `fill`), which needs at least 11. */
#define SAMPLE_MIN 12

/* One offset `off` of one sampled key: the 8 bytes at the probe (`ctx`, from the gram on, or
   from 4 bytes before it), and the key's first and last 8 bytes, which for keys of up to 16
   bytes confirm it whole without a call to memcmp. */
typedef struct {
    uint64_t ctx, head, tail;
    int32_t key, off, size; /* size: the key's, here to spare a dependent load */
} Probe;

/* Probes by a hash of ctx: bucket b holds probe[first[b]] to probe[first[b + 1]]. `filter`
   has the bits of this table's grams: in output dense with secrets nearly every probe passes
   the filter of both tables, while the gram there belongs to one of them. */
typedef struct {
    Probe *probe;
    uint32_t *first;
    uint64_t *filter;
    int bits;
    Py_ssize_t n;
} Table;

typedef struct {
    PyObject_HEAD
    hs_database_t *db; /* the keys shorter than SAMPLE_MIN, NULL if none */
    hs_scratch_t *scratch;
    int ready;
    Py_ssize_t nkeys;
    const char **key; /* each key's bytes (in refs) */
    Py_ssize_t stride; /* 0 if no key is sampled */
    uint64_t *filter; /* a bit per hash of the grams the tables hold */
    int fbits;
    Table next, prev; /* ctx from the gram on; ctx from 4 bytes before it */
    Py_ssize_t *size, *exact, *lfirst, *ofirst; /* lfirst/ofirst: nkeys + 1 offsets */
    Lit *longer, *owners;
    Lit *prefix; /* the keys that are a pattern's prefix (its first bytes), sorted */
    Py_ssize_t nprefix, tail; /* tail: the longest such key, less one */
    PyObject *refs; /* tuples of tuples: the patterns' bytes, alive and never replaced */
    /* Kept from scan to scan: growing them anew each time cost page faults. Like Hyperscan's
       scratch, they make one Keys usable by one thread at a time. */
    Span *spans;
    Py_ssize_t cap;
    Py_ssize_t *anchors;
    Py_ssize_t acap;
    /* A scan is under way. Python code can run inside one (a finalizer, when Python 3.11
       collects garbage as the result is built, or a thread it hands the GIL to): a nested scan
       of the same Keys would reallocate the buffers above under it. */
    int busy;
} Keys;

typedef struct {
    Keys *k;
    const char *buf;
    Py_ssize_t len;
    Span *spans;
    Py_ssize_t n, cap;
    Py_ssize_t sampled; /* spans[:sampled] came from `sample` */
    Py_ssize_t *anchors;
    Py_ssize_t na, acap;
    Py_ssize_t undecided;
    PyObject *hits; /* hits(): a list, else NULL */
    int failed;
} Ctx;

static int grow(void **arr, Py_ssize_t *cap, size_t item) {
    if (*cap > PY_SSIZE_T_MAX / 2 / (Py_ssize_t)item) return -1; /* cap2 * item must not wrap */
    Py_ssize_t cap2 = *cap ? *cap * 2 : 1024;
    void *p = PyMem_Realloc(*arr, (size_t)cap2 * item);
    if (!p) return -1;
    *arr = p;
    *cap = cap2;
    return 0;
}

static inline int push_span(Ctx *c, long long s, long long e) {
    if (c->n == c->cap && grow((void **)&c->spans, &c->cap, sizeof(Span)) < 0) return -1;
    c->spans[c->n].s = s;
    c->spans[c->n++].e = e;
    return 0;
}

static inline uint64_t load64(const char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* a[from:n] == b[from:n], where a[:from] == b[:from] is known: a word at a time, with no call
   for the few bytes a secret's form has past its key. */
static inline int same(const char *a, const char *b, Py_ssize_t from, Py_ssize_t n) {
    if (n < 8) return memcmp(a + from, b + from, (size_t)(n - from)) == 0;
    for (; from + 8 < n; from += 8)
        if (load64(a + from) != load64(b + from)) return 0;
    return load64(a + n - 8) == load64(b + n - 8);
}

/* Key `id` occurs in c->buf, ending at `end`. Nonzero stops the scan. */
static inline int found(Ctx *c, Py_ssize_t id, Py_ssize_t end) {
    Keys *k = c->k;
    Py_ssize_t start = end - k->size[id];
    if (c->hits) {
        PyObject *hit = Py_BuildValue("(nn)", id, end);
        if (!hit || PyList_Append(c->hits, hit) < 0) {
            Py_XDECREF(hit);
            c->failed = 1;
            return 1;
        }
        Py_DECREF(hit);
        return 0;
    }
    if (k->exact[id] && push_span(c, end - k->exact[id], end) < 0) goto oom;
    for (Py_ssize_t j = k->lfirst[id]; j < k->lfirst[id + 1]; j++) {
        const Lit *p = &k->longer[j];
        if (start + p->n <= c->len) {
            /* It starts with the key, which is there. */
            if (same(c->buf + start, p->p, k->size[id], p->n) &&
                push_span(c, start, start + p->n) < 0)
                goto oom;
        } else if (start < c->undecided && memcmp(c->buf + start, p->p, c->len - start) == 0) {
            c->undecided = start; /* it may still come whole */
        }
    }
    for (Py_ssize_t j = k->ofirst[id]; j < k->ofirst[id + 1]; j++) {
        const Lit *p = &k->owners[j];
        Py_ssize_t at = start - p->off;
        if (p->off > start || at + p->n > c->len || !same(c->buf + at, p->p, 0, p->n)) {
            if (c->na == c->acap && grow((void **)&c->anchors, &c->acap, sizeof(Py_ssize_t)) < 0)
                goto oom;
            c->anchors[c->na++] = start;
            break;
        }
    }
    return 0;
oom:
    c->failed = 2;
    return 1;
}

static int on_match(unsigned int id, unsigned long long from, unsigned long long to,
                    unsigned int flags, void *ctx) {
    (void)from;
    (void)flags;
    return found(ctx, (Py_ssize_t)id, (Py_ssize_t)to);
}

static inline uint32_t gram_hash(const char *p, int bits) {
    uint32_t g;
    memcpy(&g, p, 4);
    return (g * 0x9E3779B1u) >> (32 - bits);
}

static inline int has(const uint64_t *filter, uint32_t h) {
    return filter[h >> 6] >> (h & 63) & 1;
}

static inline uint32_t ctx_hash(uint64_t ctx, int bits) {
    return (uint32_t)((ctx * 0x9E3779B97F4A7C15ull) >> (64 - bits));
}

/* The probes of table t whose 8 bytes are `ctx`, taken at offset i of c->buf. */
static int lookup(Ctx *c, const Table *t, uint64_t ctx, Py_ssize_t i) {
    const Keys *k = c->k;
    uint32_t b = ctx_hash(ctx, t->bits);
    for (uint32_t x = t->first[b]; x < t->first[b + 1]; x++) {
        const Probe *p = &t->probe[x];
        if (p->ctx != ctx) continue;
        Py_ssize_t start = i - p->off, n = p->size;
        if (start < 0 || start + n > c->len) continue;
        const char *at = c->buf + start;
        if (load64(at) != p->head || load64(at + n - 8) != p->tail) continue;
        if (n > 16 && !same(at, k->key[p->key], 8, n)) continue;
        if (found(c, p->key, start + n)) return 1;
    }
    return 0;
}

/* The lookups at probe i, whose gram hashes to h, if it passes a table's filter. */
static int probe(Ctx *c, Py_ssize_t i, uint32_t h) {
    const Keys *k = c->k;
    const char *b = c->buf;
    if (i + 8 <= c->len && has(k->next.filter, h) && lookup(c, &k->next, load64(b + i), i))
        return 1;
    if (i >= 4 && has(k->prev.filter, h) && lookup(c, &k->prev, load64(b + i - 4), i)) return 1;
    return 0;
}

/* Every occurrence of every sampled key (see the top of this file). One of stride's offsets i
   lies in each occurrence at an offset j < stride of its key, with i + 4 inside it: the table
   `next` holds (key, j) where j + 8 fits in the key, `prev` the others, which then have j >= 4
   (as keys have at least SAMPLE_MIN bytes). */
static int sample(Ctx *c) {
    const Keys *k = c->k;
    const char *b = c->buf;
    Py_ssize_t n = c->len, s = k->stride, i = 0;
    const uint64_t *filter = k->filter;
    int bits = k->fbits;
    /* Four probes at a time, their loads independent: in log text nearly all miss the filter. */
#define PASSES(at) has(filter, gram_hash(b + (at), bits))
    for (; i + 3 * s + 4 <= n; i += 4 * s) {
        if (!(PASSES(i) | PASSES(i + s) | PASSES(i + 2 * s) | PASSES(i + 3 * s))) continue;
        for (Py_ssize_t j = i; j < i + 4 * s; j += s) {
            uint32_t h = gram_hash(b + j, bits);
            if (has(filter, h) && probe(c, j, h)) return 1;
        }
    }
#undef PASSES
    for (; i + 4 <= n; i += s) {
        uint32_t h = gram_hash(b + i, bits);
        if (has(filter, h) && probe(c, i, h)) return 1;
    }
    return 0;
}

/* Within a run of spans from one matcher, starts lie at most a key before where it found them
   (Hyperscan's run comes by end, `sample`'s by probe): nearly sorted already, so insertion sort
   is about linear. */
static void sort_run(Span *a, Py_ssize_t n) {
    for (Py_ssize_t i = 1; i < n; i++) {
        Span x = a[i];
        Py_ssize_t j = i;
        while (j > 0 && (a[j - 1].s > x.s)) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
}

/* a[:m] (sampled keys) and a[m:n] (Hyperscan's) sorted by start, then merged. */
static int sort_spans(Span *a, Py_ssize_t m, Py_ssize_t n) {
    sort_run(a, m);
    sort_run(a + m, n - m);
    if (m == 0 || m == n || a[m - 1].s <= a[m].s) return 0;
    Span *left = PyMem_Malloc((size_t)m * sizeof(Span));
    if (!left) return -1;
    memcpy(left, a, (size_t)m * sizeof(Span));
    Py_ssize_t i = 0, j = m, w = 0;
    while (i < m && j < n) a[w++] = a[j].s < left[i].s ? a[j++] : left[i++];
    while (i < m) a[w++] = left[i++];
    PyMem_Free(left);
    return 0;
}

static int lit_order(const void *a, const void *b) {
    const Lit *x = a, *y = b;
    int c = memcmp(x->p, y->p, (size_t)(x->n < y->n ? x->n : y->n));
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* Length of the longest tail of buf that is a proper prefix of a pattern, if shorter than the
   pattern's key. A tail that holds the whole key is found by the scan, and `undecided` holds it
   back if the pattern may still come whole: every pattern starts with its key. */
static Py_ssize_t short_tail(const Keys *k, const char *buf, Py_ssize_t len) {
    for (Py_ssize_t n = k->tail < len ? k->tail : len; n > 0; n--) {
        Lit piece = {buf + len - n, n, 0};
        Py_ssize_t lo = 0, hi = k->nprefix;
        while (lo < hi) {
            Py_ssize_t mid = lo + (hi - lo) / 2;
            if (lit_order(&k->prefix[mid], &piece) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        /* The piece itself may be a key: the next one may still start with it. */
        for (Py_ssize_t i = lo; i < lo + 2 && i < k->nprefix; i++)
            if (k->prefix[i].n > n && memcmp(k->prefix[i].p, piece.p, (size_t)n) == 0) return n;
    }
    return 0;
}

static int run_scan(Keys *self, Ctx *c, Py_buffer *view, PyObject *hits) {
    memset(c, 0, sizeof(*c));
    c->spans = self->spans;
    c->cap = self->cap;
    c->anchors = self->anchors;
    c->acap = self->acap;
    c->k = self;
    c->buf = view->buf;
    c->len = view->len;
    c->undecided = view->len;
    c->hits = hits;
    if (view->len > 0xffffffffLL) {
        PyErr_SetString(PyExc_ValueError, "buffer too large for one scan");
        return -1;
    }
    hs_error_t err = HS_SUCCESS;
    if (self->stride) sample(c);
    c->sampled = c->n;
    if (self->db && !c->failed)
        err = hs_scan(self->db, view->buf, (unsigned int)view->len, 0, self->scratch, on_match, c);
    self->spans = c->spans;
    self->cap = c->cap;
    self->anchors = c->anchors;
    self->acap = c->acap;
    if (c->failed == 2) PyErr_NoMemory();
    if (c->failed) return -1;
    if (err != HS_SUCCESS) {
        PyErr_Format(PyExc_RuntimeError, "hs_scan failed (%d)", err);
        return -1;
    }
    return 0;
}

static PyObject *Keys_scan(Keys *self, PyObject *arg) {
    Py_buffer view;
    Ctx c;
    PyObject *result = NULL, *packed = NULL, *anchors = NULL;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    if (run_scan(self, &c, &view, NULL) < 0) goto done;
    if (sort_spans(c.spans, c.sampled, c.n) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t cut = view.len - short_tail(self, view.buf, view.len);
    packed = PyBytes_FromStringAndSize((const char *)c.spans, c.n * (Py_ssize_t)sizeof(Span));
    anchors = PyList_New(c.na);
    if (!packed || !anchors) goto done;
    for (Py_ssize_t i = 0; i < c.na; i++) {
        PyObject *v = PyLong_FromSsize_t(c.anchors[i]);
        if (!v) goto done;
        PyList_SET_ITEM(anchors, i, v);
    }
    result = Py_BuildValue("(OOn)", packed, anchors, c.undecided < cut ? c.undecided : cut);
done:
    Py_XDECREF(packed);
    Py_XDECREF(anchors);
    PyBuffer_Release(&view);
    return result;
}

static PyObject *Keys_hits(Keys *self, PyObject *arg) {
    Py_buffer view;
    Ctx c;
    PyObject *hits = PyList_New(0);
    if (!hits) return NULL;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        Py_DECREF(hits);
        return NULL;
    }
    int rc = run_scan(self, &c, &view, hits);
    PyBuffer_Release(&view);
    if (rc < 0) Py_CLEAR(hits);
    return hits;
}

/* Fills `out` with the (pointer, length) of each bytes in the tuple `seq`. The pointers stay
   valid as long as `seq` does: a tuple of bytes (and of tuples of bytes) cannot change. */
static int literals(PyObject *seq, Lit *out, Py_ssize_t *count, int with_offset) {
    Py_ssize_t n = PyTuple_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(seq, i), *pattern = item;
        Py_ssize_t off = 0;
        if (with_offset) {
            if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
                PyErr_SetString(PyExc_TypeError, "owners must be (pattern, offset) tuples");
                return -1;
            }
            pattern = PyTuple_GET_ITEM(item, 0);
            off = PyLong_AsSsize_t(PyTuple_GET_ITEM(item, 1));
            if (off == -1 && PyErr_Occurred()) return -1;
            if (off < 0) { /* start - off must not overflow, nor reach past the buffer */
                PyErr_SetString(PyExc_ValueError, "an anchor's offset must not be negative");
                return -1;
            }
        }
        if (!PyBytes_Check(pattern)) {
            PyErr_SetString(PyExc_TypeError, "patterns must be bytes");
            return -1;
        }
        if (out) {
            out[*count].p = PyBytes_AS_STRING(pattern);
            out[*count].n = PyBytes_GET_SIZE(pattern);
            out[*count].off = off;
        }
        (*count)++;
    }
    return 0;
}

/* Replaces each sequence in `table` (a new tuple, not shared yet) with a tuple of its items,
   read once: Keys points into the patterns, so they must outlive it unchanged whatever the
   caller does with its lists (or an iterable that yields something else when read again). */
static int freeze(PyObject *table) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(table); i++) {
        PyObject *old = PyTuple_GET_ITEM(table, i), *inner = PySequence_Tuple(old);
        if (!inner) return -1;
        PyTuple_SET_ITEM(table, i, inner);
        Py_DECREF(old);
    }
    return 0;
}

/* Fills one table with the probes of the sampled keys that belong to it (`which`: 0 next,
   1 prev), in three passes over them: count, count per bucket, place. */
static int fill(Keys *k, Table *t, int which) {
    Py_ssize_t s = k->stride, n = 0;
    for (int pass = 0; pass < 3; pass++) {
        if (pass == 1) {
            if (n > (Py_ssize_t)UINT32_MAX - 1) return -1;
            t->bits = 1;
            while (((Py_ssize_t)1 << t->bits) < 4 * n) t->bits++;
            t->probe = PyMem_Calloc(n ? (size_t)n : 1, sizeof(Probe));
            t->first = PyMem_Calloc(((size_t)1 << t->bits) + 1, sizeof(uint32_t));
            t->filter = PyMem_Calloc((size_t)1 << (k->fbits - 6), sizeof(uint64_t));
            if (!t->probe || !t->first || !t->filter) return -1;
            t->n = n;
        } else if (pass == 2) { /* the counts become each bucket's end */
            size_t buckets = (size_t)1 << t->bits;
            for (size_t b = 1; b < buckets; b++) t->first[b] += t->first[b - 1];
            t->first[buckets] = (uint32_t)n;
        }
        for (Py_ssize_t i = 0; i < k->nkeys; i++) {
            Py_ssize_t size = k->size[i];
            for (Py_ssize_t j = 0; size >= SAMPLE_MIN && j < s; j++) {
                if ((j + 8 > size) != which) continue;
                if (pass == 0) {
                    n++;
                    continue;
                }
                uint64_t ctx = load64(k->key[i] + j - 4 * which);
                uint32_t b = ctx_hash(ctx, t->bits);
                if (pass == 1) {
                    t->first[b]++;
                    continue;
                }
                /* Filled from each bucket's end down, so `first` ends as each one's start. */
                Probe *p = &t->probe[--t->first[b]];
                p->ctx = ctx;
                p->head = load64(k->key[i]);
                p->tail = load64(k->key[i] + size - 8);
                p->key = (int32_t)i;
                p->off = (int32_t)j;
                p->size = (int32_t)size;
                uint32_t h = gram_hash(k->key[i] + j, k->fbits);
                k->filter[h >> 6] |= (uint64_t)1 << (h & 63);
                t->filter[h >> 6] |= (uint64_t)1 << (h & 63);
            }
        }
    }
    return 0;
}

/* The sampling tables: stride from the shortest sampled key, a filter of ~64 bits per gram
   (fewer let through a lookup per ~20 probes of log text). */
static int place(Keys *k) {
    Py_ssize_t shortest = 0, grams;
    for (Py_ssize_t i = 0; i < k->nkeys; i++)
        if (k->size[i] >= SAMPLE_MIN && (!shortest || k->size[i] < shortest)) shortest = k->size[i];
    if (!shortest) return 0;
    /* Any stride up to shortest - 3 finds them all; longer ones would only grow the tables
       (the masker's keys have at most 32 bytes, `hits` alone takes any). */
    k->stride = (shortest < 32 ? shortest : 32) - 3;
    grams = k->nkeys * k->stride;
    for (k->fbits = 12; k->fbits < 24 && ((Py_ssize_t)1 << k->fbits) < 64 * grams; k->fbits++) {
    }
    k->filter = PyMem_Calloc((size_t)1 << (k->fbits - 6), sizeof(uint64_t));
    if (!k->filter || fill(k, &k->next, 0) < 0 || fill(k, &k->prev, 1) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static int Keys_init(Keys *self, PyObject *args, PyObject *kw) {
    static char *names[] = {"keys", "exact", "longer", "owners", NULL};
    PyObject *keys, *exact, *longer, *owners;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!O!O!O!", names, &PyList_Type, &keys, &PyList_Type,
                                     &exact, &PyList_Type, &longer, &PyList_Type, &owners))
        return -1;
    Py_ssize_t n = PyList_GET_SIZE(keys);
    if (n == 0 || PyList_GET_SIZE(exact) != n || PyList_GET_SIZE(longer) != n ||
        PyList_GET_SIZE(owners) != n || n > 0x7fffffff) {
        PyErr_SetString(PyExc_ValueError, "keys and their tables must be non-empty and alike");
        return -1;
    }
    if (self->refs) {
        PyErr_SetString(PyExc_RuntimeError, "Keys is initialised once");
        return -1;
    }
    /* From here it reads only its own snapshots of the tables: Python code may run (an
       iterable's __iter__, a finalizer) and change the caller's lists, or call __init__ again,
       which finds `refs` claimed. PyList_AsTuple runs none: the sizes checked above hold. */
    self->refs = Py_BuildValue("(NNNN)", PyList_AsTuple(keys), PyList_AsTuple(exact),
                               PyList_AsTuple(longer), PyList_AsTuple(owners));
    if (!self->refs) return -1;
    keys = PyTuple_GET_ITEM(self->refs, 0);
    exact = PyTuple_GET_ITEM(self->refs, 1);
    longer = PyTuple_GET_ITEM(self->refs, 2);
    owners = PyTuple_GET_ITEM(self->refs, 3);
    if (freeze(longer) < 0 || freeze(owners) < 0) return -1;
    self->nkeys = n;
    self->key = PyMem_Calloc(n, sizeof(char *));
    self->size = PyMem_Calloc(n, sizeof(Py_ssize_t));
    self->exact = PyMem_Calloc(n, sizeof(Py_ssize_t));
    self->lfirst = PyMem_Calloc(n + 1, sizeof(Py_ssize_t));
    self->ofirst = PyMem_Calloc(n + 1, sizeof(Py_ssize_t));
    const char **exprs = PyMem_Calloc(n, sizeof(char *));
    size_t *lens = PyMem_Calloc(n, sizeof(size_t));
    unsigned int *flags = PyMem_Calloc(n, sizeof(unsigned int));
    unsigned int *ids = PyMem_Calloc(n, sizeof(unsigned int));
    int rc = -1;
    if (!self->key || !self->size || !self->exact || !self->lfirst || !self->ofirst || !exprs ||
        !lens || !flags || !ids) {
        PyErr_NoMemory();
        goto done;
    }
    /* First pass counts, second fills. */
    Py_ssize_t nl = 0, no = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *key = PyTuple_GET_ITEM(keys, i);
        if (!PyBytes_Check(key) || PyBytes_GET_SIZE(key) == 0) {
            PyErr_SetString(PyExc_TypeError, "keys must be non-empty bytes");
            goto done;
        }
        if (PyBytes_GET_SIZE(key) > INT32_MAX) { /* a Probe holds its size in 32 bits */
            PyErr_SetString(PyExc_ValueError, "a key is at most 2 GiB");
            goto done;
        }
        self->key[i] = PyBytes_AS_STRING(key);
        self->size[i] = PyBytes_GET_SIZE(key);
        self->exact[i] = PyLong_AsSsize_t(PyTuple_GET_ITEM(exact, i));
        if (self->exact[i] == -1 && PyErr_Occurred()) goto done;
        if (self->exact[i] < 0 || self->exact[i] > self->size[i]) {
            PyErr_SetString(PyExc_ValueError, "an exact length is 0 or at most its key's");
            goto done;
        }
        self->lfirst[i] = nl;
        self->ofirst[i] = no;
        if (literals(PyTuple_GET_ITEM(longer, i), NULL, &nl, 0) < 0 ||
            literals(PyTuple_GET_ITEM(owners, i), NULL, &no, 1) < 0)
            goto done;
    }
    self->lfirst[n] = nl;
    self->ofirst[n] = no;
    self->longer = PyMem_Calloc(nl ? nl : 1, sizeof(Lit));
    self->owners = PyMem_Calloc(no ? no : 1, sizeof(Lit));
    if (!self->longer || !self->owners) {
        PyErr_NoMemory();
        goto done;
    }
    nl = no = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (literals(PyTuple_GET_ITEM(longer, i), self->longer, &nl, 0) < 0 ||
            literals(PyTuple_GET_ITEM(owners, i), self->owners, &no, 1) < 0)
            goto done;
    }
    self->prefix = PyMem_Calloc((size_t)n, sizeof(Lit));
    if (!self->prefix) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!self->exact[i] && self->lfirst[i] == self->lfirst[i + 1]) continue;
        self->prefix[self->nprefix].p = self->key[i];
        self->prefix[self->nprefix++].n = self->size[i];
        if (self->size[i] - 1 > self->tail) self->tail = self->size[i] - 1;
    }
    qsort(self->prefix, (size_t)self->nprefix, sizeof(Lit), lit_order);
    if (place(self) < 0) goto done;
    unsigned int nshort = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (self->size[i] >= SAMPLE_MIN) continue;
        exprs[nshort] = PyBytes_AS_STRING(PyTuple_GET_ITEM(keys, i));
        lens[nshort] = (size_t)self->size[i];
        ids[nshort++] = (unsigned int)i;
    }
    if (nshort) {
        hs_compile_error_t *error = NULL;
        if (hs_compile_lit_multi(exprs, flags, ids, lens, nshort, HS_MODE_BLOCK, NULL, &self->db,
                                 &error) != HS_SUCCESS) {
            /* Only the pattern's index: the patterns are secrets, and Hyperscan's message may
               quote what it could not compile. */
            PyErr_Format(PyExc_RuntimeError, "Hyperscan could not compile masking pattern %d",
                         error ? error->expression : -1);
            hs_free_compile_error(error);
            goto done;
        }
        if (hs_alloc_scratch(self->db, &self->scratch) != HS_SUCCESS) {
            PyErr_NoMemory();
            goto done;
        }
    }
    self->ready = 1;
    rc = 0;
done:
    PyMem_Free(exprs);
    PyMem_Free(lens);
    PyMem_Free(flags);
    PyMem_Free(ids);
    return rc;
}

static void Keys_dealloc(Keys *self) {
    if (self->scratch) hs_free_scratch(self->scratch);
    if (self->db) hs_free_database(self->db);
    PyMem_Free(self->key);
    PyMem_Free(self->prefix);
    PyMem_Free(self->filter);
    PyMem_Free(self->next.probe);
    PyMem_Free(self->next.first);
    PyMem_Free(self->next.filter);
    PyMem_Free(self->prev.probe);
    PyMem_Free(self->prev.first);
    PyMem_Free(self->prev.filter);
    PyMem_Free(self->size);
    PyMem_Free(self->exact);
    PyMem_Free(self->lfirst);
    PyMem_Free(self->ofirst);
    PyMem_Free(self->longer);
    PyMem_Free(self->owners);
    PyMem_Free(self->spans);
    PyMem_Free(self->anchors);
    Py_XDECREF(self->refs);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Keys_checked(Keys *self, PyObject *arg, PyObject *(*fn)(Keys *, PyObject *)) {
    if (!self->ready) { /* never initialised, or its __init__ failed */
        PyErr_SetString(PyExc_RuntimeError, "Keys is not initialised");
        return NULL;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "Keys is in use by another scan");
        return NULL;
    }
    self->busy = 1;
    PyObject *result = fn(self, arg);
    self->busy = 0;
    return result;
}

static PyObject *Keys_scan_method(PyObject *self, PyObject *arg) {
    return Keys_checked((Keys *)self, arg, Keys_scan);
}

static PyObject *Keys_hits_method(PyObject *self, PyObject *arg) {
    return Keys_checked((Keys *)self, arg, Keys_hits);
}

static PyMethodDef Keys_methods[] = {
    {"scan", Keys_scan_method, METH_O, "(spans, anchors, cut) of a buffer"},
    {"hits", Keys_hits_method, METH_O, "[(key index, end)] of every key occurrence"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject KeysType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "xtok.run._hsmask.Keys",
    .tp_basicsize = sizeof(Keys),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A compiled set of keys and the patterns behind them",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Keys_init,
    .tp_dealloc = (destructor)Keys_dealloc,
    .tp_methods = Keys_methods,
};

#define SLACK 32
/* Up to this many occurrences, `write` hands writev the runs of buf between them; past it one
   masked copy is cheaper (the kernel would copy each run on its own). */
#define FEW 64
static const char MARK[] = "***";

/* Walks buf[:cut] masked, piece by piece: runs of buf between masked runs, and marks. */
typedef struct {
    const char *b, *spans;
    Py_ssize_t len, n, i, cut;
    long long pos, reach; /* the next unmasked byte; the end of the masked run so far */
    int mark;             /* a mark comes before the next run */
} Walk;

static int walk_start(Walk *k, Py_buffer *buf, Py_buffer *spans, Py_ssize_t cut, int in_mark) {
    if (cut < 0 || cut > buf->len || spans->len % (Py_ssize_t)sizeof(Span)) {
        PyErr_SetString(PyExc_ValueError, "bad cut or spans");
        return -1;
    }
    memset(k, 0, sizeof(*k));
    k->b = buf->buf;
    k->len = buf->len;
    k->spans = spans->buf;
    k->n = spans->len / (Py_ssize_t)sizeof(Span);
    k->cut = cut;
    k->reach = in_mark ? 0 : -1;
    if (k->n >= (PY_SSIZE_T_MAX - cut - SLACK) / 2) { /* only where Py_ssize_t is 32 bits */
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* The next piece: 1 a run of buf (*p, *size), 2 a mark, 0 none left, -1 a bad span. */
static inline int walk_next(Walk *k, const char **p, Py_ssize_t *size) {
    if (k->mark) {
        k->mark = 0;
        return 2;
    }
    while (k->i < k->n) {
        Span r; /* copied: a buffer view need not be aligned for Span */
        memcpy(&r, k->spans + k->i++ * (Py_ssize_t)sizeof(Span), sizeof(Span));
        if (r.s >= k->cut) {
            k->i = k->n;
            break;
        }
        if (r.s < 0 || r.e > k->len || r.s >= r.e) {
            PyErr_SetString(PyExc_ValueError, "bad span");
            return -1;
        }
        long long from = k->pos;
        int opens = r.s > k->reach;
        if (r.e > k->reach) k->pos = k->reach = r.e;
        if (!opens) continue;
        if (r.s == from) return 2;
        *p = k->b + from;
        *size = (Py_ssize_t)(r.s - from);
        k->mark = 1;
        return 1;
    }
    if (k->pos >= k->cut) return 0;
    *p = k->b + k->pos;
    *size = (Py_ssize_t)(k->cut - k->pos);
    k->pos = k->cut;
    return 1;
}

/* Each mark stands for at least one byte of buf[:cut]: at most 2 more bytes per span; and
   SLACK past the end, which a short copy may write over. */
static Py_ssize_t masked_size(const Walk *k) {
    return k->cut + 2 * (k->n + 1) + SLACK;
}

/* Writes the pieces from `o` on; returns the end, or NULL on a bad span. */
static char *copy_masked(Walk *k, char *o) {
    const char *p = NULL, *end = k->b + k->len;
    Py_ssize_t size = 0;
    int kind;
    while ((kind = walk_next(k, &p, &size)) > 0) {
        if (kind == 2) {
            memcpy(o, MARK, 3);
            o += 3;
        } else {
            /* Between occurrences dense in output, a few bytes: one fixed-size copy (inlined,
               no call), cut to size by where `o` goes next. */
            if (size <= SLACK && end - p >= SLACK)
                memcpy(o, p, SLACK);
            else
                memcpy(o, p, (size_t)size);
            o += size;
        }
    }
    return kind < 0 ? NULL : o;
}

static PyObject *emit(PyObject *module, PyObject *args) {
    (void)module;
    Py_buffer buf, spans;
    Py_ssize_t cut;
    int in_mark;
    Walk k;
    if (!PyArg_ParseTuple(args, "y*y*np", &buf, &spans, &cut, &in_mark)) return NULL;
    PyObject *result = NULL, *out = NULL;
    if (walk_start(&k, &buf, &spans, cut, in_mark) < 0) goto done;
    out = PyBytes_FromStringAndSize(NULL, masked_size(&k));
    if (!out) goto done;
    char *end = copy_masked(&k, PyBytes_AS_STRING(out));
    if (!end || _PyBytes_Resize(&out, end - PyBytes_AS_STRING(out)) < 0) goto done;
    result = Py_BuildValue("(OL)", out, k.reach);
done:
    Py_XDECREF(out);
    PyBuffer_Release(&buf);
    PyBuffer_Release(&spans);
    return result;
}

/* All of iov[:count] to fd. 1 written, 0 its reader is gone, -1 an exception (an error as
   os.write raises it, or one from a signal handler). As with os.write in a loop, the handlers
   of a signal that cut a write short run before the rest is written: xtok forwards a SIGTERM
   to the command even while its output waits on a slow reader. */
static int write_all(int fd, struct iovec *iov, int count) {
    while (count > 0) {
        ssize_t done;
        int error;
        /* Other threads run while the reader is slow (buf and spans are held as buffers). */
        Py_BEGIN_ALLOW_THREADS
        done = writev(fd, iov, count < IOV_MAX ? count : IOV_MAX);
        error = errno;
        Py_END_ALLOW_THREADS
        errno = error;
        if (done < 0) {
            if (errno == EINTR) {
                if (PyErr_CheckSignals() < 0) return -1;
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                /* Whoever shares our output may have made it non-blocking: wait, as a
                   blocking write would. */
                struct pollfd ready = {fd, POLLOUT, 0};
                int polled;
                Py_BEGIN_ALLOW_THREADS
                polled = poll(&ready, 1, -1);
                error = errno;
                Py_END_ALLOW_THREADS
                if (polled < 0 && error == EINTR && PyErr_CheckSignals() < 0) return -1;
                if (polled >= 0 || error == EINTR) continue;
                errno = error;
            }
            if (errno == EPIPE) return 0;
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        for (; count > 0 && (size_t)done >= iov->iov_len; count--, iov++)
            done -= (ssize_t)iov->iov_len;
        if (count > 0) { /* a partial write: a signal may have cut it short */
            iov->iov_base = (char *)iov->iov_base + done;
            iov->iov_len -= (size_t)done;
            if (PyErr_CheckSignals() < 0) return -1;
        }
    }
    return 1;
}

/* emit's bytes, written to fd: with few occurrences, as the runs of buf between them (no copy
   of buf at all). */
static PyObject *write_masked(PyObject *module, PyObject *args) {
    (void)module;
    Py_buffer buf, spans;
    Py_ssize_t cut;
    int fd, in_mark, rc = -1;
    Walk k;
    char *copy = NULL;
    struct iovec iov[2 * FEW + 1];
    int count = 0;
    if (!PyArg_ParseTuple(args, "iy*y*np", &fd, &buf, &spans, &cut, &in_mark)) return NULL;
    if (walk_start(&k, &buf, &spans, cut, in_mark) < 0) goto done;
    if (k.n > FEW) {
        copy = PyMem_Malloc((size_t)masked_size(&k));
        if (!copy) {
            PyErr_NoMemory();
            goto done;
        }
        char *end = copy_masked(&k, copy);
        if (!end) goto done;
        iov[count].iov_base = copy;
        iov[count++].iov_len = (size_t)(end - copy);
    } else {
        const char *p = NULL;
        Py_ssize_t size = 0;
        int kind;
        while ((kind = walk_next(&k, &p, &size)) > 0) { /* at most 2 pieces a span, and one */
            iov[count].iov_base = (void *)(kind == 2 ? MARK : p);
            iov[count++].iov_len = (size_t)(kind == 2 ? 3 : size);
        }
        if (kind < 0) goto done;
    }
    rc = write_all(fd, iov, count);
done:
    PyMem_Free(copy);
    PyBuffer_Release(&buf);
    PyBuffer_Release(&spans);
    if (rc < 0) return NULL;
    return Py_BuildValue("(OL)", rc ? Py_True : Py_False, k.reach);
}

/* A relay allocates a read buffer and a masked output of a few hundred KiB per chunk. glibc
   maps each such block and unmaps it when freed, or trims the heap under it: every chunk then
   faulted its pages in anew (a quarter of a dense relay's time). Keep them on the heap. */
static PyObject *keep_heap(PyObject *module, PyObject *unused) {
    (void)module;
    (void)unused;
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"emit", emit, METH_VARARGS, "(masked bytes of buf[:cut], reach)"},
    {"write", write_masked, METH_VARARGS, "(whether fd took emit's bytes, reach)"},
    {"keep_heap", keep_heap, METH_NOARGS, "keep blocks of up to 4 MiB on the heap (glibc)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_hsmask",
    .m_doc = "The masker's inner loop: matching, masking, writing",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__hsmask(void) {
    if (PyType_Ready(&KeysType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&KeysType);
    if (PyModule_AddObject(m, "Keys", (PyObject *)&KeysType) < 0) {
        Py_DECREF(&KeysType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
