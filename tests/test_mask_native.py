"""The masker's C extension (`_hsmask`) against the pure-Python path, and against misuse.

The C path must mask exactly as the Python path does (`_Literals._scan` and `_pieces`, driven
by a non-native matcher) and as `test_mask.reference`, for any input and any chunking: the
command whose output it masks is hostile. Called wrongly from Python, it must raise, never
crash: the misuse that would corrupt memory runs in a child process, so a crash fails the test
instead of killing the suite.
"""

from __future__ import annotations

import base64
import copy
import itertools
import mmap
import random
import subprocess
import sys
import tempfile
import textwrap
import threading
from array import array

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_mask import reference, wrap

from xtok.run.mask import Masker, Patterns, _Literals, _pieces
from xtok.run.matcher import AhoCorasickMatcher, NativeMatcher, PythonMatcher, best
from xtok.run.unwrap import B64, Wrappable
from xtok.run.variants import patterns_for

_hsmask = pytest.importorskip("xtok.run._hsmask")

# Alphabets that make occurrences overlap, nest and touch, or that the masker treats specially
# (NUL, line breaks, the base64 characters of wrapped runs).
ALPHABETS = [b"ab", b"aab", b"a\0\r\n", b"ab\n", B64[:4] + b"\r\n", B64, bytes(range(256))]


def unpack(runs: bytes) -> list[tuple[int, int]]:
    flat = array("q", runs)
    return list(zip(flat[::2], flat[1::2], strict=True))


def pack(spans: list[tuple[int, int]]) -> bytes:
    return array("q", [x for span in spans for x in span]).tobytes()


@st.composite
def word(draw: st.DrawFn, alphabet: bytes, min_size: int = 0, max_size: int = 40) -> bytes:
    return bytes(draw(st.lists(st.sampled_from(alphabet), min_size=min_size, max_size=max_size)))


