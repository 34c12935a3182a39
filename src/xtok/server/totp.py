"""Virtual MFA: RFC 6238 TOTP (6 digits, 30 s, SHA-1) from `cryptography`, as AWS uses."""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor import InvalidToken
from cryptography.hazmat.primitives.twofactor.totp import TOTP

SEED_BYTES = 20
STEP = 30


def new_seed() -> bytes:
    return os.urandom(SEED_BYTES)


def base32(seed: bytes) -> str:
    return base64.b32encode(seed).decode()


def _totp(seed: bytes) -> TOTP:
    return TOTP(seed, 6, SHA1(), STEP, enforce_key_length=False)  # noqa: S303 - RFC 6238


def code_at(seed: bytes, when: float) -> str:
    return _totp(seed).generate(int(when)).decode()


def verify(seed: bytes, code: str, now: float) -> bool:
    """True when `code` is valid at `now` or one step either side (clock drift)."""
    totp = _totp(seed)
    for drift in (0, -STEP, STEP):
        try:
            totp.verify(code.encode(), int(now) + drift)
            return True
        except InvalidToken:
            continue
    return False
