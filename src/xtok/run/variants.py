"""The ways a secret shows up in a log: the byte patterns a masker must catch.

For a value S (and, for a multi-line S, each line that is long and specific enough):
- S itself;
- base64 of S at byte offsets 0, 1 and 2 (so S inside `base64("user:" + S)` is caught), in
  the standard and URL-safe alphabets: only the characters that depend on S alone, so padding
  and whatever follows S do not matter; in the standard alphabet also wrapped at 76 columns
  (`base64` without -w0), at every place a line break can fall;
- URL encoding (%XX in upper and lower case, + for space);
- JSON string escaping (\\" \\\\ \\/ \\uXXXX, ASCII-only and UTF-8 forms);
- shell quoting as `set -x` prints it: bash '\\'' and ash/dash '"'"', and $'…' escapes.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

MIN_SECRET_LEN = 4  # shorter values would mask ordinary text: reported instead
MIN_LINE_LEN = 8  # lines of a multi-line secret shorter than this are not patterns alone
WRAP = 76


def patterns_for(value: bytes) -> list[bytes]:
    """Every pattern that reveals `value`, longest first, without duplicates."""
    if len(value) < MIN_SECRET_LEN:
        return []
    found: dict[bytes, None] = {}
    for part in [value, *_lines(value)]:
        for pattern in _encodings(part):
            if len(pattern) >= MIN_SECRET_LEN:
                found[pattern] = None
    return sorted(found, key=len, reverse=True)


def _lines(value: bytes) -> list[bytes]:
    """Lines specific enough to mask on their own: not short, not PEM armor, not punctuation."""
    if b"\n" not in value:
        return []
    out = []
    for raw in value.split(b"\n"):
        line = raw.strip(b"\r")
        core = line.strip()
        if (
            len(core) < MIN_LINE_LEN
            or core.startswith(b"-----")
            or not any(c.isalnum() for c in core.decode("latin-1"))
        ):
            continue
        out.append(line)
    return out


def _encodings(value: bytes) -> list[bytes]:
    out = [value]
    out += _base64_forms(value)
    out += [
        quote(value, safe="").encode(),
        quote(value, safe="").lower().encode(),
        quote_plus(value, safe="").encode(),
    ]
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None:
        ascii_json = json.dumps(text)[1:-1].encode()
        utf8_json = json.dumps(text, ensure_ascii=False)[1:-1].encode()
        out += [ascii_json, utf8_json, ascii_json.replace(b"/", b"\\/")]
    out += [value.replace(b"'", b"'\\''"), value.replace(b"'", b"'\"'\"'"), _dollar_quote(value)]
    return out


def _base64_forms(value: bytes) -> list[bytes]:
    forms = []
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + value)
        first = -(-8 * offset // 6)  # characters that mix in the unknown preceding bytes
        last = 8 * (offset + len(value)) // 6  # characters fully determined by value
        core = encoded[first:last]
        forms.append(core)
        forms.append(core.translate(bytes.maketrans(b"+/", b"-_")))
        forms += _wrapped(core)
    return forms


def _wrapped(core: bytes) -> list[bytes]:
    """`core` with a newline every WRAP characters, for each place the first break can fall."""
    forms = []
    for first_break in range(1, min(len(core), WRAP + 1)):
        pieces = [core[:first_break]]
        rest = core[first_break:]
        while rest:
            pieces.append(rest[:WRAP])
            rest = rest[WRAP:]
        if len(pieces) > 1:
            forms.append(b"\n".join(pieces))
    return forms


def _dollar_quote(value: bytes) -> bytes:
    """bash's $'…' form for values with control characters (what `set -x` prints)."""
    out = value.replace(b"\\", b"\\\\").replace(b"'", b"\\'")
    return out.replace(b"\n", b"\\n").replace(b"\t", b"\\t").replace(b"\r", b"\\r")
