"""The ways a secret shows up in a log: the byte patterns a masker must catch.

For a value S (and, for a multi-line S, each line that is long and specific enough; for a JSON
object or array, each string field that looks secret, see `_secret_field`):
- S itself;
- base64 of S at byte offsets 0, 1 and 2 (so S inside `base64("user:" + S)` is caught), in
  the standard and URL-safe alphabets: only the characters that depend on S alone, so padding
  and whatever follows S do not matter. Wrapped lines (LF or CRLF) are caught by the masker
  (`unwrap`); forms too short for that get one pattern per place a single break can fall;
- percent-encoding as `quote(safe="")`, `quote()` (keeps `/`), `encodeURIComponent` (keeps
  `!'()*`) and `quote_plus`, each with upper- and lower-case hex;
- JSON string escaping: `\\"`, `\\\\`, optional `\\/`, and `\\uXXXX` in lower- and upper-case
  hex for control characters, optionally for non-ASCII, and optionally for what Go (`<>&`,
  U+2028/9), Gson (`<>&='`) or .NET (`<>&'+``) escape on top;
- shell quoting as `set -x` prints it: bash `'\\''`, ash/dash `'"'"'`, and bash's `$'…'`
  (octal escapes; non-ASCII bytes raw under a UTF-8 locale, octal under `LC_ALL=C`).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import itertools
import json
import re
from collections.abc import Iterator
from urllib.parse import quote, quote_plus

from xtok.run.unwrap import WRAP_MIN, Wrappable, keep_wrappable

MIN_SECRET_LEN = 4  # shorter values would mask ordinary text: reported instead
MIN_LINE_LEN = 8  # lines of a multi-line secret shorter than this are not patterns alone
MIN_FIELD_LEN = 8  # string fields of a JSON secret shorter than this are not patterns alone
_SECRET_KEY = re.compile(r"pass|pwd|secret|token|key|cred|auth|private|signature", re.I)
_ORDINARY = re.compile(r"[A-Za-z][a-z]*(?:[ _-][A-Za-z]?[a-z]*)*")
_HEX_ESCAPE = re.compile(rb"%[0-9A-F]{2}")
_URL_SAFE = ("", "/", "!'()*")  # quote(safe=""), quote(), encodeURIComponent
_JSON_SHORT = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_JSON_SHORT |= {"\b": "\\b", "\f": "\\f"}
# Characters escaped as \uXXXX on top: none (Python, JS), Go's, Gson's, .NET's.
_HTML = ("", "<>&\u2028\u2029", "<>&='", "<>&'+`")
_BREAKS = (b"\n", b"\r\n")
_UNPRINTABLE = re.compile(rb"[^\x20-\x7e]")
_PLAIN = re.compile(rb"[A-Za-z0-9_.~-]*")  # bytes that no encoding here changes
_BASH_NAMED = {7: b"\\a", 8: b"\\b", 9: b"\\t", 10: b"\\n", 11: b"\\v", 12: b"\\f", 13: b"\\r"}
_BASH_NAMED |= {27: b"\\E", 39: b"\\'", 92: b"\\\\"}


def patterns_for(value: bytes) -> list[bytes]:
    """Every pattern that reveals `value`, longest first, without duplicates."""
    if len(value) < MIN_SECRET_LEN:
        return []
    found: dict[bytes, bytes] = {}
    for part in [value, *_lines(value), *_json_fields(value)]:
        for pattern in _encodings(part):
            if len(pattern) >= MIN_SECRET_LEN:
                found[pattern] = keep_wrappable(found.get(pattern), pattern)
    return sorted(found.values(), key=len, reverse=True)


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


def _json_fields(value: bytes) -> list[bytes]:
    """String fields of a JSON object or array secret that look secret (see `_secret_field`)."""
    if value[:1] not in (b"{", b"[") and value.lstrip()[:1] not in (b"{", b"["):
        return []
    try:
        doc = json.loads(value)
    except (ValueError, RecursionError):
        return []
    return [text.encode() for key, text in _strings(doc, "") if _secret_field(key, text)]


def _strings(doc: object, key: str) -> Iterator[tuple[str, str]]:
    if isinstance(doc, str):
        yield key, doc
    elif isinstance(doc, dict):
        for k, v in doc.items():
            yield from _strings(v, k)
    elif isinstance(doc, list):
        for v in doc:
            yield from _strings(v, key)


def _secret_field(key: str, text: str) -> bool:
    """A field named like a secret (password, token, key…) of 4+ bytes, or any field of 8+
    characters that is not ordinary words (letters, capitalised at most at a word's start,
    separated by space, `-` or `_`): so `postgres`, `Production` or `read-only` stay visible."""
    if _SECRET_KEY.search(key):
        return len(text.encode()) >= MIN_SECRET_LEN
    return len(text) >= MIN_FIELD_LEN and _ORDINARY.fullmatch(text) is None


def _encodings(value: bytes) -> list[bytes]:
    if _PLAIN.fullmatch(value):
        return [value, *_base64_forms(value)]
    out = [value, *_base64_forms(value), *_url_forms(value)]
    with contextlib.suppress(UnicodeDecodeError):
        out += _json_forms(value.decode("utf-8"))
    out += [value.replace(b"'", b"'\\''"), value.replace(b"'", b"'\"'\"'")]
    if _UNPRINTABLE.search(value):  # else bash single-quotes it, as above
        out += [_dollar_quote(value, utf8=False), _dollar_quote(value, utf8=True)]
    return out


def _base64_forms(value: bytes) -> list[bytes]:
    forms = []
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + value)
        first = -(-8 * offset // 6)  # characters that mix in the unknown preceding bytes
        last = 8 * (offset + len(value)) // 6  # characters fully determined by value
        core = encoded[first:last]
        forms.append(core.translate(bytes.maketrans(b"+/", b"-_")))
        if len(core) >= WRAP_MIN:  # the masker finds it across wraps
            forms.append(Wrappable(core))
        else:
            forms.append(core)
            forms += [core[:i] + brk + core[i:] for i in range(1, len(core)) for brk in _BREAKS]
    return forms


def _url_forms(value: bytes) -> list[bytes]:
    encoded = [quote(value, safe=safe).encode() for safe in _URL_SAFE]
    encoded.append(quote_plus(value, safe="").encode())
    lower = [_HEX_ESCAPE.sub(lambda m: m.group().lower(), e) for e in encoded]
    return encoded + lower


def _json_forms(text: str) -> list[bytes]:
    """`text` as JSON encoders write it inside a string literal (without the quotes)."""
    if text.isascii() and "\x7f" not in text and not _JSON_ESCAPED.search(text):
        return [text.encode()]
    non_ascii = "".join({c for c in text if ord(c) > 0x7F})
    forms: dict[bytes, None] = {}
    for upper, table in _json_tables():
        forms[text.translate(table).encode()] = None
        if non_ascii:
            table = table | {ord(c): _u_escape(c, upper) for c in non_ascii}
            forms[text.translate(table).encode()] = None
    return list(forms)


_BOTH = (False, True)


def _u_escape(ch: str, upper: bool) -> str:
    code = ord(ch)
    units = [code] if code < 0x10000 else [0xD800 + (code - 0x10000 >> 10), 0xDC00 + (code & 0x3FF)]
    return "".join(f"\\u{u:04X}" if upper else f"\\u{u:04x}" for u in units)


def _json_table(upper: bool, slash: bool, html: str) -> dict[int, str]:
    """Quote, backslash and control characters, as every encoder escapes them; `/` optionally;
    and the `html` characters as \\uXXXX."""
    table = {c: _JSON_SHORT.get(chr(c), _u_escape(chr(c), upper)) for c in [*range(0x20), 34, 92]}
    table |= {ord(c): _u_escape(c, upper) for c in html}
    return table | ({ord("/"): "\\/"} if slash else {})


@functools.cache  # built on the first secret that needs them: `xtok run` starts sooner
def _json_tables() -> list[tuple[bool, dict[int, str]]]:
    return [
        (upper, _json_table(upper, slash, html))
        for upper, slash, html in itertools.product(_BOTH, _BOTH, _HTML)
    ]


# ASCII characters that some encoder escapes (non-ASCII ones too, and DEL: see _json_forms).
_JSON_ESCAPED = re.compile(r"[\x00-\x1f\"\\/<>&'=+`]")


def _dollar_quote(value: bytes, *, utf8: bool) -> bytes:
    """bash's $'…' (what `set -x` prints for a word with unprintable characters): named escapes,
    octal for the rest; printable non-ASCII characters stay raw under a UTF-8 locale only."""
    if utf8:
        text = value.decode("utf-8", "surrogateescape")
        return b"".join(
            c.encode() if c.isprintable() and ord(c) > 0x7E else _bash_bytes(_raw(c)) for c in text
        )
    return _bash_bytes(value)


def _raw(c: str) -> bytes:
    return c.encode("utf-8", "surrogateescape")


def _bash_bytes(data: bytes) -> bytes:
    out = bytearray()
    for b in data:
        if b in _BASH_NAMED:
            out += _BASH_NAMED[b]
        elif 0x20 <= b < 0x7F:
            out.append(b)
        else:
            out += b"\\%03o" % b
    return bytes(out)
