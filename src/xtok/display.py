"""Text that someone else wrote, made safe for a terminal, a log or a page.

Control characters (`\\b`, `\\r`, ESC …), bidi overrides and other invisible format characters
in a field could repaint an approver's screen or reorder what they read. Fields of a request
code are refused when they hold any (`check_plain`); every value shown is escaped (`shown`).
"""

from __future__ import annotations

import os
import unicodedata

from xtok.errors import TokenError

# Cc: C0/C1 controls; Cf: format (bidi overrides and isolates, zero-width); Zl/Zp: line and
# paragraph separators; Cs: lone surrogates.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def is_unsafe(char: str) -> bool:
    return unicodedata.category(char) in _UNSAFE_CATEGORIES


def shown(value: object, limit: int | None = None) -> str:
    """`value` (its first `limit` characters) as text with every unsafe character written as a
    visible escape (`\\x1b`)."""
    text = str(value)[:limit]
    if not any(is_unsafe(c) for c in text):
        return text
    return "".join(_escape(c) if is_unsafe(c) else c for c in text)


def field_lines(prefix: str, value: object, width: int) -> list[str]:
    """`prefix` (an indented label) and `value` escaped, wrapped by xtok at `width` columns
    with every continuation line indented as far as the value: a long field can never wrap,
    as a terminal would wrap it, into what looks like another field's line. Non-ASCII
    characters count two columns (wide ones take two; counting more is the safe side)."""
    room = max(width - len(prefix) - 1, 16)
    lines, line, used = [], "", 0
    for char in shown(value):
        cost = 1 if char.isascii() else 2
        if used + cost > room:
            lines.append(line)
            line, used = "", 0
        line, used = line + char, used + cost
    lines.append(line)
    return [prefix + lines[0], *(" " * len(prefix) + rest for rest in lines[1:])]


def terminal_width(fd: int = 2) -> int:
    """The columns of the terminal on `fd`, or 80 when it is none (a log viewer wraps too)."""
    try:
        return os.get_terminal_size(fd).columns
    except OSError:
        return 80


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def check_plain(value: str, what: str, *, tip: str) -> str:
    """`value` unchanged, or a TokenError naming `what` when it holds an unsafe character."""
    for char in value:
        if is_unsafe(char):
            raise TokenError(
                f"{what} holds a control or bidi character ({_escape(char)}): refused, it could "
                "disguise what is shown",
                tip=tip,
            )
    return value
