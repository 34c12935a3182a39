"""Masking secret values in a byte stream, at close to pipe speed.

`Masker.feed` takes arbitrary chunks and returns what may be written now: every occurrence of
any pattern is replaced by `***` (overlapping or touching occurrences become one `***`), and so
is every occurrence, across wrapped lines, of a base64-only pattern (see `xtok.run.unwrap`). The
longest tail that could still grow into an occurrence is held back (at most `Patterns.max_held`
bytes) and everything else comes out at once. The output equals masking the whole stream in one
piece, whatever the chunking; memory is bounded by the held tail. `Masker.write` writes the
same to a file descriptor (the relay's path), with as few copies as it can.

Matchers (`xtok.run.matcher`) see at most KEY bytes of a pattern: longer patterns (secrets up to
AWS's 64 KiB, and their encodings) are confirmed here where their first KEY bytes occur.
"""

from __future__ import annotations

import os
import select
import sys
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence

from xtok.run import unwrap
from xtok.run.matcher import Matcher, NativeMatcher, best, small
from xtok.run.variants import MIN_SECRET_LEN

MARK = b"***"
KEY = 16
Piece = bytes | memoryview
_IOV_MAX = 1024  # buffers per writev (Linux's limit)
_PROBE = 4  # pattern prefixes this long locate candidate tails quickly
Span = tuple[int, int]
Build = Callable[[Sequence[bytes]], Matcher]


class _Literals:
    """Exact occurrences of a set of patterns, and which tail of a buffer may still become one.

    With `anchored`, a wrappable pattern is keyed by its prefix anchor and its other anchors are
    matched too (`xtok.run.unwrap`); a hit on one reports where a wrapped occurrence may be,
    unless the pattern it belongs to lies right there unbroken.
    """

    def __init__(self, items: list[bytes], build: Build, aux: Build, anchored: bool) -> None:
        self.items = items  # sorted
        self.longest = max(map(len, items), default=0)
        keys: dict[bytes, int] = {}
        # Per key: its length, the pattern's length if it is one, longer patterns it starts,
        # and (pattern, offset) of the wrappable patterns it is an anchor of.
        sizes: list[int] = []
        exact: list[int] = []
        longer: list[tuple[bytes, ...]] = []
        owners: list[tuple[tuple[bytes, int], ...]] = []

        def index(key: bytes) -> int:
            i = keys.setdefault(key, len(sizes))
            if i == len(sizes):
                sizes.append(len(key))
                exact.append(0)
                longer.append(())
                owners.append(())
            return i

        for p in items:
            wraps = anchored and isinstance(p, unwrap.Wrappable)
            key = p[: unwrap.prefix_len(p)] if wraps else p[:KEY]
            i = index(key)
            if len(key) == len(p):
                exact[i] = len(p)
            else:
                longer[i] += (p,)
            if wraps:
                owners[i] += ((p, 0),)
                for anchor, offset in unwrap.anchors(p):
                    owners[index(anchor)] += ((p, offset),)
        self._info = list(zip(sizes, exact, longer, owners, strict=True))
        self.matcher = build(list(keys)) if keys else None
        self.native = self.matcher if isinstance(self.matcher, NativeMatcher) else None
        if self.native is not None:
            self.native.attach(exact, longer, owners)
        # The C extension finds the short tail itself, from the keys.
        probes = {p[:_PROBE] for p in items if len(p) > _PROBE} if self.native is None else ()
        self._probe = aux(sorted(probes)) if probes else None  # scans a few dozen bytes

    def scan(self, buf: bytes) -> tuple[list[Span], list[int], int]:
        """(occurrences, starts of anchors to look around, where the tail that may still
        become an occurrence starts)."""
        if self.native is not None:
            packed, anchors, cut = self.native.spans(buf)
            return _unpack(packed), anchors, cut
        spans, anchors, undecided = self._scan(buf)
        return spans, anchors, self.cut(buf, undecided)

    def cut(self, buf: bytes, undecided: int) -> int:
        """Where the tail that may still become an occurrence starts, given the start of the
        earliest pattern that may still come whole (`_scan`'s `undecided`)."""
        return min(undecided, len(buf) - self._short_tail(buf))

    def _scan(self, buf: bytes) -> tuple[list[Span], list[int], int]:
        spans: list[Span] = []
        anchors: list[int] = []
        undecided = len(buf)
        if self.matcher is None:
            return spans, anchors, undecided
        info = self._info
        for i, end in self.matcher.hits(buf):
            size, exact, longer, owners = info[i]
            if exact:
                spans.append((end - exact, end))
            if longer:
                start = end - size
                for p in longer:
                    if buf.startswith(p, start):
                        spans.append((start, start + len(p)))
                    elif (
                        start < undecided
                        and start + len(p) > len(buf)  # it may still come whole
                        and p.startswith(buf[start:])
                    ):
                        undecided = start
            if owners:
                start = end - size
                if not all(o <= start and buf.startswith(p, start - o) for p, o in owners):
                    anchors.append(start)
        return spans, anchors, undecided

    def _short_tail(self, buf: bytes) -> int:
        """Length of the longest tail shorter than KEY that is a proper prefix of a pattern."""
        window = min(self.longest - 1, KEY - 1, len(buf))
        if window <= 0:
            return 0
        tail = buf[len(buf) - window :]
        # Candidates: where a pattern's first _PROBE bytes occur, plus the last few bytes.
        starts = sorted({end - _PROBE for _, end in self._probe.hits(tail)} if self._probe else ())
        starts += [window - n for n in range(min(_PROBE, window), 0, -1)]
        for start in starts:
            if self._is_proper_prefix(tail[start:]):
                return window - start
        return 0

    def _is_proper_prefix(self, piece: bytes) -> bool:
        i = bisect_left(self.items, piece)
        for candidate in self.items[i : i + 2]:  # piece itself may be a pattern; look past it
            if len(candidate) > len(piece) and candidate.startswith(piece):
                return True
        return False