@st.composite
def scenario(draw: st.DrawFn) -> tuple[list[bytes], bytes, list[int]]:
    """(patterns, stream, chunk sizes): secrets and noise over one hostile alphabet."""
    alphabet = draw(st.sampled_from(ALPHABETS))
    secrets = draw(st.lists(word(alphabet, 4, 24), min_size=1, max_size=4))
    if draw(st.booleans()):  # self-overlapping: a short period repeated
        period = draw(word(alphabet, 1, 3))
        secrets.append(period * draw(st.integers(4 // len(period) + 1, 30)))
    if draw(st.booleans()):  # long enough for its base64 to wrap at 64 columns
        secrets.append(draw(word(alphabet, 48, 160)))
    if draw(st.integers(0, 24)) == 0:  # long, up to Secrets Manager's 64 KiB
        rnd = random.Random(draw(st.integers(0, 2**32)))
        secrets.append(bytes(rnd.choices(alphabet, k=draw(st.integers(100, 65_536)))))
    encode = draw(st.booleans())
    patterns = [p for s in secrets for p in patterns_for(s)] if encode else secrets
    parts: list[bytes] = []
    for _ in range(draw(st.integers(1, 8))):
        parts.append(draw(word(alphabet)))
        pattern = draw(st.sampled_from(patterns))
        form = draw(st.sampled_from(["whole", "prefix", "wrapped", "b64"]))
        if form == "prefix":  # held back, then turns out not to be one
            parts.append(pattern[: draw(st.integers(1, max(1, len(pattern) - 1)))])
        elif form in ("wrapped", "b64"):  # base64 of a secret, wrapped at 64 or 76 with LF/CRLF
            secret = draw(st.sampled_from(secrets))
            encoded = base64.b64encode(bytes(draw(st.integers(0, 2))) + secret)
            if form == "wrapped":
                width = draw(st.sampled_from([64, 76]))
                # After other base64 on its line, so the wraps fall anywhere, or so the first of
                # back-to-back copies ends at a wrap (they touch only once it is removed).
                lead = (B64 * 2)[: draw(st.sampled_from([len(B64), -len(encoded) % width]))]
                lead = lead[: draw(st.integers(0, len(lead)))] if draw(st.booleans()) else lead
                copies = encoded * draw(st.integers(1, 3))
                encoded = wrap(lead + copies, width, draw(st.sampled_from([b"\n", b"\r\n"])))
            parts.append(encoded)
        else:
            parts.append(pattern)
    stream = b"".join(parts)
    sizes = draw(
        st.lists(st.one_of(st.integers(0, 17), st.integers(0, 200_000), st.just(0)), max_size=30)
    )
    return patterns, stream, sizes


def feed_all(masker: Masker, stream: bytes, sizes: list[int]) -> list[bytes]:
    """What `masker` writes after each chunk (empty chunks included) and at the end."""
    out, pos = [], 0
    for n in sizes:
        out.append(masker.feed(stream[pos : pos + n]))
        pos += n
    out.append(masker.feed(stream[pos:]))
    out.append(masker.flush())
    return out


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=scenario())
def test_the_c_path_masks_as_the_python_path_and_the_reference(
    case: tuple[list[bytes], bytes, list[int]],
) -> None:
    """Chunk by chunk the C path writes what the Python path writes, and in all what the
    reference masks in the unchunked stream."""
    assert best([b"abcd"]).name == "native"
    patterns, stream, sizes = case
    native = feed_all(Masker(Patterns(patterns, NativeMatcher)), stream, sizes)
    python = feed_all(Masker(Patterns(patterns, PythonMatcher)), stream, sizes)
    assert native == python
    # As `xtok run` builds it: C for the stream, Aho-Corasick around anchors and tails.
    assert feed_all(Masker(Patterns(patterns)), stream, sizes) == python
    if len(stream) * len(patterns) < 2_000_000:  # the reference is quadratic
        assert b"".join(native) == reference(stream, patterns)


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    count=st.integers(500, 4000),
    alphabet=st.sampled_from([b"ab", b"abc", B64]),
    sizes=st.lists(st.integers(0, 5000), max_size=10),
)
def test_thousands_of_patterns(seed: int, count: int, alphabet: bytes, sizes: list[int]) -> None:
    """Thousands of short patterns over a tiny alphabet overlap everywhere. The Python path is
    driven by the Aho-Corasick matcher here (the pure-Python one would take minutes): the
    masking logic it drives is the same `_scan` and `_pieces` as with `PythonMatcher`."""
    rnd = random.Random(seed)
    patterns = [bytes(rnd.choices(alphabet, k=rnd.randint(4, 40))) for _ in range(count)]
    stream = b"".join(
        rnd.choice(patterns) if rnd.random() < 0.3 else bytes(rnd.choices(alphabet, k=9))
        for _ in range(600)
    )
    native = feed_all(Masker(Patterns(patterns, NativeMatcher)), stream, sizes)
    python = feed_all(Masker(Patterns(patterns, AhoCorasickMatcher)), stream, sizes)
    assert native == python


def python_literals(items: list[bytes]) -> _Literals:
    return _Literals(sorted(set(items)), PythonMatcher, PythonMatcher, anchored=True)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), alphabet=st.sampled_from(ALPHABETS))
def test_scan_finds_what_the_python_scan_finds(data: st.DataObject, alphabet: bytes) -> None:
    """Keys.scan: the same occurrences (by start, each on its own), anchors and tail held back
    as `_scan` and `cut`."""
    items = data.draw(st.lists(word(alphabet, 1, 70), min_size=1, max_size=12))
    # Wrappable patterns are keyed by their prefix and also matched by their other anchors.
    items = [Wrappable(p) if len(p) > 1 and data.draw(st.booleans()) else p for p in items]
    buf = data.draw(word(alphabet, 0, 300))
    python = python_literals(items)
    native = _Literals(sorted(set(items)), NativeMatcher, PythonMatcher, anchored=True)
    assert native.native is not None
    spans, anchors, undecided = python._scan(buf)
    packed, c_anchors, c_cut = native.native.spans(buf)
    c_spans = unpack(packed)
    assert sorted(c_spans) == sorted(spans)
    assert [start for start, _ in c_spans] == sorted(start for start, _ in spans)
    assert sorted(c_anchors) == sorted(anchors)
    assert c_cut == python.cut(buf, undecided)


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_emit_writes_what_pieces_hold(data: st.DataObject) -> None:
    """emit over any sorted, possibly overlapping or touching runs, any cut, either in_mark."""
    buf = data.draw(st.binary(max_size=200))
    bound = st.integers(0, len(buf))
    pairs = data.draw(st.lists(st.tuples(bound, bound), max_size=20))
    spans = sorted((min(a, b), max(a, b)) for a, b in pairs if a != b)
    cut = data.draw(bound)
    in_mark = data.draw(st.booleans())
    pieces, reach = _pieces(buf, list(spans), cut, in_mark)
    assert _hsmask.emit(buf, pack(spans), cut, in_mark) == (b"".join(pieces), reach)


