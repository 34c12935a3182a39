"""Request codes: what a pipeline asks an approver for, and the public key to seal it to.

`xtokr1.…` carries the run's identity, the secrets (as `ENV=NAME[#KEY]`), the lifetime, the
role and an X25519 public key. The private key stays in the run's private state directory;
`digest()` binds a sealed token to exactly this request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from typing import Any

from xtok.approval.ci import RunIdentity
from xtok.aws.policy import check_secret_name
from xtok.errors import TokenError
from xtok.refs import SecretRef, check_unique
from xtok.tokens import armor

KIND = "xtokr"
VERSION = 1
TIP = "copy the whole request code again (line breaks and spaces inside it are fine)"


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
        data = armor.decode(KIND, VERSION, text, what="request code", tip=TIP)
        try:
            secrets = tuple(_ref_from(item) for item in data["secrets"])
            check_unique(secrets)
            request = cls(
                id=str(data["id"]),
                identity=RunIdentity.from_json(data.get("run") or {}),
                secrets=secrets,
                duration=int(data["duration"]),
                public_key=base64.b64decode(data["pub"], validate=True),
                role=data.get("role") if isinstance(data.get("role"), str) else None,
                created=int(data.get("created") or 0),
            )
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise TokenError("request code content is malformed", tip=TIP) from None
        if len(request.public_key) != 32 or not request.secrets:
            raise TokenError("request code content is malformed", tip=TIP)
        return request


def _ref_json(ref: SecretRef) -> dict[str, Any]:
    out: dict[str, Any] = {"env": ref.env, "name": ref.name}
    if ref.json_key:
        out["key"] = ref.json_key
    if ref.as_file:
        out["file"] = True
    return out


def _ref_from(item: Any) -> SecretRef:
    from xtok.refs import parse_ref

    spec = f"{item['env']}={check_secret_name(str(item['name']))}"
    if item.get("key"):
        spec += f"#{item['key']}"
    return parse_ref(spec, as_file=bool(item.get("file")))
