"""Plain tokens: the temporary AWS credentials a run uses, and their text forms.

Accepted forms (`parse`):
- xtok:   `xtok1.<base64url JSON>.<checksum>`, one line, any whitespace ignored (so a token that a
          terminal or chat re-wrapped still parses). The checksum catches truncation and typos;
          it is not a signature, AWS itself authenticates the credentials.
- legacy: the write-up's `SessionToken:AccessKeyId:SecretAccessKey` (carries no expiry).
- JSON:   what `aws sts get-session-token` / `assume-role` print (and the flat
          `aws configure export-credentials` shape).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from xtok.duration import format_duration
from xtok.errors import TokenError, TokenExpired
from xtok.sensitive import Secret
from xtok.tokens import armor

KIND = "xtok"
VERSION = 1
_ACCESS_KEY_ID = re.compile(r"^[A-Z0-9]{16,128}$")
# A region names the fetch's host (secretsmanager.REGION.amazonaws.com): nothing else fits in.
_REGION = re.compile(r"^[a-z0-9]+(-[a-z0-9]+){0,5}$")

Kind = Literal["assume-role", "session-token", "unknown"]
Source = Literal["xtok", "legacy", "aws-json"]

TIP_RECOPY = "copy the whole token again (line breaks and spaces inside it are fine)"


@dataclass(frozen=True)
class Scope:
    """Which secrets a session policy narrows the credentials to (informational: AWS enforces)."""

    secrets: tuple[str, ...] = ()
    prefix: str | None = None

    def allows(self, name: str) -> bool:
        if self.prefix is not None:
            return name.startswith(self.prefix)
        return name in self.secrets

    def describe(self) -> str:
        if self.prefix is not None:
            return f"secrets under prefix {self.prefix!r}"
        return "secrets " + ", ".join(self.secrets)

    def to_json(self) -> dict[str, Any]:
        return (
            {"prefix": self.prefix} if self.prefix is not None else {"secrets": list(self.secrets)}
        )

    @classmethod
    def from_json(cls, data: object) -> Scope | None:
        if data is None:
            return None
        if isinstance(data, dict):
            if isinstance(data.get("prefix"), str):
                return cls(prefix=data["prefix"])
            names = data.get("secrets")
            if isinstance(names, list) and all(isinstance(n, str) for n in names):
                return cls(secrets=tuple(names))
        raise TokenError("token scope is malformed", tip=TIP_RECOPY)


@dataclass(frozen=True)
class Credentials:
    """Temporary AWS credentials plus what xtok knows about them."""

    access_key_id: str
    secret_access_key: Secret = field(repr=False)
    session_token: Secret = field(repr=False)
    expiration: datetime | None = None
    issued: datetime | None = None
    kind: Kind = "unknown"
    session_name: str | None = None
    scope: Scope | None = None
    region: str | None = None
    source: Source = "xtok"

    @property
    def key_hint(self) -> str:
        """The access key id's last four characters: enough to match CloudTrail, useless alone."""
        return "…" + self.access_key_id[-4:]

    def seconds_left(self, now: datetime) -> float | None:
        return None if self.expiration is None else (self.expiration - now).total_seconds()

    def check_fresh(self, now: datetime, min_ttl: int = 0) -> None:
        """Fail closed when the credentials are expired or will be within `min_ttl` seconds."""
        left = self.seconds_left(now)
        if left is None:
            return
        at = self.expiration.strftime("%H:%M:%S UTC") if self.expiration else "?"
        if left <= 0:
            raise TokenExpired(
                f"token expired at {at} ({format_duration(left)} ago)",
                tip="ask the approver for a new token",
            )
        if left < min_ttl:
            raise TokenExpired(
                f"token explodes at {at}, in {format_duration(left)}: less than the "
                f"{format_duration(min_ttl)} --min-ttl",
                tip="ask the approver for a new token, or lower --min-ttl",
            )


def _ts(dt: datetime | None) -> int | None:
    return None if dt is None else int(dt.timestamp())


def _from_ts(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise TokenError("token timestamps are malformed", tip=TIP_RECOPY)
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):  # beyond what a datetime holds: forged
        raise TokenError("token timestamps are out of range", tip=TIP_RECOPY) from None


def encode(creds: Credentials) -> str:
    """The one-line xtok form of `creds`."""
    # Metadata first: the start of a token (what a truncated display shows) holds no secret part.
    payload = {
        "kind": creds.kind,
        "iat": _ts(creds.issued),
        "exp": _ts(creds.expiration),
        "name": creds.session_name,
        "scope": creds.scope.to_json() if creds.scope else None,
        "region": creds.region,
        "k": creds.access_key_id,
        "s": creds.secret_access_key.reveal_text(),
        "t": creds.session_token.reveal_text(),
    }
    return armor.encode(KIND, VERSION, payload)


def encode_legacy(creds: Credentials) -> str:
    """The write-up's `SessionToken:AccessKeyId:SecretAccessKey`."""
    return ":".join(
        (
            creds.session_token.reveal_text(),
            creds.access_key_id,
            creds.secret_access_key.reveal_text(),
        )
    )


