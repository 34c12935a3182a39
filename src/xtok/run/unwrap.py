"""Base64 wrapped across lines (`base64`, PEM, `openssl base64`, MIME; LF or CRLF).

A line break is a *wrap* when the line before it ends in at least RUN_MIN (64) base64
characters, as every line but the last of base64 wrapped at 64 or 76 columns does. The masker
matches each `Wrappable` pattern (a base64 form of at least WRAP_MIN characters) also in the
text with its wraps removed, instead of compiling one pattern per place a break can fall (that
was 97% of all patterns); shorter base64 forms get those explicit patterns (see `variants`).

It knows where to look from *anchors*: slices of each such pattern, matched with the other
literals, one of which every wrapped occurrence holds unbroken. A pattern of n characters is cut
into pieces by its wraps. With one wrap the pieces are a prefix and a suffix, one of them at
least n/2 long: it holds the first or the last g = min(16, n // 2) characters. With more, an
inner piece is a whole line of at least RUN_MIN >= 2 * GRAM - 1 characters: it holds one of the
GRAM-character slices taken every GRAM characters.
"""

from __future__ import annotations

import re
from bisect import bisect_right

B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
RUN_MIN = 64
WRAP_MIN = 16
GRAM = 32
_BLOCK = re.compile(rb"[A-Za-z0-9+/\r\n]*")
_BREAK = re.compile(rb"\r?\n")


class Wrappable(bytes):
    """A pattern of base64 characters that the masker also finds across wraps."""


def keep_wrappable(old: bytes | None, new: bytes) -> bytes:
    """Of two equal patterns, the one that is `Wrappable`, if either is."""
    return old if isinstance(old, Wrappable) else new


def prefix_len(pattern: bytes) -> int:
    """Length of the prefix anchor of a wrappable pattern (the masker matches it as its key)."""
    return min(GRAM // 2, len(pattern) // 2)


def anchors(pattern: bytes) -> list[tuple[bytes, int]]:
    """The other anchors of a wrappable pattern: (slice, offset in the pattern)."""
    n = len(pattern)
    g = prefix_len(pattern)
    found = [(pattern[n - g :], n - g)]
    if n >= RUN_MIN + 2:  # room for a whole line between two wraps
        found += [(pattern[o : o + GRAM], o) for o in range(0, n - GRAM + 1, GRAM)]
    return found


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
    """The run of base64 characters and line breaks around `buf[start]`: back `reach` bytes (and
    the RUN_MIN before them, which tell whether the first break there is a wrap) at most,
    forward to its end."""
    lo = max(0, start - reach - RUN_MIN)
    back = _BLOCK.match(buf[lo:start][::-1])
    forward = _BLOCK.match(buf, start)
    return start - (back.end() if back else 0), forward.end() if forward else start


def trailing_block(buf: bytes, reach: int) -> int:
    """Start of the run of base64 characters and line breaks that ends `buf` (as far back as
    `block` looks)."""
    lo = max(0, len(buf) - reach - RUN_MIN)
    back = _BLOCK.match(buf[lo:][::-1])
    return len(buf) - (back.end() if back else 0)
