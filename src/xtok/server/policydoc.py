"""Policy documents checked when they are written, as IAM does (`MalformedPolicyDocument` with
a reason), so that evaluation only ever sees well-formed documents. xtok is stricter than AWS in
one way, on purpose: a condition key this endpoint never sets (also as a policy variable) is
refused rather than stored as a statement that can never apply (see docs/aws-semantics.md)."""

from __future__ import annotations

import json
import re
from typing import Any

from xtok.server.conditions import known_key, split_operator, takes_variables, valid_value
from xtok.server.faults import Fault
from xtok.server.variables import problem

Document = dict[str, Any]

VARIABLES_VERSION = "2012-10-17"  # the grammar with policy variables
VERSIONS = ("2008-10-17", VARIABLES_VERSION)
_TOP = {"Version", "Id", "Statement"}
_FIELDS = {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction"}
_FIELDS |= {"Resource", "NotResource", "Condition"}
_ACTION = re.compile(r"^(\*|[A-Za-z0-9-]+:[A-Za-z0-9*?]+)$")
_PRINCIPAL_KINDS = {"AWS", "Service", "Federated", "CanonicalUser"}


class _Malformed(Exception):
    pass


def parse_document(text: str, *, trust: bool = False) -> Document:
    """Parse and check an identity, session (`trust=False`) or trust policy document."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):  # nested past the parser's depth: no policy is
        raise _fault("Syntax errors in policy.") from None
    try:
        _check(doc, trust)
    except _Malformed as why:
        raise _fault(str(why)) from None
    return doc  # type: ignore[no-any-return]


# IAM's quotas on policy size, in characters without white space (IAM's own count).
INLINE_LIMITS = {"user": 2048, "group": 5120, "role": 10_240}  # all of one holder's together
MANAGED_LIMIT = 6144
TRUST_LIMIT = 2048
_SPACE = re.compile(r"\s+")


def size(text: str) -> int:
    """A policy's size as IAM counts it against its quotas: white space does not count."""
    return len(_SPACE.sub("", text))


def check_size(text: str, limit: int, message: str) -> None:
    if size(text) > limit:
        raise Fault("LimitExceeded", message, 409)


def statements(doc: Document) -> list[dict[str, Any]]:
    """A (checked) document's statements: one object or a list of them."""
    found = doc.get("Statement", [])
    return [found] if isinstance(found, dict) else list(found)


def _fault(why: str) -> Fault:
    return Fault("MalformedPolicyDocument", why, 400, "MalformedPolicyDocumentException")


def _check(doc: Any, trust: bool) -> None:
    if not isinstance(doc, dict):
        raise _Malformed("The policy must be a JSON object.")
    _only(doc, _TOP, "policy")
    if "Statement" not in doc:
        raise _Malformed("Missing required field Statement.")
    if "Version" in doc and doc["Version"] not in VERSIONS:
        raise _Malformed("The policy must contain a valid version string.")
    if "Id" in doc and not isinstance(doc["Id"], str):
        raise _Malformed("Id must be a string.")
    found = doc["Statement"]
    if not isinstance(found, dict | list):
        raise _Malformed("Statement must be an object or a list of objects.")
    for st in [found] if isinstance(found, dict) else found:
        _statement(st, trust, doc.get("Version") == VARIABLES_VERSION)


def _statement(st: Any, trust: bool, variables: bool) -> None:
    if not isinstance(st, dict):
        raise _Malformed("Each statement must be a JSON object.")
    _only(st, _FIELDS, "statement")
    if "Sid" in st and not isinstance(st["Sid"], str):
        raise _Malformed("Sid must be a string.")
    if st.get("Effect") not in ("Allow", "Deny"):
        raise _Malformed("Effect must be Allow or Deny.")
    actions = _exactly_one(st, "Action", "NotAction", "Policy statement must contain actions.")
    for action in actions:
        if not _ACTION.match(action):
            raise _Malformed(
                f"Action {_shown(action)} must be * or prefixed by a service, e.g. iam:."
            )
    principal = "Principal" in st or "NotPrincipal" in st
    if trust:
        if not principal:
            raise _Malformed("Missing required field Principal.")
        _principal(st.get("Principal", st.get("NotPrincipal")))
        if "Resource" in st or "NotResource" in st:
            raise _Malformed("Has prohibited field Resource.")
    else:
        if principal:
            raise _Malformed("Policy document should not specify a principal.")
        resources = _exactly_one(
            st, "Resource", "NotResource", "Policy statement must contain resources."
        )
        for resource in resources:
            if resource != "*" and not (resource.startswith("arn:") and resource.count(":") >= 5):
                raise _Malformed(f'Resource {_shown(resource)} must be in ARN format or "*".')
            if variables:
                _check_variables(resource)
    _condition(st.get("Condition", {}), variables)


def _only(obj: dict[str, Any], allowed: set[str], where: str) -> None:
    for key in obj:
        if key not in allowed:
            raise _Malformed(f"Unknown field {_shown(key)} in the {where}.")


def _exactly_one(st: dict[str, Any], name: str, negated: str, missing: str) -> list[str]:
    if (name in st) == (negated in st):
        raise _Malformed(missing)
    return _string_list(st[name] if name in st else st[negated], name)


def _string_list(value: Any, what: str) -> list[str]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, str) and v for v in items):
        raise _Malformed(f"{what} must be a non-empty string or list of strings.")
    return items


def _principal(value: Any) -> None:
    if value == "*":
        return
    if not isinstance(value, dict) or not value:
        raise _Malformed('Principal must be "*" or an object such as {"AWS": ...}.')
    for kind, names in value.items():
        if kind not in _PRINCIPAL_KINDS:
            raise _Malformed(f"Invalid principal type {_shown(kind)}.")
        _string_list(names, "Principal")


def _condition(block: Any, variables: bool) -> None:
    if not isinstance(block, dict):
        raise _Malformed("Condition must be an object.")
    for operator, tests in block.items():
        parts = split_operator(operator)
        if parts is None:
            raise _Malformed(f"Invalid Condition type : {_shown(operator)}.")
        if not isinstance(tests, dict) or not tests:
            raise _Malformed(f"Condition {_shown(operator)} must map condition keys to values.")
        for key, wanted in tests.items():
            if not known_key(key):
                raise _Malformed(
                    f"Condition key {_shown(key)} is not set by this endpoint, so the condition "
                    "could never apply; remove it or use a supported key (docs/aws-semantics.md)."
                )
            values = wanted if isinstance(wanted, list) else [wanted]
            if not values or not all(isinstance(v, str | bool | int | float) for v in values):
                raise _Malformed(
                    f"Condition {_shown(operator)} {_shown(key)} needs a value or list of values."
                )
            for value in values:
                text = str(value).lower() if isinstance(value, bool) else str(value)
                if variables and "${" in text and takes_variables(parts[1]):
                    _check_variables(text)
                elif not valid_value(parts[1], text):
                    raise _Malformed(
                        f"Condition {_shown(operator)} {_shown(key)} has an invalid value "
                        f"{_shown(text)}."
                    )


def _shown(text: str) -> str:
    """A caller's text quoted back in a reason: printable, and short."""
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_variables(text: str) -> None:
    why = problem(text, known_key)
    if why is not None:
        raise _Malformed(f"{_shown(text)} has {why}.")