def encode_json(creds: Credentials) -> str:
    """The shape `aws sts get-session-token` prints, which `parse` accepts back."""
    doc: dict[str, Any] = {
        "Credentials": {
            "AccessKeyId": creds.access_key_id,
            "SecretAccessKey": creds.secret_access_key.reveal_text(),
            "SessionToken": creds.session_token.reveal_text(),
            "Expiration": creds.expiration.isoformat() if creds.expiration else None,
        }
    }
    return json.dumps(doc, separators=(",", ":"))


def parse(text: str) -> Credentials:
    """Parse any accepted form; raise `TokenError` with a reason that never quotes the token."""
    stripped = text.strip()
    if not stripped:
        raise TokenError(
            "the token is empty", tip="pass the token on stdin, in a file or an env var"
        )
    if stripped.startswith("{"):
        return _parse_json(stripped)
    compact = armor.compact(stripped)
    if compact.startswith("xtok"):
        return _parse_xtok(compact)
    if compact.count(":") == 2:
        return _parse_legacy(compact)
    raise TokenError(
        "not a token xtok understands",
        tip="expected an xtok1. token, SessionToken:AccessKeyId:SecretAccessKey, or the JSON of "
        "`aws sts get-session-token`",
    )


def _parse_xtok(compact: str) -> Credentials:
    if compact.startswith("xtokt"):
        raise TokenError(
            "this is a run's ticket (line 2 of `xtok request`), not a token",
            tip="keep it in the run, for `xtok run --sealed` (XTOK_TICKET); never share it",
        )
    if compact.startswith(("xtokr", "xtoks")):
        raise TokenError(
            "this is a request code or a sealed token, not a plain token",
            tip="approve a request code with `xtok approve`; run a sealed token with "
            "`xtok run --sealed`",
        )
    data = armor.decode(KIND, VERSION, compact, what="token", tip=TIP_RECOPY)
    fields = ("k", "s", "t")
    if not all(isinstance(data.get(f), str) and data[f] for f in fields):
        raise TokenError("token lacks its credentials", tip=TIP_RECOPY)
    region = data.get("region")
    if not _ACCESS_KEY_ID.match(data["k"]) or not (
        region is None or (isinstance(region, str) and len(region) <= 32 and _REGION.match(region))
    ):
        raise TokenError("token's access key id or region is malformed", tip=TIP_RECOPY)
    kind = data.get("kind", "unknown")
    return Credentials(
        access_key_id=data["k"],
        secret_access_key=Secret(data["s"]),
        session_token=Secret(data["t"]),
        expiration=_from_ts(data.get("exp")),
        issued=_from_ts(data.get("iat")),
        kind=kind if kind in ("assume-role", "session-token") else "unknown",
        session_name=data.get("name") if isinstance(data.get("name"), str) else None,
        scope=Scope.from_json(data.get("scope")),
        region=region,
        source="xtok",
    )


def _parse_legacy(compact: str) -> Credentials:
    session_token, key_id, secret_key = compact.split(":")
    if not (session_token and key_id and secret_key):
        raise TokenError("legacy token has an empty part", tip=TIP_RECOPY)
    if not _ACCESS_KEY_ID.match(key_id):
        raise TokenError(
            "legacy token's middle part is not an AWS access key id",
            tip="the legacy order is SessionToken:AccessKeyId:SecretAccessKey",
        )
    return Credentials(
        access_key_id=key_id,
        secret_access_key=Secret(secret_key),
        session_token=Secret(session_token),
        source="legacy",
    )


def _parse_json(text: str) -> Credentials:
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        raise TokenError("token looks like JSON but does not parse", tip=TIP_RECOPY) from None
    if not isinstance(doc, dict):
        raise TokenError("token JSON is not an object", tip=TIP_RECOPY)
    inner = doc.get("Credentials", doc)
    if not isinstance(inner, dict):
        raise TokenError("token JSON has no Credentials object", tip=TIP_RECOPY)
    values = [inner.get(k) for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")]
    if not all(isinstance(v, str) and v for v in values):
        raise TokenError(
            "token JSON lacks AccessKeyId, SecretAccessKey or SessionToken",
            tip="paste the whole output of `aws sts get-session-token` or `assume-role`",
        )
    key_id, secret_key, session_token = (str(v) for v in values)
    expiration = _parse_iso(inner.get("Expiration"))
    user = doc.get("AssumedRoleUser")
    arn = user.get("Arn") if isinstance(user, dict) else None
    return Credentials(
        access_key_id=key_id,
        secret_access_key=Secret(secret_key),
        session_token=Secret(session_token),
        expiration=expiration,
        kind="assume-role" if isinstance(arn, str) else "session-token",
        session_name=arn.rsplit("/", 1)[-1] if isinstance(arn, str) else None,
        source="aws-json",
    )


def _parse_iso(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TokenError("token Expiration is not a time", tip=TIP_RECOPY)
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):  # not a time, or one beyond year 1..9999 in UTC
        raise TokenError("token Expiration is not an ISO 8601 time", tip=TIP_RECOPY) from None