def run_child(code: str) -> str:
    """Run `code` in a fresh interpreter; a crash (a signal, an ASan report) fails the test."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    return done.stdout


def test_pattern_lists_changed_after_init_do_not_reach_the_scan() -> None:
    """Keys keeps its own copy of the pattern tables: emptying a caller's list (which frees a
    long pattern) used to leave the scan reading freed memory."""
    out = run_child(
        """
        from xtok.run._hsmask import Keys
        long = [b"abcdefgh" + b"X" * (8 << 20)]
        owners = [(b"xx" + long[0], 2)]
        keys = Keys([b"abcdefgh"], [0], [long], [owners])
        text = owners[0][0]
        long.clear()
        owners.clear()
        junk = [bytes(8 << 20) for _ in range(4)]
        runs, anchors, undecided = keys.scan(text)
        print(len(runs), anchors, undecided == len(text))
        """
    )
    assert out.split() == ["16", "[]", "True"]


def test_an_iterable_read_twice_cannot_overflow_the_tables() -> None:
    """Each table entry is read once: an iterable that yields more the second time used to
    write past the end of the array sized by the first pass."""
    out = run_child(
        """
        from xtok.run._hsmask import Keys
        class Grows:
            calls = 0
            def __iter__(self):
                Grows.calls += 1
                return iter([b"abcdefghij"] * (1 if Grows.calls == 1 else 100_000))
        keys = Keys([b"abcdefgh"], [0], [Grows()], [()])
        runs, _, _ = keys.scan(b"abcdefghij")
        print(Grows.calls, len(runs))
        """
    )
    assert out.split() == ["1", "16"]


def test_an_anchor_offset_out_of_range_is_refused() -> None:
    """A negative offset made `start - offset` overflow and the scan compare outside the
    buffer; now it is refused when the keys are built, like an exact length past the key's."""
    run_child(
        """
        import sys
        from xtok.run._hsmask import Keys
        for owners in ([(b"zzzzzzzz", -sys.maxsize - 1)], [(b"zz", -1)], [(b"zz", "1")]):
            try:
                Keys([b"abcd"], [0], [()], [owners]).scan(b"xxxxabcd")
            except (ValueError, TypeError):
                continue
            raise SystemExit("accepted")
        """
    )
    for exact in (-1, 5, 2**40):
        with pytest.raises(ValueError):
            _hsmask.Keys([b"abcd"], [exact], [()], [()])
    with pytest.raises(OverflowError):
        _hsmask.Keys([b"abcd"], [2**70], [()], [()])


def test_a_scan_reentered_from_a_finalizer_is_refused() -> None:
    """Python 3.11 collects garbage when C code allocates: a finalizer could run another scan
    of the same Keys in the middle of one and reallocate the buffers the first still read
    (AddressSanitizer: heap-use-after-free). Keys now refuses a scan while one is under way:
    the finalizer's RuntimeError is unraisable. Python 3.12 collects only between bytecodes,
    where the finalizer's scan is no longer nested and succeeds."""
    out = run_child(
        """
        import gc, sys
        from xtok.run._hsmask import Keys
        keys = Keys([b"abcd"], [0], [()], [((b"abcdZZ", 0),)])
        errors = []
        sys.unraisablehook = lambda u: errors.append(type(u.exc_value).__name__)
        class Bomb:
            def __del__(self):
                keys.scan(b"abcd" * 50_000)
        keys.scan(b"abcd")
        results = set()
        for _ in range(5):
            gc.disable()
            bomb = Bomb()
            bomb.cycle = bomb
            del bomb
            # Lists from the free list are not counted: with none left, the scan's list of
            # anchors is the allocation that starts a collection.
            hold = [[] for _ in range(200)]
            gc.set_threshold(1)
            gc.enable()
            results.add(tuple(keys.scan(b"abcd" * 10)[1]))
            gc.set_threshold(700)
            del hold
        print(results == {tuple(range(0, 40, 4))}, ",".join(sorted(set(errors))) or "-")
        """
    )
    assert out.split() == ["True", "RuntimeError" if sys.version_info < (3, 12) else "-"]