class Patterns:
    """A compiled pattern set, shared by the maskers of one run (stdout and stderr)."""

    def __init__(self, patterns: Iterable[bytes], matcher: Build | None = None) -> None:
        build = matcher or best
        unique: dict[bytes, bytes] = {}
        for p in patterns:
            if p:
                unique[p] = unwrap.keep_wrappable(unique.get(p), p)
        self.items = sorted(unique.values())
        self.longest = max(map(len, self.items), default=0)
        wrappable: list[bytes] = [p for p in self.items if isinstance(p, unwrap.Wrappable)]
        # The stream goes through the fastest matcher; the few bytes around an anchor or at the
        # end of a buffer through the one quickest to build. Tests pass one for both.
        self.literals = _Literals(self.items, build, matcher or small, anchored=True)
        self.wrapped = (
            _Literals(wrappable, matcher or small, matcher or small, anchored=False)
            if wrappable
            else None
        )
        longest_wrapped = max(map(len, wrappable), default=0)
        # A wrapped occurrence spans its characters plus at most one CRLF per RUN_MIN of them.
        self.reach = longest_wrapped + 2 * (longest_wrapped // unwrap.RUN_MIN + 1)
        self.max_held = max(self.longest - 1, self.reach)


class Masker:
    def __init__(self, patterns: Patterns | Iterable[bytes]) -> None:
        self._set = patterns if isinstance(patterns, Patterns) else Patterns(patterns)
        self._held = b""
        self._masked_until = 0  # bytes of `_held` already known to be inside a match
        self._in_mark = False  # the last output ended inside a masked run
        self._run = 0  # base64 characters at the end of the output so far (capped)

    @property
    def held(self) -> int:
        return len(self._held)

    @property
    def max_held(self) -> int:
        return self._set.max_held

    def feed(self, data: bytes) -> bytes:
        """The masked bytes that may go out now (the rest is held)."""
        if self._set.literals.matcher is None:
            return data
        return self._masked(self._held + data if self._held else data, final=False)

    def flush(self) -> bytes:
        """Everything still held, at end of stream."""
        return self._masked(self._held, final=True) if self._held else b""

    def write(self, fd: int, data: bytes, end: bool = False) -> bool:
        """`feed(data)` (and, at the `end` of the stream, `flush()`) written to `fd`: where
        little is masked, gathered from `data` by writev (no copy of it). False if fd's reader
        is gone."""
        if self._set.literals.matcher is None:
            return _write_all(fd, [data])
        buf = self._held + data if self._held else data
        step = self._plan(buf, final=end) if buf else None
        if step is None:
            return True
        packed, spans, cut = step
        native = self._set.literals.native
        if native is not None:
            delivered, reach = native.write(fd, buf, _merged(packed, spans), cut, self._in_mark)
        else:
            pieces, reach = _pieces(buf, spans, cut, self._in_mark)
            delivered = _write_all(fd, pieces)
        self._advance(buf, cut, reach)
        return delivered

    def _masked(self, buf: bytes, final: bool) -> bytes:
        step = self._plan(buf, final)
        if step is None:
            return b""
        packed, spans, cut = step
        native = self._set.literals.native
        if native is not None:
            out, reach = native.emit(buf, _merged(packed, spans), cut, self._in_mark)
        else:
            pieces, reach = _pieces(buf, spans, cut, self._in_mark)
            out = b"".join(pieces)
        self._advance(buf, cut, reach)
        return out

    def _plan(self, buf: bytes, final: bool) -> tuple[bytes, list[Span], int] | None:
        """(the C scan's occurrences, packed; the other occurrences; where what may go out now
        ends), or None where nothing may: then all of `buf` is held."""
        patterns = self._set
        literals, wrapped = patterns.literals, patterns.wrapped
        native = literals.native
        packed = b""
        if native is not None:
            packed, anchors, cut = native.spans(buf)
            spans: list[Span] = []
        else:
            spans, anchors, cut = literals.scan(buf)
        if wrapped is not None:
            if anchors:
                spans += self._wrapped_spans(wrapped, buf, anchors)
            if not final:
                cut = min(cut, self._wrapped_tail(wrapped, buf))
        if final:
            cut = len(buf)
        if cut == 0:
            self._held = buf
            return None
        if self._masked_until:
            spans.append((0, self._masked_until))
        return packed, spans, cut

    def _advance(self, buf: bytes, cut: int, reach: int) -> None:
        """`buf[:cut]` went out, its masked run reaching `reach`."""
        self._in_mark = reach >= cut
        self._masked_until = max(0, reach - cut)
        self._run = unwrap.trailing_run(buf[max(0, cut - unwrap.RUN_MIN) : cut], self._run)
        self._held = buf[cut:]

    def _wrapped_spans(self, wrapped: _Literals, buf: bytes, anchors: list[int]) -> list[Span]:
        """Occurrences across wraps of the base64-only patterns, around each anchor found."""
        patterns = self._set
        spans: list[Span] = []
        covered = -1
        for start in sorted(anchors):
            if start < covered:
                continue  # inside the block of an earlier anchor
            # Back no further than an occurrence holding this anchor can start; on to the
            # block's end, so later anchors inside it need no block of their own.
            lo, covered = unwrap.block(buf, start, patterns.reach)
            view = unwrap.View(buf, lo, covered, self._run if lo == 0 else 0)
            if view.wrapped:
                found, _, _ = wrapped.scan(view.text)
                spans += [view.span(s, e) for s, e in found]
        return spans

    def _wrapped_tail(self, wrapped: _Literals, buf: bytes) -> int:
        """Start of the longest tail that, unwrapped, may still become a wrapped occurrence."""
        lo = unwrap.trailing_block(buf, self._set.reach)
        if lo == len(buf) or (b"\n" not in buf[lo:] and not buf.endswith(b"\r")):
            return len(buf)  # no wrap in it: the plain tail check covers it
        view = unwrap.View(buf, lo, len(buf), self._run if lo == 0 else 0)
        if not view.wrapped:
            return len(buf)
        _, _, undecided = wrapped.scan(view.text)
        return view.raw(undecided) if undecided < len(view.text) else len(buf)


def _pieces(buf: bytes, spans: list[Span], cut: int, in_mark: bool) -> tuple[list[Piece], int]:
    """`buf[:cut]` with every occurrence starting before `cut` masked (overlapping or touching
    ones make one masked run, also with the run the last output ended in if `in_mark`), as
    views of `buf` and marks; and the end of the masked run reaching furthest."""
    reach = 0 if in_mark else -1  # end of the masked run so far
    view = memoryview(buf)
    if not spans or min(spans)[0] >= cut:
        return [view[:cut] if cut < len(buf) else buf], reach
    # Every occurrence starting before `cut` lies wholly inside `buf`.
    spans.sort()
    pieces: list[Piece] = []
    pos = 0  # the next unmasked byte
    for start, end in spans:
        if start >= cut:
            break
        if start > reach:
            pieces += (view[pos:start], MARK)
        if end > reach:
            pos = reach = end
    if pos < cut:
        pieces.append(view[pos:cut])
    return pieces, reach


def _unpack(packed: bytes) -> list[Span]:
    flat = array("q")
    flat.frombytes(packed)
    return list(zip(flat[::2], flat[1::2], strict=True))


def _pack(spans: list[Span]) -> bytes:
    return array("q", [x for span in spans for x in span]).tobytes()


def _merged(packed: bytes, spans: list[Span]) -> bytes:
    """The C scan's occurrences with the others (rare: wrapped ones, or a masked run carried
    over from the last buffer), packed by start."""
    return _pack(sorted(_unpack(packed) + spans)) if spans else packed


def _write_all(fd: int, pieces: list[Piece]) -> bool:
    """All of `pieces`, in order, gathered by writev; False if fd's reader is gone. Whoever
    shares our output may have made it non-blocking: then it waits, as a blocking write would."""
    try:
        while pieces:
            try:
                done = os.writev(fd, pieces[:_IOV_MAX])
            except BlockingIOError:
                select.select([], [fd], [])
                continue
            i = 0
            while i < len(pieces) and done >= len(pieces[i]):
                done -= len(pieces[i])
                i += 1
            pieces = pieces[i:]
            if done:  # a partial write
                pieces[0] = memoryview(pieces[0])[done:]
    except BrokenPipeError:
        return False
    return True


def redact(text: str, values: Sequence[bytes]) -> str:
    """`text` with every value in `values` masked (for error messages that might echo input)."""
    if not any(values):
        return text
    masker = Masker(v for v in values if v)
    raw = text.encode("utf-8", "surrogateescape")
    return (masker.feed(raw) + masker.flush()).decode("utf-8", "replace")


def warn_short(name: str, value: bytes) -> None:
    if 0 < len(value) < MIN_SECRET_LEN:
        print(
            f"xtok: warning: secret {name} is shorter than {MIN_SECRET_LEN} bytes and is not "
            "masked in the output",
            file=sys.stderr,
        )
