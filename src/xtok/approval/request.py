"""Request codes: what a pipeline asks an approver for, and the public key to seal it to.

`xtokr1.…` carries the run's identity, the secrets (as `ENV=NAME[#KEY]`), the lifetime, the
role and an X25519 public key. The private key stays in the run's private state directory;
`digest()` binds a sealed token to exactly this request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from xtok.approval.ci import RunIdentity
from xtok.aws.policy import check_secret_name
from xtok.display import check_plain
from xtok.errors import TokenError, UsageError
from xtok.refs import SecretRef, check_unique
from xtok.tokens import armor

KIND = "xtokr"
VERSION = 1
TIP = "copy the whole request code again (line breaks and spaces inside it are fine)"
_FORGED_TIP = "do not approve it: ask the pipeline's owner where this request code came from"
# What AssumeRole allows (15 min to 12 h): a request for more is refused before it is shown.
MIN_DURATION, MAX_DURATION = 900, 43_200


@dataclass(frozen=True)
class RequestCode:
    id: str
    identity: RunIdentity
    secrets: tuple[SecretRef, ...]
    duration: int
    public_key: bytes = field(repr=False)
    role: str | None = None
    created: int = 0

    def encode(self) -> str:
        return armor.encode(KIND, VERSION, self._payload())

    def _payload(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "run": self.identity.to_json(),
            "secrets": [_ref_json(r) for r in self.secrets],
            "duration": self.duration,
            "role": self.role,
            "pub": base64.b64encode(self.public_key).decode(),
            "created": self.created,
        }

    def digest(self) -> bytes:
        """SHA-256 over the canonical payload: what a sealed token must answer."""
        return hashlib.sha256(self.encode().encode()).digest()

    @property
    def fingerprint(self) -> str:
        """A short form of the public key, to compare by eye."""
        return hashlib.sha256(self.public_key).hexdigest()[:16]

    @classmethod
    def parse(cls, text: str) -> RequestCode:
        """The request in `text`; every field is pipeline-written, so each is checked here."""
        if "xtokt" in armor.compact(text):
            raise TokenError(
                "this holds the run's ticket (line 2 of `xtok request`): it must stay in the run",
                tip="pass only the request code (line 1); start a new request if the ticket was "
                "shared",
            )
        data = armor.decode(KIND, VERSION, text, what="request code", tip=TIP)
        try:
            secrets = tuple(_ref_from(item) for item in data["secrets"])
            check_unique(secrets)
            role = data.get("role")
            request = cls(
                id=str(data["id"]),
                identity=RunIdentity.from_json(data.get("run") or {}),
                secrets=secrets,
                duration=_integer(data["duration"]),
                public_key=base64.b64decode(data["pub"], validate=True),
                role=role if isinstance(role, str) else None,
                created=_integer(data.get("created") or 0),
            )
        except UsageError as exc:
            raise TokenError(f"request code: {exc.message}", tip=_FORGED_TIP) from None
        except (KeyError, TypeError, ValueError, AttributeError, binascii.Error):
            raise TokenError("request code content is malformed", tip=TIP) from None
        if not request.secrets or not _ID.match(request.id) or not _usable(request.public_key):
            raise TokenError("request code content is malformed", tip=TIP)
        if not MIN_DURATION <= request.duration <= MAX_DURATION:
            raise TokenError("request code asks for a lifetime outside 15m-12h", tip=_FORGED_TIP)
        for name, value in request.fields():
            check_plain(value, f"request code field {name!r}", tip=_FORGED_TIP)
        return request

    def fields(self) -> list[tuple[str, str]]:
        """Every pipeline-written text field, by name."""
        out = [(k, str(v)) for k, v in self.identity.to_json().items()]
        out += [("role", self.role or "")]
        for ref in self.secrets:
            out += [("secret", ref.env), ("secret", ref.label)]
        return out


_ID = re.compile(r"^[0-9a-f]{16}$")


def _usable(public_key: bytes) -> bool:
    """An X25519 public key that a key exchange accepts (not one of the low-order points)."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

    try:
        X25519PrivateKey.generate().exchange(X25519PublicKey.from_public_bytes(public_key))
    except ValueError:
        return False
    return True


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("not an integer")
    return value


def _ref_json(ref: SecretRef) -> dict[str, Any]:
    out: dict[str, Any] = {"env": ref.env, "name": ref.name}
    if ref.json_key:
        out["key"] = ref.json_key
    if ref.as_file:
        out["file"] = True
    return out


def _ref_from(item: Any) -> SecretRef:
    from xtok.refs import parse_ref

    if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in ("env", "name")):
        raise TypeError("a secret entry is not {env, name}")
    spec = f"{item['env']}={check_secret_name(str(item['name']))}"
    if item.get("key"):
        spec += f"#{item['key']}"
    return parse_ref(spec, as_file=bool(item.get("file")))
