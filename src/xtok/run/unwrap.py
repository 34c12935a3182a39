"""Base64 wrapped across lines (`base64`, PEM, `openssl base64`, MIME; LF or CRLF).

A line break is a *wrap* when the line before it ends in at least RUN_MIN base64 characters. The
masker matches each base64-only pattern of at least WRAP_MIN characters also in the text with
its wraps removed, instead of compiling one pattern per place a break can fall (that was 97% of
all patterns). It finds where to look from *anchors*: a few slices of each such pattern, matched
with the other literals. Any wrapped occurrence holds a whole anchor unbroken: a pattern of n
characters is cut into pieces by its wraps; every inner piece is a whole line (>= RUN_MIN
characters), and with one wrap the longer piece has >= n/2; a piece of 2g-1 characters holds one
of the slices taken every g characters (g <= (n+2)/4 and 2g-1 <= RUN_MIN). Shorter base64 forms
get explicit wrapped patterns instead (see `variants`).
"""

from __future__ import annotations

import re
from bisect import bisect_right

B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
RUN_MIN = 32
WRAP_MIN = 22
_GRAM_MAX = (RUN_MIN + 1) // 2
_B64_ONLY = re.compile(rb"[A-Za-z0-9+/]+")
_BLOCK = re.compile(rb"[A-Za-z0-9+/\r\n]*")
_BREAK = re.compile(rb"\r?\n")


def wrappable(pattern: bytes) -> bool:
    return len(pattern) >= WRAP_MIN and _B64_ONLY.fullmatch(pattern) is not None


def anchors(pattern: bytes) -> list[bytes]:
    """Slices of `pattern`, one of which any wrapped occurrence holds unbroken."""
    gram = min(_GRAM_MAX, (len(pattern) + 2) // 4)
    starts = [*range(0, len(pattern) - gram + 1, gram), len(pattern) - gram]
    return [pattern[s : s + gram] for s in starts]


def trailing_run(data: bytes, before: int) -> int:
    """Base64 characters at the end of `data` (counting `before` more if all of it is), capped."""
    run = len(data) - len(data.rstrip(B64))
    return min(RUN_MIN, run + before if run == len(data) else run)


class View:
    """`buf[lo:hi]` with its wraps removed, and the way back to offsets in `buf`."""

    def __init__(self, buf: bytes, lo: int, hi: int, run_before: int) -> None:
        pieces, self._u, self._raw = [], [0], [lo]
        pos, before = lo, run_before
        for brk in _BREAK.finditer(buf, lo, hi):
            if trailing_run(buf[pos : brk.start()], before) >= RUN_MIN:
                pieces.append(buf[pos : brk.start()])
                self._u.append(self._u[-1] + brk.start() - pos)
                pos, before = brk.end(), 0
                self._raw.append(pos)
        tail = buf[pos:hi]
        if hi == len(buf) and tail.endswith(b"\r") and trailing_run(tail[:-1], before) >= RUN_MIN:
            tail = tail[:-1]  # maybe the first half of a CRLF wrap: left out, never matched
        self.wrapped = len(pieces) > 0 or len(tail) < hi - pos  # differs from buf[lo:hi]
        pieces.append(tail)
        self.text = b"".join(pieces)

    def raw(self, u: int) -> int:
        """Offset in `buf` of the character at offset `u` of the view."""
        i = bisect_right(self._u, u) - 1
        return self._raw[i] + u - self._u[i]

    def span(self, start: int, end: int) -> tuple[int, int]:
        return self.raw(start), self.raw(end - 1) + 1


def block(buf: bytes, start: int, reach: int) -> tuple[int, int]:
    """The run of base64 characters and line breaks around `buf[start]`: back `reach` bytes at
    most, forward to its end."""
    lo = max(0, start - reach)
    back = _BLOCK.match(buf[lo:start][::-1])
    forward = _BLOCK.match(buf, start)
    return start - (back.end() if back else 0), forward.end() if forward else start


def trailing_block(buf: bytes, reach: int) -> int:
    """Start of the run of base64 characters and line breaks that ends `buf` (`reach` at most)."""
    lo = max(0, len(buf) - reach)
    back = _BLOCK.match(buf[lo:][::-1])
    return len(buf) - (back.end() if back else 0)
