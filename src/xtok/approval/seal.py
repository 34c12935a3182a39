"""Sealed tokens: temporary credentials that only the requesting run can open, once.

The pipeline (`xtok request`) keeps an X25519 private key in a private state directory. The
approver (`xtok approve`) seals the plain token to the request's public key with HPKE
(RFC 9180: DHKEM(X25519), HKDF-SHA256, ChaCha20-Poly1305, from `cryptography`), with the
request's digest as HPKE `info`, so the ciphertext opens only for this exact request. The run
(`xtok run --sealed`) deletes the private key before it decrypts: a second attempt finds none.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import secrets
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from xtok.approval.ci import RunIdentity
from xtok.approval.request import RequestCode
from xtok.errors import ConfigError, TokenError
from xtok.refs import SecretRef
from xtok.tokens import armor
from xtok.tokens import token as tokens

KIND = "xtoks"
VERSION = 1
STATE_ENV = "XTOK_STATE_DIR"
_INFO = b"xtok sealed token v1:"
_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
TIP = "copy the whole sealed token again (line breaks and spaces inside it are fine)"


def default_state_dir() -> Path:
    """Per user, on tmpfs where available: private keys should never reach a disk."""
    env = os.environ.get(STATE_ENV)
    if env:
        return Path(env)
    uid = os.getuid()
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):  # noqa: S108 - tmpfs
        return Path(f"/dev/shm/xtok-{uid}")  # noqa: S108
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "xtok"
    return Path.home() / ".cache" / "xtok" / "requests"


def _private_dir(path: Path, *, create: bool) -> Path:
    if create:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise ConfigError(
            f"no request state directory {path}",
            tip="run `xtok request` first, on this machine and with the same --state-dir",
        ) from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ConfigError(
            f"state directory {path} is not a private (0700) directory of yours",
            tip=f"remove it, or pass another --state-dir / {STATE_ENV}",
        )
    return path


def new_request_in_memory(
    identity: RunIdentity, refs: tuple[SecretRef, ...], duration: int, role: str | None
) -> tuple[RequestCode, X25519PrivateKey]:
    """A request code and its private key, which the caller keeps (relay mode: it never
    touches a disk)."""
    key = X25519PrivateKey.generate()
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    request = RequestCode(
        id=secrets.token_hex(8),
        identity=identity,
        secrets=refs,
        duration=duration,
        public_key=public,
        role=role,
        created=int(time.time()),
    )
    return request, key


def new_request(
    identity: RunIdentity,
    refs: tuple[SecretRef, ...],
    duration: int,
    role: str | None,
    state_dir: Path,
) -> RequestCode:
    """Create a key pair, keep the private half in `state_dir`, return the request code."""
    request, key = new_request_in_memory(identity, refs, duration, role)
    private = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    directory = _private_dir(state_dir, create=True)
    record = {"request": request.encode(), "key": base64.b64encode(private).decode()}
    fd = os.open(
        directory / f"{request.id}.json",
        os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
        0o600,
    )
    with os.fdopen(fd, "w") as f:
        json.dump(record, f)
    return request


@dataclass(frozen=True)
class SealedToken:
    request_id: str
    digest: bytes
    ciphertext: bytes

    def encode(self) -> str:
        return armor.encode(
            KIND,
            VERSION,
            {
                "id": self.request_id,
                "d": armor.b64e(self.digest),
                "ct": armor.b64e(self.ciphertext),
            },
        )

    @classmethod
    def parse(cls, text: str) -> SealedToken:
        data = armor.decode(KIND, VERSION, text, what="sealed token", tip=TIP)
        try:
            return cls(str(data["id"]), armor.b64d(data["d"]), armor.b64d(data["ct"]))
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise TokenError("sealed token content is malformed", tip=TIP) from None


def seal(request: RequestCode, creds: tokens.Credentials) -> SealedToken:
    public = X25519PublicKey.from_public_bytes(request.public_key)
    digest = request.digest()
    ciphertext = _SUITE.encrypt(tokens.encode(creds).encode(), public, info=_INFO + digest)
    return SealedToken(request.id, digest, ciphertext)


def discard(request: RequestCode, state_dir: Path) -> None:
    """Remove the key of a request that will never be answered (denied, expired, refused)."""
    (state_dir / f"{request.id}.json").unlink(missing_ok=True)


def open_sealed(sealed: SealedToken, state_dir: Path) -> tuple[RequestCode, tokens.Credentials]:
    """Open `sealed` with the key of the pending request it answers; the key is deleted first,
    so whatever happens next, this request cannot be answered again."""
    directory = _private_dir(state_dir, create=False)
    if not all(c in "0123456789abcdef" for c in sealed.request_id) or not sealed.request_id:
        raise TokenError("sealed token names no valid request", tip=TIP)
    path = directory / f"{sealed.request_id}.json"
    try:
        record = json.loads(path.read_text())
        path.unlink()
    except FileNotFoundError:
        raise TokenError(
            f"no pending request {sealed.request_id} in {directory}: the token was already "
            "used, or was sealed for another run",
            tip="start a new request (`xtok request`) and ask for a new approval",
        ) from None
    except ValueError:
        path.unlink(missing_ok=True)
        raise ConfigError(
            f"the state of request {sealed.request_id} is damaged", tip="start a new request"
        ) from None
    request = RequestCode.parse(record["request"])
    key = X25519PrivateKey.from_private_bytes(base64.b64decode(record["key"]))
    return request, open_with_key(sealed, request, key)


def open_with_key(
    sealed: SealedToken, request: RequestCode, key: X25519PrivateKey
) -> tokens.Credentials:
    """Open `sealed` if it answers `request`, whose private key is `key`."""
    if not hmac.compare_digest(sealed.digest, request.digest()):
        raise TokenError(
            "the sealed token does not answer this run's request",
            tip="ask the approver to approve this run's request code",
        )
    try:
        plain = _SUITE.decrypt(sealed.ciphertext, key, info=_INFO + request.digest())
    except InvalidTag:
        raise TokenError(
            "the sealed token does not open: it was altered, or sealed for another request",
            tip="start a new request and ask for a new approval",
        ) from None
    return tokens.parse(plain.decode())
