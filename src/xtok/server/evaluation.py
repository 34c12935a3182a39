"""IAM policy evaluation, as AWS documents it, for the policy types this endpoint has.

An explicit Deny in any applicable policy wins. Otherwise the identity policies must Allow, and
when the session carries a session policy, that must Allow too (the intersection). A resource-based
policy (here: a role's trust policy) that allows the user or role itself stands in for the
identity policy, but a session policy still limits it; only one naming the session's own ARN is
outside the session policy. Actions match case-insensitively with `*` and `?`; resources
case-sensitively. Conditions: see `conditions`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import Any

from xtok.server.conditions import ContextValue, holds, like, strings
from xtok.server.policydoc import VARIABLES_VERSION, Document, statements
from xtok.server.variables import expand


class Decision(Enum):
    ALLOW = "allow"
    DENY = "explicit-deny"
    IMPLICIT = "implicit-deny"


class Grant(IntEnum):
    """What an allowing resource-based policy named: how much of the caller's own policies it
    stands in for."""

    NONE = 0  # nothing, or only the account: the identity policy must allow
    PRINCIPAL = 1  # the user or role (or everyone): no identity policy needed; a session policy
    SESSION = 2  # this very session: neither identity nor session policy needed


@dataclass
class Request:
    action: str
    resource: str
    context: dict[str, ContextValue] = field(default_factory=dict)  # keys in lower case


def decide(
    request: Request,
    identity: Sequence[Document],
    session: Document | None,
    granted: Grant = Grant.NONE,
) -> Decision:
    identity_effects = _effects(request, identity)
    session_effects = _effects(request, [session]) if session is not None else set()
    if "Deny" in identity_effects or "Deny" in session_effects:
        return Decision.DENY
    by_identity = granted >= Grant.PRINCIPAL or "Allow" in identity_effects
    by_session = session is None or granted is Grant.SESSION or "Allow" in session_effects
    return Decision.ALLOW if by_identity and by_session else Decision.IMPLICIT


@dataclass(frozen=True)
class Principal:
    """Who a resource-based policy may name to mean the caller."""

    session_arn: str  # the caller's own ARN (an assumed-role session, or the user)
    arn: str  # the IAM user or role, with its path
    account: str
    unique_id: str = ""  # the user's or role's AIDA…/AROA…, as stored trust policies name it


def trust_allows(trust: Document, request: Request, who: Principal) -> tuple[Decision, Grant]:
    """Evaluate a role's trust policy for `who`: the decision and, when it allows, what the
    allowing statements named (see `Grant`)."""
    effects: set[str] = set()
    grant = Grant.NONE
    variables = trust.get("Version") == VARIABLES_VERSION
    for st in statements(trust):
        if "NotPrincipal" in st:
            named: Grant | None = (
                None if _names(st["NotPrincipal"], who) is not None else Grant.NONE
            )
        else:
            named = _names(st.get("Principal"), who)
        if named is not None and _applies(st, request, check_resource=False, variables=variables):
            effects.add(str(st.get("Effect")))
            if st.get("Effect") == "Allow":
                grant = max(grant, named)
    if "Deny" in effects:
        return Decision.DENY, Grant.NONE
    return (Decision.ALLOW, grant) if "Allow" in effects else (Decision.IMPLICIT, Grant.NONE)


def _names(principal: Any, who: Principal) -> Grant | None:
    """How a Principal element names `who`: None when it does not."""
    if principal == "*":
        return Grant.PRINCIPAL
    if not isinstance(principal, dict):
        return None
    found: Grant | None = None
    for value in strings(principal.get("AWS")):
        if value == who.session_arn and who.session_arn != who.arn:
            return Grant.SESSION
        if value in ("*", who.arn) or (who.unique_id and value == who.unique_id):
            found = Grant.PRINCIPAL
        elif found is None and value in (who.account, f"arn:aws:iam::{who.account}:root"):
            found = Grant.NONE
    return found


def _effects(request: Request, docs: Iterable[Document]) -> set[str]:
    return {
        str(st.get("Effect"))
        for doc in docs
        for st in statements(doc)
        if _applies(st, request, variables=doc.get("Version") == VARIABLES_VERSION)
    }


def _applies(
    st: dict[str, Any], request: Request, *, check_resource: bool = True, variables: bool = False
) -> bool:
    if not _listed(st, "Action", request.action, fold=True):
        return False
    context = request.context if variables else None
    if check_resource and not _listed(st, "Resource", request.resource, context=context):
        return False
    return holds(st.get("Condition", {}), request.context, variables=variables)


def _listed(
    st: dict[str, Any],
    name: str,
    value: str,
    *,
    fold: bool = False,
    context: Mapping[str, ContextValue] | None = None,
) -> bool:
    """`Action`/`Resource` lists `value`, or `NotAction`/`NotResource` does not. With a
    `context`, policy variables in the patterns are expanded first; one that cannot be makes
    the statement not apply, as AWS documents."""
    key = name if name in st else "Not" + name
    if key not in st:
        return False
    patterns = strings(st[key])
    if context is not None:
        expanded = [expand(p, context) for p in patterns]
        if None in expanded:
            return False
        patterns = [p for p in expanded if p is not None]
    hit = any(like(p, value, fold=fold) for p in patterns)
    return hit if key == name else not hit
