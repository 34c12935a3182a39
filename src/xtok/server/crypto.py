"""Envelope encryption at rest (AES-256-GCM from `cryptography`).

A master key (file or environment, never in the database) wraps one random data key stored in
the database; the data key encrypts every secret value, secret access key and MFA seed. Each
ciphertext is bound to its row by associated data, so a value copied to another row fails to
decrypt.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from xtok.errors import ConfigError
from xtok.regular_file import read_private

KEY_BYTES = 32
_NONCE = 12
MASTER_KEY_ENV = "XTOK_SERVER_MASTER_KEY"


class Sealer:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, context: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def open(self, blob: bytes, context: str) -> bytes:
        try:
            return self._aead.decrypt(blob[:_NONCE], blob[_NONCE:], context.encode())
        except InvalidTag:
            raise ConfigError(
                "stored data does not decrypt: wrong master key, or the database was altered",
                tip="start the server with the master key this data was created with",
            ) from None


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def encode_key(key: bytes) -> str:
    return base64.b64encode(key).decode()


def decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except binascii.Error:
        key = b""
    if len(key) != KEY_BYTES:
        raise ConfigError(
            f"the master key in {where} is not {KEY_BYTES} base64-encoded bytes",
            tip="create one with `xtok server init`",
        )
    return key


def load_master_key(path: Path | None) -> bytes:
    """From --master-key-file, else $XTOK_SERVER_MASTER_KEY."""
    if path is not None:
        try:
            tip = "pass the key file `xtok server init` created"
            raw = read_private(path, what="master key file", tip=tip)
        except OSError as exc:
            raise ConfigError(
                f"cannot read master key file {path}: {exc.strerror}",
                tip="create it with `xtok server init`",
            ) from None
        return decode_key(raw.decode(errors="replace"), str(path))  # not base64: refused there
    env = os.environ.get(MASTER_KEY_ENV)
    if env:
        return decode_key(env, MASTER_KEY_ENV)
    raise ConfigError(
        "no master key",
        tip=f"pass --master-key-file or set {MASTER_KEY_ENV}; `xtok server init` creates one",
    )


def write_private(path: Path, text: str) -> None:
    """Create `path` with mode 0600 (refusing to overwrite)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
