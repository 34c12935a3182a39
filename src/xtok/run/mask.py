"""Masking secret values in a byte stream, at close to pipe speed.

`Masker.feed` takes arbitrary chunks and returns what may be written now: every occurrence of
any pattern is replaced by `***` (overlapping or touching occurrences become one `***`), and so
is every occurrence, across wrapped lines, of a base64-only pattern (see `xtok.run.unwrap`). The
longest tail that could still grow into an occurrence is held back (at most `Patterns.max_held`
bytes) and everything else comes out at once. The output equals masking the whole stream in one
piece, whatever the chunking; memory is bounded by the held tail.

Matchers (`xtok.run.matcher`) see at most KEY bytes of a pattern: longer patterns (secrets up to
AWS's 64 KiB, and their encodings) are confirmed here where their first KEY bytes occur.
"""

from __future__ import annotations

import sys
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence

from xtok.run import unwrap
from xtok.run.matcher import Matcher, best
from xtok.run.variants import MIN_SECRET_LEN

MARK = b"***"
KEY = 64
_PROBE = 4  # pattern prefixes this long locate candidate tails quickly
Span = tuple[int, int]
Build = Callable[[Sequence[bytes]], Matcher]


class _Literals:
    """Exact occurrences of a set of patterns, and which tail of a buffer may still become one.

    `extra` literals (anchors) are matched alongside and reported apart, by their end offsets.
    """

    def __init__(self, items: list[bytes], extra: Sequence[bytes], build: Build) -> None:
        self.items = items  # sorted
        self.longest = max(map(len, items), default=0)
        keys: dict[bytes, int] = {}
        self._longer: dict[int, list[bytes]] = {}
        exact = set()
        for p in items:
            i = keys.setdefault(p[:KEY], len(keys))
            if len(p) > KEY:
                self._longer.setdefault(i, []).append(p)
            else:
                exact.add(i)
        self._keys = len(keys)
        self._lengths = [len(k) if i in exact else -1 for k, i in keys.items()]
        self.extra_len = [len(e) for e in extra]
        self.matcher = build([*keys, *extra]) if keys or extra else None
        probes = {p[:_PROBE] for p in items if len(p) > _PROBE}
        self._probe = build(sorted(probes)) if probes else None
        self._short = {p[:n] for p in items for n in range(1, min(_PROBE, len(p) - 1) + 1)}

    def scan(self, buf: bytes) -> tuple[list[Span], list[Span], int]:
        """(occurrences, extra literals' (index, end), start of the longest undecided tail)."""
        spans: list[Span] = []
        extra: list[Span] = []
        undecided = len(buf)
        if self.matcher is None:
            return spans, extra, undecided
        keys, lengths, longer = self._keys, self._lengths, self._longer
        for i, end in self.matcher.hits(buf):
            if i >= keys:
                extra.append((i - keys, end))
                continue
            n = lengths[i]
            if n >= 0:
                spans.append((end - n, end))
            if i in longer:
                start = end - KEY
                for p in longer[i]:
                    if buf.startswith(p, start):
                        spans.append((start, start + len(p)))
                    elif start < undecided and p.startswith(buf[start:]):
                        undecided = start
        short = len(buf) - self._short_tail(buf)
        return spans, extra, min(undecided, short)

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
        if len(piece) <= _PROBE and piece not in self._short:
            return False
        i = bisect_left(self.items, piece)
        for candidate in self.items[i : i + 2]:  # piece itself may be a pattern; look past it
            if len(candidate) > len(piece) and candidate.startswith(piece):
                return True
        return False


class Patterns:
    """A compiled pattern set, shared by the maskers of one run (stdout and stderr)."""

    def __init__(self, patterns: Iterable[bytes], matcher: Build | None = None) -> None:
        build = matcher or best
        self.items = sorted({p for p in patterns if p})
        self.longest = max(map(len, self.items), default=0)
        wrappable = [p for p in self.items if unwrap.wrappable(p)]
        anchors = sorted({a for p in wrappable for a in unwrap.anchors(p)})
        self.literals = _Literals(self.items, anchors, build)
        self.wrapped = _Literals(wrappable, (), build) if wrappable else None
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

    def feed(self, data: bytes) -> bytes:
        if self._set.literals.matcher is None:
            return data
        return self._emit(self._held + data if self._held else data, final=False)

    def flush(self) -> bytes:
        """Everything still held, at end of stream."""
        return self._emit(self._held, final=True) if self._held else b""

    def _emit(self, buf: bytes, final: bool) -> bytes:
        patterns = self._set
        spans, anchors, cut = patterns.literals.scan(buf)
        wrapped = patterns.wrapped
        if wrapped is not None:
            if anchors:
                spans += self._wrapped_spans(wrapped, buf, anchors)
            if not final:
                cut = min(cut, self._wrapped_tail(wrapped, buf))
        if final:
            cut = len(buf)
        if cut == 0:
            self._held = buf
            return b""
        # Every occurrence starting before `cut` lies wholly inside `buf`.
        spans = [s for s in spans if s[0] < cut]
        if self._masked_until:
            spans.append((0, self._masked_until))
        if not spans:
            out = buf[:cut] if cut < len(buf) else buf
            self._held, self._in_mark, self._masked_until = buf[cut:], False, 0
            self._run = unwrap.trailing_run(out[-unwrap.RUN_MIN :], self._run)
            return out
        result = bytearray()
        pos = 0
        last_end = -1
        for start, end in merged(spans):
            result += buf[pos:start]
            if not (start == 0 and self._in_mark):
                result += MARK
            pos = last_end = end
        if pos < cut:
            result += buf[pos:cut]
        self._in_mark = last_end >= cut
        self._masked_until = max(0, last_end - cut)
        self._run = unwrap.trailing_run(buf[max(0, cut - unwrap.RUN_MIN) : cut], self._run)
        self._held = buf[cut:]
        return bytes(result)

    def _wrapped_spans(self, wrapped: _Literals, buf: bytes, anchors: list[Span]) -> list[Span]:
        """Occurrences across wraps of the base64-only patterns, around each anchor found."""
        patterns = self._set
        spans: list[Span] = []
        covered = -1
        for start in sorted(end - patterns.literals.extra_len[i] for i, end in anchors):
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


def merged(spans: Sequence[Span]) -> list[Span]:
    """Union of overlapping or touching spans, in order."""
    out: list[Span] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


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
