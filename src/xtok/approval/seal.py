"""Sealed tokens: temporary credentials that only the requesting run can open, once.

The pipeline (`xtok request`) keeps an X25519 private key in a private state directory,
encrypted to the run's ticket (see `pending`). The approver (`xtok approve`) seals the plain
token to the request's public key with HPKE (RFC 9180: DHKEM(X25519), HKDF-SHA256,
ChaCha20-Poly1305, from `cryptography`), with the request's digest as HPKE `info`, so the
ciphertext opens only for this exact request. The run (`xtok run --sealed`) claims its own
request's key and uses it up when the token opens: a second attempt finds none.

HPKE's base mode does not say who sealed: anyone holding the request code can seal something
to it. That is why what opens is parsed like any input, and why Jenkins' input needs a
`submitter`.
"""

from __future__ import annotations

import binascii
import hmac
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from xtok.approval import pending
from xtok.approval.ci import RunIdentity
from xtok.approval.request import RequestCode
from xtok.display import shown
from xtok.errors import TokenError, UsageError
from xtok.refs import SecretRef
from xtok.tokens import armor
from xtok.tokens import token as tokens

KIND = "xtoks"
VERSION = 1
_INFO = b"xtok sealed token v1:"
_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
TIP = "copy the whole sealed token again (line breaks and spaces inside it are fine)"


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
    try:
        RequestCode.parse(request.encode())  # what the approver would refuse, refuse now
    except TokenError as exc:
        raise UsageError(exc.message, tip="check --job, --build, --build-url, --commit") from None
    return request, key


def new_request(
    identity: RunIdentity,
    refs: tuple[SecretRef, ...],
    duration: int,
    role: str | None,
    state_dir: Path,
    wait: int = pending.DEFAULT_WAIT,
) -> tuple[RequestCode, pending.Ticket]:
    """Create a key pair, keep the private half in `state_dir` (encrypted to the ticket), and
    return the request code (for the approver) and the ticket (for this run only)."""
    request, key = new_request_in_memory(identity, refs, duration, role)
    private = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return request, pending.keep(request, private, state_dir, wait)


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


def open_sealed(
    sealed: SealedToken, ticket: pending.Ticket, state_dir: Path
) -> tuple[RequestCode, tokens.Credentials]:
    """Open `sealed` with the key of this run's own request (named by its ticket). The key is
    used up only when the token opens; a token for another request touches no key at all."""
    if sealed.request_id != ticket.request_id:
        raise TokenError(
            f"the sealed token answers request {shown(sealed.request_id)}, not this run's "
            f"request {ticket.request_id}: it was sealed for another run",
            tip="ask the approver to approve this run's request code",
        )
    with pending.claim(ticket, state_dir) as (request, private):
        creds = open_with_key(sealed, request, X25519PrivateKey.from_private_bytes(private))
    return request, creds


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
            tip="ask the approver to approve this run's request code again",
        ) from None
    try:
        text = plain.decode()
    except UnicodeDecodeError:  # anyone may seal to a public key: the content is checked too
        raise TokenError("the sealed token holds no token", tip=TIP) from None
    return tokens.parse(text)
