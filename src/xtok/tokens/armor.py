"""The text form shared by tokens, request codes and sealed tokens.

`<prefix><version>.<base64url JSON>.<checksum>` on one line. Whitespace anywhere is ignored on
input (terminals and chat re-wrap long lines); the checksum (48 bits of SHA-256) catches
truncation and typos. It is not a signature: what must be authentic is protected elsewhere
(AWS authenticates credentials, HPKE authenticates sealed tokens).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from typing import Any

from xtok.errors import TokenError

_CHECK_BYTES = 6
_WHITESPACE = re.compile(r"\s+")


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def compact(text: str) -> str:
    return _WHITESPACE.sub("", text)


def _checksum(body: str) -> str:
    return b64e(hashlib.sha256(body.encode(errors="replace")).digest()[:_CHECK_BYTES])


def encode(kind: str, version: int, payload: dict[str, Any]) -> str:
    body = f"{kind}{version}." + b64e(json.dumps(payload, separators=(",", ":")).encode())
    return f"{body}.{_checksum(body)}"


def decode(kind: str, version: int, text: str, *, what: str, tip: str) -> dict[str, Any]:
    """The payload of `text`, or a TokenError naming `what` and why (never quoting `text`)."""
    data = compact(text)
    prefix = f"{kind}{version}."
    if not data.startswith(prefix):
        newer = re.match(rf"^{re.escape(kind)}(\d+)\.", data)
        if newer and int(newer.group(1)) > version:
            raise TokenError(
                f"{what} format version {newer.group(1)} is newer than this xtok understands",
                tip="upgrade xtok",
            )
        raise TokenError(f"not an xtok {what}", tip=tip)
    body, sep, check = data.rpartition(".")
    if not sep or not hmac.compare_digest(check.encode(errors="replace"), _checksum(body).encode()):
        raise TokenError(
            f"{what} checksum does not match: it was truncated, mistyped or altered", tip=tip
        )
    try:
        payload = json.loads(b64d(body[len(prefix) :]))
    except (binascii.Error, ValueError, RecursionError):  # too deeply nested: not ours
        raise TokenError(f"{what} payload is not valid", tip=tip) from None
    if not isinstance(payload, dict):
        raise TokenError(f"{what} payload is not valid", tip=tip)
    return payload