def test_misuse_raises() -> None:
    """Wrong types and values, buffers of every kind, an uninitialised Keys, re-init."""
    keys = _hsmask.Keys([b"abcd"], [4], [()], [()])
    for bad in ("abcd", 3, None, [b"abcd"]):
        with pytest.raises(TypeError):
            keys.scan(bad)
        with pytest.raises(TypeError):
            keys.hits(bad)
    for buf in (bytearray(b"xabcd"), memoryview(b"xabcd"), memoryview(b"__xabcd")[2:], b"xabcd"):
        assert unpack(keys.scan(buf)[0]) == [(1, 5)]
        assert keys.hits(buf) == [(0, 5)]
    for empty in (b"", bytearray(), memoryview(b"")):
        assert keys.scan(empty) == (b"", [], 0)
        assert keys.hits(empty) == []
    with pytest.raises(TypeError):
        _hsmask.Keys((b"abcd",), [4], [()], [()])  # lists only
    with pytest.raises(TypeError):
        _hsmask.Keys(["abcd"], [4], [()], [()])
    with pytest.raises(TypeError):
        _hsmask.Keys([b"abcd"], [4.0], [()], [()])
    with pytest.raises(TypeError):
        _hsmask.Keys([b"abcd"], [4], [(bytearray(b"abcdef"),)], [()])
    with pytest.raises(TypeError):
        _hsmask.Keys([b"abcd"], [4], [5], [()])
    with pytest.raises(TypeError):
        _hsmask.Keys([b"abcd"], [4], [()], [(b"abcd",)])  # not (pattern, offset)
    with pytest.raises(ValueError):
        _hsmask.Keys([b"abcd"], [4, 4], [()], [()])
    with pytest.raises(RuntimeError):
        keys.__init__([b"abcd"], [4], [()], [()])
    blank = _hsmask.Keys.__new__(_hsmask.Keys)
    with pytest.raises(RuntimeError):
        blank.scan(b"abcd")
    with pytest.raises(RuntimeError):
        blank.hits(b"abcd")
    with pytest.raises(TypeError):
        copy.copy(keys)  # nothing to copy it from
    failed = _hsmask.Keys.__new__(_hsmask.Keys)
    with pytest.raises(TypeError):
        failed.__init__([b"abcd"], [4], [("x",)], [()])
    with pytest.raises(RuntimeError):
        failed.scan(b"abcd")  # a failed init leaves it unusable, not half-built


def test_emit_misuse_raises() -> None:
    runs = pack([(1, 3)])
    assert _hsmask.emit(bytearray(b"abcd"), bytearray(runs), 4, False) == (b"a***d", 3)
    # Runs read from an odd address (a sliced view) come out the same.
    odd = memoryview(b"\0" + runs)[1:]
    assert _hsmask.emit(memoryview(b"abcd"), odd, 4, False) == (b"a***d", 3)
    for cut in (-1, 5):
        with pytest.raises(ValueError):
            _hsmask.emit(b"abcd", runs, cut, False)
    with pytest.raises(OverflowError):
        _hsmask.emit(b"abcd", runs, 2**64, False)
    for bad in ([(3, 1)], [(-1, 2)], [(2, 2)], [(0, 5)], [(0, 2**62)], [(-(2**63), 2)]):
        with pytest.raises(ValueError):
            _hsmask.emit(b"abcd", pack(bad), 4, False)
    with pytest.raises(TypeError):
        _hsmask.emit("abcd", runs, 4, False)
    with pytest.raises(TypeError):
        _hsmask.emit(b"abcd", runs, "4", False)
    # Unsorted runs are not refused, but stay inside the buffer and the output's bound.
    assert _hsmask.emit(b"abcdef", pack([(4, 5), (0, 2), (1, 6)]), 6, False) == (b"abcd***", 6)


