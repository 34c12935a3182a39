"""Who is calling: SigV4 verification against stored keys and sessions, then the caller's
identity, policies and condition-key context."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from xtok.server import sigv4, tags
from xtok.server.conditions import ContextValue
from xtok.server.crypto import Sealer
from xtok.server.db import Database
from xtok.server.evaluation import Decision, Principal, Request, decide
from xtok.server.faults import Fault
from xtok.server.policydoc import Document

CallerKind = Literal["user", "session-token", "assumed-role"]
_ISO_MS = "%Y-%m-%dT%H:%M:%S.%f"


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def iso_ms(ts: float) -> str:
    """A time as ISO 8601 with milliseconds (truncated), the form `aws:TokenIssueTime` takes."""
    return datetime.fromtimestamp(ts, UTC).strftime(_ISO_MS)[:-3] + "Z"


@dataclass(frozen=True)  # the key-holder cache hands one Caller to every request of its key
class Caller:
    arn: str  # the caller's own ARN: the IAM user, or the assumed-role session
    principal_arn: str  # the IAM user or role, with its path
    account: str
    kind: CallerKind
    user: str | None = None  # the IAM user's name (long-term keys or GetSessionToken)
    role: str | None = None  # the role's name (assumed-role sessions)
    user_id: str = ""  # AIDA… for users, AROA…:session-name for role sessions
    session_name: str | None = None
    source_identity: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    session_policy: Document | None = None
    issued: float | None = None
    mfa: float | None = None  # when MFA was last proven for this caller's session

    @property
    def principal(self) -> Principal:
        """Who a resource-based policy may name to mean this caller."""
        return Principal(self.arn, self.principal_arn, self.account, self.user_id.split(":")[0])

    def context(self, now: datetime) -> dict[str, ContextValue]:
        """The condition keys that describe the caller (see `request_keys` for the request)."""
        ctx: dict[str, ContextValue] = {
            "aws:principalarn": self.principal_arn,
            "aws:principalaccount": self.account,
            "aws:principaltype": "AssumedRole" if self.kind == "assumed-role" else "User",
            "aws:userid": self.user_id,
        }
        if self.user:
            ctx["aws:username"] = self.user
        if self.issued is not None:  # these keys exist only for temporary credentials
            ctx["aws:tokenissuetime"] = iso_ms(self.issued)
            ctx["aws:multifactorauthpresent"] = "true" if self.mfa is not None else "false"
        if self.mfa is not None:
            ctx["aws:multifactorauthage"] = str(int(now.timestamp() - self.mfa))
        if self.source_identity:
            ctx["aws:sourceidentity"] = self.source_identity
        for key, value in self.tags.items():
            ctx[f"aws:principaltag/{key.lower()}"] = value
        return ctx


def request_keys(
    url: str, region: str, source_ip: str | None, now: datetime
) -> dict[str, ContextValue]:
    """The condition keys that describe the request itself."""
    keys: dict[str, ContextValue] = {
        "aws:currenttime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "aws:epochtime": str(int(now.timestamp())),
        "aws:securetransport": "true" if url.lower().startswith("https:") else "false",
        "aws:requestedregion": region,
        "aws:viaawsservice": "false",  # no AWS service calls this endpoint on a caller's behalf
    }
    if source_ip:
        keys["aws:sourceip"] = source_ip
    return keys


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
        arn = f"arn:aws:iam::{account}:user{user['path']}{user['name']}"
        return KeyHolder(
            sealer.open(row["secret"], f"access-key:{row['key_id']}").decode(),
            Caller(
                arn=arn,
                principal_arn=arn,
                account=account,
                kind="user",
                user=user["name"],
                user_id=user["user_id"],
                tags=tags.of(db, "user", user["name"]),
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
    """The caller a session belongs to, found by the unique id it was issued to: a deleted user
    or role takes its sessions with it, and one re-created under the same name is another."""
    common: dict[str, Any] = dict(
        account=account,
        session_name=session["session_name"],
        source_identity=session["source_identity"],
        session_policy=json.loads(session["policy"]) if session["policy"] else None,
        issued=session["issued"],
        mfa=session["mfa"],
    )
    if session["kind"] == "assumed-role":
        role = db.one("SELECT name, path FROM roles WHERE role_id = ?", session["owner"])
        if role is None:
            raise Fault.unknown_key()
        return Caller(
            arn=f"arn:aws:sts::{account}:assumed-role/{role['name']}/{session['session_name']}",
            principal_arn=f"arn:aws:iam::{account}:role{role['path']}{role['name']}",
            kind="assumed-role",
            role=role["name"],
            user_id=f"{session['owner']}:{session['session_name']}",
            # aws:PrincipalTag: the role's tags, overridden by the session's own.
            tags={**tags.of(db, "role", role["name"]), **json.loads(session["tags"])},
            **common,
        )
    user = db.one("SELECT name, path FROM users WHERE user_id = ?", session["owner"])
    if user is None:
        raise Fault.unknown_key()
    arn = f"arn:aws:iam::{account}:user{user['path']}{user['name']}"
    return Caller(
        arn=arn,
        principal_arn=arn,
        kind="session-token",
        user=user["name"],
        user_id=session["owner"],
        tags=tags.of(db, "user", user["name"]),
        **common,
    )


# A principal's identity-based policies: its inline policies and the default versions of the
# managed policies attached to it, and for a user the same of each group it belongs to.
_IDENTITY_POLICIES = """
WITH holders(kind, owner) AS (
    SELECT ?1, ?2
    UNION ALL SELECT 'group', group_name FROM group_members WHERE ?1 = 'user' AND user_name = ?2
)
SELECT p.document FROM inline_policies p JOIN holders h ON p.kind = h.kind AND p.owner = h.owner
UNION ALL
SELECT v.document FROM attachments a
    JOIN holders h ON a.kind = h.kind AND a.owner = h.owner
    JOIN managed_policies m ON m.arn = a.policy_arn
    JOIN policy_versions v ON v.arn = m.arn AND v.version_id = m.default_version
"""


def identity_policies(db: Database, caller: Caller) -> list[Document]:
    kind, owner = ("role", caller.role) if caller.role else ("user", caller.user)
    rows = db.all(_IDENTITY_POLICIES, kind, owner)
    return [json.loads(r["document"]) for r in rows]


def authorize(db: Database, caller: Caller, request: Request, shown: str | None = None) -> None:
    """Raise AccessDenied unless the caller's policies allow the request. The message names
    `shown` (what the caller asked for) rather than the resolved resource, so that a denied
    caller learns nothing about what exists."""
    if caller.kind == "session-token" and caller.mfa is None and request.action.startswith("iam:"):
        # GetSessionToken's credentials call no IAM operation unless MFA was given (STS API
        # reference); AWS answers as for an unknown token, whatever the policies say.
        raise Fault.unknown_key()
    decision = decide(request, identity_policies(db, caller), caller.session_policy)
    if decision is Decision.ALLOW:
        return
    action = request.action
    why = (
        "with an explicit deny in an identity-based policy"
        if decision is Decision.DENY
        else "because no identity-based policy allows the " + action + " action"
    )
    if decision is Decision.IMPLICIT and caller.session_policy is not None:
        why = "because no session policy and identity-based policy both allow the action"
    raise Fault.denied(caller.arn, action, shown or request.resource, why)
