"""Masking secret values in a byte stream, at close to pipe speed.

`Masker.feed` takes arbitrary chunks and returns what may be written now: every occurrence of
any pattern is replaced by `***` (overlapping or touching occurrences become one `***`), the
longest tail that could still grow into a pattern is held back (never more than the longest
pattern minus one byte), and everything else comes out at once. The output equals masking the
whole stream in one piece, whatever the chunking; memory is bounded by the held tail.

Matching is done by `xtok.run.matcher` (Hyperscan, else Aho-Corasick in Rust, else Python).
"""

from __future__ import annotations

import sys
from bisect import bisect_left
from collections.abc import Iterable, Sequence

from xtok.run.matcher import Matcher, Span, best
from xtok.run.variants import MIN_SECRET_LEN

MARK = b"***"
_PROBE = 4  # pattern prefixes this long locate candidate tails quickly


class Patterns:
    """A compiled pattern set, shared by the maskers of one run (stdout and stderr)."""

    def __init__(self, patterns: Iterable[bytes], matcher: type[Matcher] | None = None) -> None:
        self.items = sorted({p for p in patterns if p})
        self.longest = max(map(len, self.items), default=0)
        build = matcher or best
        self.matcher = build(self.items) if self.items else None
        probes = {p[:_PROBE] for p in self.items if len(p) > _PROBE}
        self._probe = build(sorted(probes)) if probes else None
        self._short = {p[:n] for p in self.items for n in range(1, min(_PROBE, len(p) - 1) + 1)}

    def undecided_tail(self, buf: bytes) -> int:
        """Length of the longest tail of `buf` that is a proper prefix of some pattern."""
        window = min(self.longest - 1, len(buf))
        if window <= 0:
            return 0
        tail = buf[len(buf) - window :]
        # Candidates: where a pattern's first _PROBE bytes occur, plus the last few bytes.
        starts = sorted({s for s, _ in self._probe.spans(tail, window)} if self._probe else ())
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


class Masker:
    def __init__(self, patterns: Patterns | Iterable[bytes]) -> None:
        self._set = patterns if isinstance(patterns, Patterns) else Patterns(patterns)
        self._held = b""
        self._masked_until = 0  # bytes of `_held` already known to be inside a match
        self._in_mark = False  # the last output ended inside a masked run

    @property
    def held(self) -> int:
        return len(self._held)

    def feed(self, data: bytes) -> bytes:
        if self._set.matcher is None:
            return data
        buf = self._held + data if self._held else data
        return self._emit(self._set.matcher, buf, len(buf) - self._set.undecided_tail(buf))

    def flush(self) -> bytes:
        """Everything still held, at end of stream."""
        matcher = self._set.matcher
        return self._emit(matcher, self._held, len(self._held)) if matcher else b""

    def _emit(self, matcher: Matcher, buf: bytes, cut: int) -> bytes:
        if cut == 0:
            self._held = buf
            return b""
        # Every match starting before `cut` lies wholly inside `buf` (see undecided_tail).
        spans = matcher.spans(buf, cut)
        if self._masked_until:
            spans.append((0, self._masked_until))
        if not spans:
            self._held, self._in_mark, self._masked_until = buf[cut:], False, 0
            return buf[:cut] if cut < len(buf) else buf
        out = bytearray()
        pos = 0
        last_end = -1
        for start, end in merged(spans):
            out += buf[pos:start]
            if not (start == 0 and self._in_mark):
                out += MARK
            pos = last_end = end
        if pos < cut:
            out += buf[pos:cut]
        self._in_mark = last_end >= cut
        self._masked_until = max(0, last_end - cut)
        self._held = buf[cut:]
        return bytes(out)


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