def test_a_buffer_over_4_gib_is_refused_without_reading_it() -> None:
    """Hyperscan takes an unsigned int length: a larger buffer is refused, not truncated. The
    buffer is a sparse file mapped read-only, so nothing is allocated or read."""
    keys = _hsmask.Keys([b"abcd"], [4], [()], [()])
    with tempfile.TemporaryFile() as f:
        f.truncate((4 << 30) + 1)
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as big:
            view = memoryview(big)
            try:
                with pytest.raises(ValueError):
                    keys.scan(view)
                with pytest.raises(ValueError):
                    keys.hits(view)
                assert _hsmask.emit(view, b"", 0, False) == (b"", -1)
            finally:
                view.release()


def test_two_threads_sharing_one_keys() -> None:
    """Scans hold the GIL throughout, so two threads never scan one Keys at once: they take
    turns, and each gets its own right answer."""
    keys = _hsmask.Keys([b"abcd"], [4], [()], [()])
    failures: list[object] = []

    def work(n: int) -> None:
        text = b"x" * n + b"abcd"
        for _ in range(2000):
            if unpack(keys.scan(text)[0]) != [(n, n + 4)]:
                failures.append(n)

    threads = [threading.Thread(target=work, args=(n,)) for n in (1, 5000)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_native_matcher_used_for_hits_alone() -> None:
    """hits() with no attached tables: every occurrence, overlapping ones too, as Python's."""
    rnd = random.Random(3)
    literals = sorted({bytes(rnd.choices(b"a\0b", k=rnd.randint(1, 6))) for _ in range(40)})
    data = bytes(rnd.choices(b"a\0b", k=3000))
    assert sorted(NativeMatcher(literals).hits(data)) == sorted(PythonMatcher(literals).hits(data))


@settings(max_examples=300, deadline=None)
@given(data=st.data(), alphabet=st.sampled_from(ALPHABETS))
def test_sampled_keys_are_found_at_every_offset(data: st.DataObject, alphabet: bytes) -> None:
    """Keys of 12 bytes or more are found by probing one offset per stride (see `sample` in
    _hsmask.c), shorter ones by Hyperscan: together, every occurrence, wherever it lies (at the
    buffer's edges too), as Python's. Few-letter alphabets make keys share the bytes around a
    probe, so one lookup meets many candidates."""
    literals = data.draw(st.lists(word(alphabet, 1, 48), min_size=1, max_size=16, unique=True))
    parts = [data.draw(st.sampled_from(literals))]  # one at the very start
    for _ in range(data.draw(st.integers(0, 8))):
        literal = bytearray(data.draw(st.sampled_from(literals)))
        if data.draw(st.booleans()):  # a near miss: one byte off
            literal[data.draw(st.integers(0, len(literal) - 1))] = data.draw(
                st.sampled_from(alphabet)
            )
        parts += [data.draw(word(alphabet, 0, 30)), bytes(literal)]
    buf = b"".join(parts)
    if data.draw(st.booleans()):  # or one cut short at the end
        buf += data.draw(st.sampled_from(literals))[: data.draw(st.integers(0, 47))]
    assert sorted(NativeMatcher(literals).hits(buf)) == sorted(PythonMatcher(literals).hits(buf))


def test_a_sampled_key_with_any_one_byte_off_is_not_found() -> None:
    """A sampled key is confirmed whole: each byte of it counts, at every length and offset."""
    rnd = random.Random(12)
    for size in range(12, 41):
        key = bytes(rnd.choices(B64, k=size))
        matcher = NativeMatcher([key])
        for lead in range(size):  # every offset relative to the probes' stride
            noise = bytes(rnd.choices(b"-.", k=lead))
            assert matcher.hits(noise + key + noise) == [(0, lead + size)]
            for at in range(size):
                off = bytearray(key)
                off[at] ^= 0x20
                assert matcher.hits(noise + bytes(off) + noise) == [], (size, lead, at)


def test_sampled_keys_of_mixed_lengths_at_every_offset_and_edge() -> None:
    """The stride comes from the shortest sampled key (capped for long ones): every key, of
    any length up to 64 KiB, is found once at each offset of that stride (29 at most), at the
    buffer's very start and end, and not when cut short by a byte; so are keys just too short
    to be sampled (Hyperscan's). Deterministic, so an off-by-one in the stride, a table left out
    or a bound one byte short fails every run."""
    rnd = random.Random(7)
    sets = [[12, 13, 16, 17, 19, 24, 32, 33, 64], [32, 33, 40, 61, 100, 65_536], [15], [10, 11, 14]]
    for lengths in sets:
        keys = [bytes(rnd.choices(B64, k=n)) for n in lengths]
        matcher = NativeMatcher([*keys, b"-short-"])  # with Hyperscan's keys too
        for i, key in enumerate(keys):
            for lead in range(31):
                for trail in (0, 1, 3, 4, 7, 8, 12):
                    buf = b"." * lead + key + b"." * trail
                    assert matcher.hits(buf) == [(i, lead + len(key))], (len(key), lead, trail)
                    # Cut short at either end: nothing, however close.
                    assert matcher.hits(buf[: lead + len(key) - 1]) == []
                    assert matcher.hits(buf[lead + 1 :]) == []


def test_sampled_keys_read_nothing_outside_the_buffer() -> None:
    """`sample` loads 8 bytes around each probe and confirms candidates that may start before
    the buffer or end after it: none of those reads may leave the buffer. A bytes object has
    its header before it and slack after, where a stray read goes unseen; here each buffer lies
    against an inaccessible page (before it, or after), so one is a crash."""
    out = run_child(
        """
        import ctypes, mmap, random
        from xtok.run._hsmask import Keys
        page = mmap.PAGESIZE
        region = mmap.mmap(-1, 3 * page)
        base = ctypes.addressof(ctypes.c_char.from_buffer(region))
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        for guard in (base, base + 2 * page):
            assert libc.mprotect(guard, page, 0) == 0, ctypes.get_errno()
        view = memoryview(region)
        rnd = random.Random(11)
        # Keys over one or two letters: the buffers' probes meet them everywhere, also where
        # an occurrence would start before the buffer or end after it.
        sets = [[b"a" * 12, b"a" * 20 + b"b", b"b" + b"a" * 30, b"ab" * 9, b"aaaa"]]
        sets += [[bytes(rnd.choices(b"ab", k=rnd.randint(12, 70))) for _ in range(5)]
                 for _ in range(30)]
        checked = 0
        for keys in sets:
            hs = Keys(keys, [0] * len(keys), [()] * len(keys), [()] * len(keys))
            texts = [b"a" * n for n in range(80)] + [
                b"".join(rnd.choice(keys)[rnd.randint(0, 8):] for _ in range(4)) for _ in range(20)]
            for text in texts:
                text = text[:page]
                want = sorted((i, s + len(k)) for i, k in enumerate(keys)
                              for s in range(len(text)) if text.startswith(k, s))
                for at in (page, 2 * page - len(text)):  # against the page before, after
                    view[at : at + len(text)] = text
                    buf = view[at : at + len(text)]
                    assert sorted(hs.hits(buf)) == want, (keys, text)
                    hs.scan(buf)
                    checked += 1
        print(checked)
        """
    )
    assert int(out) > 5000


def test_spans_of_both_matchers_come_merged_by_start() -> None:
    """Keys.scan sorts the sampled keys' spans and Hyperscan's each by start, then merges the
    two runs: in every order of the two kinds, all spans come, by start."""
    short, long = b"0123456789", b"ABCDEFGHIJKLMNOP"  # Hyperscan's, sampled
    keys = _hsmask.Keys([short, long], [len(short), len(long)], [(), ()], [(), ()])
    for parts in itertools.product([short, long, b"."], repeat=5):
        buf = b"".join(parts)
        want = sorted(
            (s, s + len(k)) for k in (short, long) for s in range(len(buf)) if buf.startswith(k, s)
        )
        assert unpack(keys.scan(buf)[0]) == want, parts
