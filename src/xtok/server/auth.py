"""Who is calling: SigV4 verification against stored keys and sessions, then the caller's
identity, policies and condition-key context."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from xtok.server import sigv4
from xtok.server.crypto import Sealer
from xtok.server.db import Database
from xtok.server.evaluation import ContextValue, Decision, Document, Request, decide
from xtok.server.faults import Fault

CallerKind = Literal["user", "session-token", "assumed-role"]


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass
class Caller:
    arn: str
    account: str
    kind: CallerKind
    user: str | None = None
    role: str | None = None
    user_id: str = ""
    session_name: str | None = None
    source_identity: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    session_policy: Document | None = None
    issued: float | None = None
    mfa: float | None = None  # when MFA was last proven for this caller's session

    @property
    def principal_arns(self) -> set[str]:
        """The ARNs a trust policy may name to mean this caller."""
        names = {self.arn, f"arn:aws:iam::{self.account}:root"}
        if self.user:
            names.add(f"arn:aws:iam::{self.account}:user/{self.user}")
        if self.role:
            names.add(f"arn:aws:iam::{self.account}:role/{self.role}")
        return names

    def context(self, now: datetime) -> dict[str, ContextValue]:
        ctx: dict[str, ContextValue] = {
            "aws:currenttime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "aws:epochtime": str(int(now.timestamp())),
            "aws:principalarn": (
                f"arn:aws:iam::{self.account}:role/{self.role}" if self.role else self.arn
            ),
            "aws:principalaccount": self.account,
            "aws:principaltype": "AssumedRole" if self.role else "User",
            "aws:userid": self.user_id,
        }
        if self.user:
            ctx["aws:username"] = self.user
        if self.issued is not None:  # these keys exist only for temporary credentials
            ctx["aws:tokenissuetime"] = datetime.fromtimestamp(self.issued, UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            )
            ctx["aws:multifactorauthpresent"] = "true" if self.mfa is not None else "false"
        if self.mfa is not None:
            ctx["aws:multifactorauthage"] = str(int(now.timestamp() - self.mfa))
        if self.source_identity:
            ctx["aws:sourceidentity"] = self.source_identity
        for key, value in self.tags.items():
            ctx[f"aws:principaltag/{key.lower()}"] = value
        return ctx


@dataclass(frozen=True)
class KeyHolder:
    """What an access key id stands for, as stored: its secret, who holds it and, for a session,
    the token's digest and when it expires. Nothing here depends on a request."""

    secret: str
    caller: Caller
    token_digest: bytes | None = None
    expires: float | None = None


def key_holder(db: Database, sealer: Sealer, account: str, key_id: str) -> KeyHolder:
    """The active access key or session `key_id` (unknown: `InvalidClientTokenId`)."""
    row = db.one("SELECT * FROM access_keys WHERE key_id = ? AND status = 'Active'", key_id)
    if row is not None:
        user = db.one("SELECT * FROM users WHERE name = ?", row["user_name"])
        if user is None:
            raise Fault.unknown_key()
        return KeyHolder(
            sealer.open(row["secret"], f"access-key:{row['key_id']}").decode(),
            Caller(
                arn=f"arn:aws:iam::{account}:user{user['path']}{user['name']}",
                account=account,
                kind="user",
                user=user["name"],
                user_id=user["user_id"],
            ),
        )
    session = db.one("SELECT * FROM sessions WHERE key_id = ?", key_id)
    if session is None:
        raise Fault.unknown_key()
    return KeyHolder(
        sealer.open(session["secret"], f"session:{session['key_id']}").decode(),
        _session_caller(db, account, session),
        session["token_digest"],
        session["expires"],
    )


def identify(
    holder: KeyHolder,
    auth: sigv4.Authorization,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    now: datetime,
) -> Caller:
    """The caller, once the request proves it holds the key (and the session is still valid)."""
    sigv4.verify(auth, holder.secret, method, url, headers, body, now)
    presented = headers.get("x-amz-security-token")
    if holder.token_digest is None:
        if presented is not None:
            raise Fault.unknown_key()
    elif not hmac.compare_digest(token_digest(presented or ""), holder.token_digest):
        raise Fault.unknown_key()
    if holder.expires is not None and now.timestamp() >= holder.expires:
        expired = Fault.expired_token()
        expired.principal = holder.caller  # proven holder of the keys: worth naming in the audit
        raise expired
    return holder.caller


def _session_caller(db: Database, account: str, session: Any) -> Caller:
    common: dict[str, Any] = dict(
        account=account,
        session_name=session["session_name"],
        source_identity=session["source_identity"],
        tags=json.loads(session["tags"]),
        session_policy=json.loads(session["policy"]) if session["policy"] else None,
        issued=session["issued"],
        mfa=session["mfa"],
    )
    if session["kind"] == "assumed-role":
        role = db.one("SELECT role_id FROM roles WHERE name = ?", session["owner"])
        role_id = role["role_id"] if role else "AROADELETED"
        return Caller(
            arn=f"arn:aws:sts::{account}:assumed-role/{session['owner']}/{session['session_name']}",
            kind="assumed-role",
            role=session["owner"],
            user_id=f"{role_id}:{session['session_name']}",
            **common,
        )
    user = db.one("SELECT * FROM users WHERE name = ?", session["owner"])
    if user is None:
        raise Fault.unknown_key()
    return Caller(
        arn=f"arn:aws:iam::{account}:user{user['path']}{user['name']}",
        kind="session-token",
        user=user["name"],
        user_id=user["user_id"],
        **common,
    )


def identity_policies(db: Database, caller: Caller) -> list[Document]:
    kind, owner = ("role", caller.role) if caller.role else ("user", caller.user)
    rows = db.all("SELECT document FROM inline_policies WHERE kind = ? AND owner = ?", kind, owner)
    return [json.loads(r["document"]) for r in rows]


def authorize(
    db: Database,
    caller: Caller,
    action: str,
    resource: str,
    now: datetime,
    extra: dict[str, ContextValue] | None = None,
) -> None:
    """Raise AccessDenied unless the caller's policies allow `action` on `resource`."""
    context = caller.context(now)
    if extra:
        context.update(extra)
    decision = decide(
        Request(action, resource, context), identity_policies(db, caller), caller.session_policy
    )
    if decision is Decision.ALLOW:
        return
    why = (
        "with an explicit deny in an identity-based policy"
        if decision is Decision.DENY
        else "because no identity-based policy allows the " + action + " action"
    )
    if decision is Decision.IMPLICIT and caller.session_policy is not None:
        why = "because no session policy and identity-based policy both allow the action"
    raise Fault.denied(caller.arn, action, resource, why)
