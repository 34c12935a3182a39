"""STS: GetCallerIdentity, GetSessionToken, AssumeRole — with AWS's limits, TOTP MFA, trust
policies and session policies."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from xtok.server import tags as tags_of
from xtok.server.auth import Caller, identity_policies, token_digest
from xtok.server.conditions import ContextValue
from xtok.server.evaluation import Decision, Request, decide, trust_allows
from xtok.server.faults import Fault
from xtok.server.ops import Ctx, Handler, random_id, random_text, register_into
from xtok.server.policydoc import Document, parse_document
from xtok.server.totp import accepted_step

OPERATIONS: dict[str, Handler] = {}
op = register_into(OPERATIONS)

SESSION_TOKEN_MAX = 129_600
CHAINED_MAX = 3600
POLICY_LIMIT = 2048
MAX_POLICY_ARNS = 10
_EXTERNAL_ID = re.compile(r"^[\w+=,.@:/-]{2,1224}$", re.ASCII)
_NAME = re.compile(r"^[\w+=,.@-]{2,64}$", re.ASCII)
_ROLE_NAME = re.compile(r"/([\w+=,.@-]{1,64})$", re.ASCII)


@op("GetCallerIdentity")
def get_caller_identity(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    ctx.resource = ctx.caller.arn
    return {"UserId": ctx.caller.user_id, "Account": ctx.account, "Arn": ctx.caller.arn}


@op("GetSessionToken")
def get_session_token(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    caller = ctx.caller
    ctx.resource = caller.arn
    if caller.kind != "user":
        raise Fault("AccessDenied", "Cannot call GetSessionToken with session credentials", 403)
    duration = _duration(ctx, p.get("DurationSeconds", 43_200), SESSION_TOKEN_MAX)
    mfa = _check_mfa(ctx, caller, p)
    return {"Credentials": _new_session(ctx, "session-token", caller.user_id, duration, mfa=mfa)}


@op("AssumeRole")
def assume_role(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    caller = ctx.caller
    role_arn = str(p.get("RoleArn", ""))
    ctx.resource = role_arn
    name = str(p.get("RoleSessionName", ""))
    if not _NAME.match(name):
        raise Fault.invalid("RoleSessionName must be 2-64 characters of [\\w+=,.@-]")
    source = p.get("SourceIdentity")
    if source is not None and (not _NAME.match(source) or source.lower().startswith("aws:")):
        raise Fault.invalid("SourceIdentity must be 2-64 characters of [\\w+=,.@-], not aws:")
    if caller.source_identity and source not in (None, caller.source_identity):
        raise Fault.invalid("SourceIdentity cannot change when chaining roles")
    source = source or caller.source_identity
    tags = _session_tags(p.get("Tags", []))
    external_id = p.get("ExternalId")
    if external_id is not None and not _EXTERNAL_ID.match(str(external_id)):
        raise Fault.invalid("ExternalId must be 2-1224 characters of [\\w+=,.@:/-]")
    policy_text = p.get("Policy")
    arns = _policy_arns(p.get("PolicyArns"))
    packed = len(policy_text or "") + sum(len(a) for a in arns)
    if packed > POLICY_LIMIT:
        raise Fault(
            "PackedPolicyTooLarge",
            "Packed size of the session policies exceeds the limit: the inline session policy "
            "and the managed policy ARNs are at most 2,048 characters together",
            400,
        )
    inline = None if policy_text is None else parse_document(policy_text)
    role = _role(ctx, role_arn)
    if role is None:
        raise _cannot_assume(caller, role_arn)
    limit = CHAINED_MAX if caller.kind == "assumed-role" else int(role["max_session"])
    duration = _duration(ctx, p.get("DurationSeconds", 3600), limit)
    mfa = _check_mfa(ctx, caller, p)
    context = ctx.context({"sts:rolesessionname": name})
    if source:
        context["sts:sourceidentity"] = source
    if external_id is not None:
        context["sts:externalid"] = str(external_id)
    context.update(tags_of.condition_keys(list(tags), tags))
    if mfa is not None:
        context["aws:multifactorauthpresent"] = "true"
        context["aws:multifactorauthage"] = str(int(ctx.ts - mfa))
    _check_trust(ctx, role_arn, role, context, source, bool(tags))
    # Resolved only for a caller the role trusts: no one else learns which policies exist.
    session_policy = _session_policy(ctx, inline, arns)
    creds = _new_session(
        ctx,
        "assumed-role",
        role["role_id"],
        duration,
        name=name,
        source=source,
        tags=tags,
        policy=None if session_policy is None else json.dumps(session_policy),
        mfa=mfa,
    )
    result: dict[str, Any] = {
        "Credentials": creds,
        "AssumedRoleUser": {
            "AssumedRoleId": f"{role['role_id']}:{name}",
            "Arn": f"arn:aws:sts::{ctx.account}:assumed-role/{role['name']}/{name}",
        },
        "PackedPolicySize": (packed * 100) // POLICY_LIMIT if session_policy else None,
    }
    if source:
        result["SourceIdentity"] = source
    return result


def _session_tags(raw: Any) -> dict[str, str]:
    """Session tags, checked like IAM tags (they become `aws:PrincipalTag/*`); their keys are
    case-insensitive, so two that differ only in case are refused, as STS does."""
    found = tags_of.parse(
        raw,
        Fault.invalid(
            "Tags must be up to 50 of Key (1-128) and Value (0-256) of letters, digits, "
            "spaces and _.:/=+-@; keys may not start with aws: or repeat (in any case)"
        ),
        folded=True,
    )
    if len(found) > tags_of.MAX_TAGS:
        raise Fault.invalid("A session can carry at most 50 tags")
    return found


def _policy_arns(raw: Any) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_POLICY_ARNS:
        raise Fault.invalid(f"PolicyArns may name at most {MAX_POLICY_ARNS} managed policies")
    arns = [item.get("arn") if isinstance(item, dict) else None for item in raw]
    if not all(isinstance(a, str) for a in arns):
        raise Fault.invalid("Each PolicyArns entry needs an arn")
    return [str(a) for a in arns]


def _session_policy(ctx: Ctx, inline: Document | None, arns: list[str]) -> Document | None:
    """The session's policies as one document: the inline policy's statements and those of
    each managed policy's default version (as they are now). Together they form the session
    policy that every request of the session must also be allowed by."""
    if inline is None and not arns:
        return None
    statements = _statement_list(inline) if inline is not None else []
    for arn in arns:
        row = ctx.db.one(
            "SELECT v.document FROM managed_policies m JOIN policy_versions v "
            "ON v.arn = m.arn AND v.version_id = m.default_version WHERE m.arn = ?",
            arn,
        )
        if row is None:  # only this account's customer-managed policies exist here
            raise Fault("InvalidParameterValue", f"Policy {arn} does not exist.", 400)
        statements += _statement_list(json.loads(row["document"]))
    return {"Version": "2012-10-17", "Statement": statements}


def _statement_list(doc: Document) -> list[Any]:
    statements = doc.get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


def _duration(ctx: Ctx, value: Any, limit: int) -> int:
    seconds = int(value)
    low = ctx.settings.min_duration
    if not low <= seconds <= limit:
        raise Fault.invalid(f"DurationSeconds must be between {low} and {limit} seconds")
    return seconds


def _role(ctx: Ctx, role_arn: str) -> Any:
    """The role `role_arn` names exactly (partition, account, path and name), or None."""
    match = _ROLE_NAME.search(role_arn)
    role = ctx.db.one("SELECT * FROM roles WHERE name = ?", match[1]) if match else None
    if role is None or role_arn != f"arn:aws:iam::{ctx.account}:role{role['path']}{role['name']}":
        return None
    return role


def _cannot_assume(caller: Caller, role_arn: str, action: str = "sts:AssumeRole") -> Fault:
    # One answer whether the role is missing, untrusting or not allowed: existence stays hidden.
    return Fault.denied(caller.arn, action, role_arn, "")


def _check_mfa(ctx: Ctx, caller: Caller, p: dict[str, Any]) -> float | None:
    """The time MFA was proven: now if this call carries a valid code, else the session's.
    A code counts only for a time step after the last one the device accepted."""
    serial, code = p.get("SerialNumber"), p.get("TokenCode")
    if serial is None and code is None:
        return caller.mfa
    device = ctx.db.one(
        "SELECT * FROM mfa_devices WHERE serial = ? AND enabled IS NOT NULL", serial
    )
    owner = caller.user if caller.kind in ("user", "session-token") else None
    if device is None or owner is None or device["user_name"] != owner or not code:
        raise Fault(
            "AccessDenied",
            "MultiFactorAuthentication failed, unable to validate MFA "
            "code. Please verify your MFA serial number is valid and associated with "
            "this user.",
            403,
        )
    seed = ctx.sealer.open(device["seed"], f"mfa:{device['serial']}")
    step = accepted_step(seed, str(code), ctx.ts, device["last_step"])
    with ctx.db.write() as conn:  # the step is claimed atomically: a concurrent replay loses
        claimed = (
            step is not None
            and conn.execute(
                "UPDATE mfa_devices SET last_step = ? WHERE serial = ? "
                "AND (last_step IS NULL OR last_step < ?)",
                (step, serial, step),
            ).rowcount
        )
    if not claimed:
        raise Fault(
            "AccessDenied",
            "MultiFactorAuthentication failed with invalid MFA one time pass code.",
            403,
        )
    return ctx.ts


def _check_trust(
    ctx: Ctx,
    role_arn: str,
    role: Any,
    context: dict[str, ContextValue],
    source: str | None,
    tagged: bool,
) -> None:
    """The role's trust policy must allow the caller (and, when used, SetSourceIdentity and
    TagSession), and the caller's own policies must not deny it. A trust naming only the account
    also needs the caller's identity policy; one naming the user or role still needs the
    session policy, if any; one naming this very session needs neither."""
    caller = ctx.caller
    trust = json.loads(role["trust"])
    actions = ["sts:AssumeRole"]
    if source and source != caller.source_identity:
        actions.append("sts:SetSourceIdentity")
    if tagged:
        actions.append("sts:TagSession")
    policies = identity_policies(ctx.db, caller)
    resource = f"arn:aws:iam::{ctx.account}:role{role['path']}{role['name']}"
    for action in actions:
        request = Request(action, resource, context)
        trusted, granted = trust_allows(trust, request, caller.principal)
        own = decide(request, policies, caller.session_policy, granted)
        if trusted is not Decision.ALLOW or own is not Decision.ALLOW:
            raise _cannot_assume(caller, role_arn, action)


def _new_session(
    ctx: Ctx,
    kind: str,
    owner: str,
    duration: int,
    *,
    name: str | None = None,
    source: str | None = None,
    tags: dict[str, str] | None = None,
    policy: str | None = None,
    mfa: float | None = None,
) -> dict[str, Any]:
    key_id = random_id("ASIA")
    secret = random_text(40)
    token = "IQoJb3JpZ2luX2VjE" + random_text(300)  # the shape of an AWS session token
    expires = ctx.ts + duration
    with ctx.db.write() as conn:
        conn.execute(
            "INSERT INTO sessions VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                key_id,
                ctx.sealer.seal(secret.encode(), f"session:{key_id}"),
                token_digest(token),
                kind,
                owner,
                name,
                source,
                json.dumps(tags or {}),
                policy,
                ctx.ts,
                expires,
                mfa,
            ),
        )
    return {
        "AccessKeyId": key_id,
        "SecretAccessKey": secret,
        "SessionToken": token,
        "Expiration": datetime.fromtimestamp(int(expires), UTC),
    }
