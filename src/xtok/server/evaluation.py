"""IAM policy evaluation, as AWS documents it, for the subset xtok relies on.

An explicit Deny in any applicable policy wins. Otherwise the identity policies must Allow, and
when the session carries a session policy, that must Allow too (the intersection). Actions match
case-insensitively with `*` and `?`; resources case-sensitively. Conditions: String*, Bool,
Date*, Numeric*, Null, Arn* (each also …IfExists), with ForAnyValue:/ForAllValues: on lists.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from functools import lru_cache
from typing import Any

from xtok.server.faults import Fault

Document = dict[str, Any]
ContextValue = str | list[str]


class Decision(Enum):
    ALLOW = "allow"
    DENY = "explicit-deny"
    IMPLICIT = "implicit-deny"


@dataclass
class Request:
    action: str
    resource: str
    context: dict[str, ContextValue] = field(default_factory=dict)  # keys in lower case


def decide(request: Request, identity: Sequence[Document], session: Document | None) -> Decision:
    identity_effects = _effects(request, identity)
    session_effects = _effects(request, [session]) if session is not None else {"Allow"}
    if "Deny" in identity_effects or "Deny" in session_effects:
        return Decision.DENY
    if "Allow" in identity_effects and "Allow" in session_effects:
        return Decision.ALLOW
    return Decision.IMPLICIT


def trust_allows(
    trust: Document, request: Request, principals: Iterable[str]
) -> tuple[Decision, bool]:
    """Evaluate a role's trust policy for `principals` (the caller's ARNs and account).

    Returns the decision and whether the allowing statement named the caller itself (then the
    caller needs no identity policy of its own, as in AWS for same-account principals).
    """
    names = set(principals)
    effects: set[str] = set()
    direct = False
    for st in _statements(trust):
        matched = _principal_matches(st.get("Principal"), names)
        if "NotPrincipal" in st:
            matched = not _principal_matches(st["NotPrincipal"], names)
        if matched and _statement_applies(st, request, check_resource=False):
            effects.add(st.get("Effect", ""))
            if st.get("Effect") == "Allow":
                direct = direct or _names_caller(st.get("Principal"), names)
    if "Deny" in effects:
        return Decision.DENY, False
    return (Decision.ALLOW, direct) if "Allow" in effects else (Decision.IMPLICIT, False)


def _principal_matches(principal: Any, names: set[str]) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    values = _strings(principal.get("AWS"))
    for value in values:
        if value == "*" or value in names:
            return True
        if re.fullmatch(r"\d{12}", value) and f"arn:aws:iam::{value}:root" in names:
            return True
    return False


def _names_caller(principal: Any, names: set[str]) -> bool:
    if not isinstance(principal, dict):
        return False
    return any(v in names and not v.endswith(":root") for v in _strings(principal.get("AWS")))


def _effects(request: Request, docs: Iterable[Document]) -> set[str]:
    return {
        str(st.get("Effect"))
        for doc in docs
        for st in _statements(doc)
        if _statement_applies(st, request)
    }


def _statements(doc: Document) -> list[dict[str, Any]]:
    statements = doc.get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


def _statement_applies(
    st: dict[str, Any], request: Request, *, check_resource: bool = True
) -> bool:
    if "Action" in st:
        if not any(_like(p, request.action, fold=True) for p in _strings(st["Action"])):
            return False
    elif "NotAction" in st:
        if any(_like(p, request.action, fold=True) for p in _strings(st["NotAction"])):
            return False
    else:
        return False
    if check_resource:
        if "Resource" in st:
            if not any(_like(p, request.resource) for p in _strings(st["Resource"])):
                return False
        elif "NotResource" in st:
            if any(_like(p, request.resource) for p in _strings(st["NotResource"])):
                return False
        else:
            return False
    return _conditions_hold(st.get("Condition", {}), request.context)


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [("true" if v else "false") if isinstance(v, bool) else str(v) for v in items]


@lru_cache(maxsize=4096)
def _pattern(pattern: str, fold: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.IGNORECASE | re.DOTALL if fold else re.DOTALL)


def _like(pattern: str, value: str, *, fold: bool = False) -> bool:
    return _pattern(pattern, fold).fullmatch(value) is not None


# --- conditions --------------------------------------------------------------------------------

_NEGATED = {
    "StringNotEquals",
    "StringNotEqualsIgnoreCase",
    "StringNotLike",
    "NumericNotEquals",
    "DateNotEquals",
    "ArnNotEquals",
    "ArnNotLike",
}


def _conditions_hold(block: Mapping[str, Any], context: Mapping[str, ContextValue]) -> bool:
    for operator, tests in block.items():
        for key, wanted in tests.items():
            if not _condition(operator, key.lower(), _strings(wanted), context):
                return False
    return True


def _condition(
    operator: str, key: str, wanted: list[str], context: Mapping[str, ContextValue]
) -> bool:
    qualifier, _, op = operator.rpartition(":")
    if_exists = op.endswith("IfExists")
    op = op.removesuffix("IfExists")
    present = context.get(key)
    if op == "Null":
        return (present is None) == (wanted[0].lower() == "true") if wanted else False
    if present is None:
        if qualifier == "ForAllValues":
            return True
        return if_exists or op in _NEGATED
    values = present if isinstance(present, list) else [present]
    if qualifier == "ForAllValues":
        return all(_matches(op, v, wanted) for v in values)
    if op in _NEGATED:
        positive = op.replace("Not", "", 1)
        return not any(_matches(positive, v, wanted) for v in values)
    return any(_matches(op, v, wanted) for v in values)


def _matches(op: str, actual: str, wanted: list[str]) -> bool:
    if op == "StringEquals":
        return actual in wanted
    if op == "StringEqualsIgnoreCase":
        return actual.lower() in (w.lower() for w in wanted)
    if op in ("StringLike", "ArnLike", "ArnEquals"):
        return any(_like(w, actual) for w in wanted)
    if op == "Bool":
        return actual.lower() in (w.lower() for w in wanted)
    if op.startswith("Numeric"):
        return _compare(op.removeprefix("Numeric"), _number(actual), [_number(w) for w in wanted])
    if op.startswith("Date"):
        return _compare(op.removeprefix("Date"), _date(actual), [_date(w) for w in wanted])
    return False  # unknown operators never match (put-time validation refuses them)


def _compare(kind: str, actual: float | None, wanted: list[float | None]) -> bool:
    if actual is None:
        return False
    ops = {
        "Equals": lambda a, b: a == b,
        "LessThan": lambda a, b: a < b,
        "LessThanEquals": lambda a, b: a <= b,
        "GreaterThan": lambda a, b: a > b,
        "GreaterThanEquals": lambda a, b: a >= b,
    }
    compare = ops.get(kind)
    return compare is not None and any(w is not None and compare(actual, w) for w in wanted)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _date(text: str) -> float | None:
    try:
        return float(text)  # epoch seconds are accepted as dates
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


# --- put-time validation -----------------------------------------------------------------------

OPERATORS = {
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "Bool",
    "Null",
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    "DateEquals",
    "DateNotEquals",
    "DateLessThan",
    "DateLessThanEquals",
    "DateGreaterThan",
    "DateGreaterThanEquals",
    "ArnEquals",
    "ArnLike",
    "ArnNotEquals",
    "ArnNotLike",
}


def parse_document(text: str, *, trust: bool = False) -> Document:
    """Parse and check a policy document; raise MalformedPolicyDocument as IAM does."""

    def bad(why: str) -> Fault:
        return Fault("MalformedPolicyDocument", why, 400, "MalformedPolicyDocumentException")

    try:
        doc = json.loads(text)
    except ValueError:
        raise bad("Syntax errors in policy.") from None
    if not isinstance(doc, dict) or "Statement" not in doc:
        raise bad("Policy document must be an object with a Statement.")
    for st in _statements(doc):
        if not isinstance(st, dict) or st.get("Effect") not in ("Allow", "Deny"):
            raise bad("Each statement needs an Effect of Allow or Deny.")
        if ("Action" in st) == ("NotAction" in st):
            raise bad("Each statement needs exactly one of Action or NotAction.")
        if trust:
            if ("Principal" in st) == ("NotPrincipal" in st):
                raise bad("Trust policy statements need a Principal.")
        elif ("Resource" in st) == ("NotResource" in st):
            raise bad("Each statement needs exactly one of Resource or NotResource.")
        condition = st.get("Condition", {})
        if not isinstance(condition, dict):
            raise bad("Condition must be an object.")
        for operator, tests in condition.items():
            op = operator.rpartition(":")[2].removesuffix("IfExists")
            if op not in OPERATORS or not isinstance(tests, dict):
                raise bad(f"Invalid Condition type : {operator}.")
    return doc
