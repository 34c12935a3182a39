"""Virtual MFA: RFC 6238 TOTP (6 digits, 30 s, SHA-1) from `cryptography`, as AWS uses."""

from __future__ import annotations

import base64
import hmac
import os

from cryptography.hazmat.primitives.hashes import SHA1
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


def accepted_step(seed: bytes, code: str, now: float, last: int | None) -> int | None:
    """The time step `code` belongs to, if within one step of `now` (clock drift) and after
    `last`, the step the device last accepted: each step counts once, and never an older one."""
    current = int(now) // STEP
    for step in (current - 1, current, current + 1):
        if (last is None or step > last) and hmac.compare_digest(code, code_at(seed, step * STEP)):
            return step
    return None
