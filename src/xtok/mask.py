"""Masking secret values in a byte stream.

`Masker` is fed arbitrary chunks and returns what may be written now: every occurrence of any
pattern is replaced by `***` (overlapping or adjacent occurrences become one `***`), bytes that
might be the start of a pattern are held back until the next chunk shows what follows, and
everything else comes out at once. The result equals masking the whole stream in one piece,
whatever the chunking.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence

MARK = b"***"
MIN_SECRET_LEN = 4  # shorter values would mask common text; they are reported instead


def patterns_for(value: bytes) -> list[bytes]:
    """The byte patterns that reveal `value` when printed. Here: the raw value."""
    return [value] if len(value) >= MIN_SECRET_LEN else []


class Masker:
    def __init__(self, patterns: Iterable[bytes]) -> None:
        self._patterns = sorted({p for p in patterns if p}, key=len, reverse=True)
        self._longest = len(self._patterns[0]) if self._patterns else 0
        self._held = b""
        self._masked_until = 0  # bytes of `_held` already known to be inside a match
        self._in_mark = False  # the last output ended inside a masked run

    def feed(self, data: bytes) -> bytes:
        if not self._patterns:
            return data
        buf = self._held + data
        hold = self._undecided_tail(buf)
        return self._emit(buf, len(buf) - hold)

    def flush(self) -> bytes:
        """Everything still held, at end of stream."""
        buf = self._held
        return self._emit(buf, len(buf)) if self._patterns else b""

    def _undecided_tail(self, buf: bytes) -> int:
        """Length of the longest tail of `buf` that is a proper prefix of some pattern."""
        for n in range(min(self._longest - 1, len(buf)), 0, -1):
            tail = buf[-n:]
            if any(p.startswith(tail) for p in self._patterns if len(p) > n):
                return n
        return 0

    def _emit(self, buf: bytes, cut: int) -> bytes:
        if cut == 0:
            self._held = buf
            return b""
        # Every match starting before `cut` lies wholly inside `buf` (see _undecided_tail).
        spans = [(0, self._masked_until)] if self._masked_until else []
        for p in self._patterns:
            start = buf.find(p, 0, cut + len(p) - 1)
            while start != -1:
                spans.append((start, start + len(p)))
                start = buf.find(p, start + 1, cut + len(p) - 1)
        out = bytearray()
        pos = 0
        last_end = -1
        for start, end in _merged(spans):
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


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Union of overlapping or touching spans, in order."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def redact(text: str, values: Sequence[bytes]) -> str:
    """`text` with every value in `values` masked (for error messages that might echo input)."""
    if not values:
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
