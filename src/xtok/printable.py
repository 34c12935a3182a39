"""Text a caller wrote, made safe for a terminal or a log: one line, no control, format (bidi)
or separator characters. Each is shown as a backslash escape, and a backslash as two, so the
result reads back unambiguously and cannot forge lines or reorder what follows."""

from __future__ import annotations


def _escape(char: str) -> str:
    if char == "\\":
        return "\\\\"
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def printable(text: str) -> str:
    """`text` with every character outside str.isprintable() (and the backslash) escaped."""
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(c if c.isprintable() and c != "\\" else _escape(c) for c in text)
