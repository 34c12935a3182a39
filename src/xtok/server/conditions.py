"""Condition operators and keys, as AWS documents them (see docs/aws-semantics.md).

A Condition block ANDs its operators and their keys; the values listed for one key are ORed.
A key missing from the request makes positive operators false and negated ones true; `…IfExists`
makes a missing key true; `Null` tests presence. `ForAllValues:` is true when every request value
passes the operator (and when there are none); `ForAnyValue:` when at least one does.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from xtok.server.variables import QUESTION, STAR, expand, plain

ContextValue = str | list[str]

_STRING = {"StringEquals", "StringEqualsIgnoreCase", "StringLike"}
_NUMERIC = {"NumericEquals", "NumericLessThan", "NumericLessThanEquals"}
_NUMERIC |= {"NumericGreaterThan", "NumericGreaterThanEquals"}
_DATE = {op.replace("Numeric", "Date") for op in _NUMERIC}
_ARN = {"ArnEquals", "ArnLike"}
# Each negated operator is the negation of its positive twin, value by value.
NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "NumericNotEquals": "NumericEquals",
    "DateNotEquals": "DateEquals",
    "NotIpAddress": "IpAddress",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}
OPERATORS = frozenset(
    _STRING | _NUMERIC | _DATE | _ARN | set(NEGATED) | {"Bool", "BinaryEquals", "IpAddress", "Null"}
)
QUALIFIERS = ("ForAllValues", "ForAnyValue")

# The condition keys this endpoint sets (some only when they apply, e.g. MFA or session keys),
# plus the VPC keys, which AWS too leaves out of requests that come through no VPC endpoint.
# A policy naming any other key is refused when written: a Deny on it would never apply.
KNOWN_KEYS = frozenset(
    k.lower()
    for k in (
        "aws:CurrentTime",
        "aws:EpochTime",
        "aws:SecureTransport",
        "aws:SourceIp",
        "aws:RequestedRegion",
        "aws:ViaAWSService",
        "aws:PrincipalArn",
        "aws:PrincipalAccount",
        "aws:PrincipalType",
        "aws:userid",
        "aws:username",
        "aws:TokenIssueTime",
        "aws:MultiFactorAuthPresent",
        "aws:MultiFactorAuthAge",
        "aws:SourceIdentity",
        "aws:TagKeys",
        "aws:SourceVpc",
        "aws:SourceVpce",
        "aws:VpcSourceIp",
        "sts:RoleSessionName",
        "sts:SourceIdentity",
        "sts:ExternalId",
        "secretsmanager:SecretId",
        "secretsmanager:Name",
        "secretsmanager:VersionStage",
        "secretsmanager:VersionId",
        "iam:PolicyARN",
    )
)
KNOWN_PREFIXES = ("aws:principaltag/", "aws:requesttag/")


def known_key(key: str) -> bool:
    lowered = key.lower()
    return lowered in KNOWN_KEYS or (
        lowered.startswith(KNOWN_PREFIXES) and len(lowered) > lowered.index("/") + 1
    )


def split_operator(name: str) -> tuple[str, str, bool] | None:
    """`ForAnyValue:StringLikeIfExists` → ("ForAnyValue", "StringLike", True); None if unknown."""
    qualifier, _, op = name.rpartition(":")
    if qualifier not in ("", *QUALIFIERS):
        return None
    if_exists = op.endswith("IfExists") and op != "IfExists"
    op = op.removesuffix("IfExists") if if_exists else op
    if op not in OPERATORS or (op == "Null" and (if_exists or qualifier)):
        return None
    return qualifier, op, if_exists


def valid_value(op: str, value: str) -> bool:
    """Whether `value` can ever be compared by `op` (checked when a policy is written)."""
    op = NEGATED.get(op, op)
    if op in ("Bool", "Null"):
        return value.lower() in ("true", "false")
    if op in _NUMERIC:
        return _number(value) is not None
    if op in _DATE:
        return _date(value) is not None
    if op == "IpAddress":
        return _network(value) is not None
    if op == "BinaryEquals":
        return _binary(value) is not None
    return True


def holds(
    block: Mapping[str, Any], context: Mapping[str, ContextValue], *, variables: bool = False
) -> bool:
    """Whether a (validated) Condition block holds for a request's context (keys lower case).
    With `variables` (a 2012-10-17 policy), policy variables in the values of the operators
    that take them are expanded; one that cannot be makes the block not hold."""
    for operator, tests in block.items():
        parts = split_operator(operator)
        if parts is None or not isinstance(tests, dict):
            return False  # only stored before validation existed: never matches
        for key, listed in tests.items():
            wanted = strings(listed)
            if variables and takes_variables(parts[1]):
                expanded = [expand(w, context) for w in wanted]
                if None in expanded:
                    return False
                wanted = [w for w in expanded if w is not None]
            if not _test(*parts, context.get(key.lower()), wanted):
                return False
    return True


def takes_variables(op: str) -> bool:
    """String, ARN and Bool operators take policy variables; the others compare them literally."""
    return NEGATED.get(op, op) in _STRING | _ARN | {"Bool"}


def strings(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [("true" if v else "false") if isinstance(v, bool) else str(v) for v in items]


def _test(
    qualifier: str, op: str, if_exists: bool, present: ContextValue | None, wanted: list[str]
) -> bool:
    if op == "Null":
        return bool(wanted) and (present is None) == (wanted[0].lower() == "true")
    values = [present] if isinstance(present, str) else present
    if not values:  # missing key, or a multivalued key with no values
        if if_exists or qualifier == "ForAllValues":
            return True
        return qualifier == "" and op in NEGATED
    positive = NEGATED.get(op, op)
    negated = op in NEGATED

    def passes(value: str) -> bool:
        return _matches(positive, value, wanted) != negated

    if qualifier == "ForAllValues":
        return all(passes(v) for v in values)
    if qualifier == "ForAnyValue" or not negated:
        return any(passes(v) for v in values)
    return all(passes(v) for v in values)  # a negated operator on a plain multivalued key


def _matches(op: str, actual: str, wanted: list[str]) -> bool:
    if op == "StringEquals":
        return actual in (plain(w) for w in wanted)
    if op == "StringEqualsIgnoreCase":
        return actual.casefold() in (plain(w).casefold() for w in wanted)
    if op == "StringLike":
        return any(like(w, actual) for w in wanted)
    if op == "Bool":
        return actual.lower() in (plain(w).lower() for w in wanted)
    if op == "BinaryEquals":
        return any(_binary(w) == actual.encode() for w in wanted)
    if op == "IpAddress":
        return _in_networks(actual, wanted)
    if op in _ARN:
        return any(_arn_like(w, actual) for w in wanted)
    if op in _NUMERIC:
        return _compare(op.removeprefix("Numeric"), _number(actual), [_number(w) for w in wanted])
    if op in _DATE:
        return _compare(op.removeprefix("Date"), _date(actual), [_date(w) for w in wanted])
    return False


_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "Equals": lambda a, b: a == b,
    "LessThan": lambda a, b: a < b,
    "LessThanEquals": lambda a, b: a <= b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanEquals": lambda a, b: a >= b,
}


def _compare(kind: str, actual: float | None, wanted: list[float | None]) -> bool:
    compare = _COMPARE[kind]
    return actual is not None and any(w is not None and compare(actual, w) for w in wanted)


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


def _binary(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def _in_networks(actual: str, wanted: list[str]) -> bool:
    try:
        address = ipaddress.ip_address(actual)
    except ValueError:
        return False
    return any((net := _network(w)) is not None and address in net for w in wanted)


def _arn_like(pattern: str, actual: str) -> bool:
    """ARN matching: the six colon-separated components match one by one."""
    want, have = pattern.split(":", 5), actual.split(":", 5)
    return len(want) == len(have) == 6 and all(like(w, h) for w, h in zip(want, have, strict=True))


_WILDCARDS = {"*": ".*", "?": ".", STAR: re.escape("*"), QUESTION: re.escape("?")}


@lru_cache(maxsize=4096)
def _pattern(pattern: str, fold: bool) -> re.Pattern[str]:
    body = "".join(_WILDCARDS.get(c) or re.escape(c) for c in pattern)
    return re.compile(body, re.IGNORECASE | re.DOTALL if fold else re.DOTALL)


def like(pattern: str, value: str, *, fold: bool = False) -> bool:
    """`*` and `?` wildcards over the whole value; case-sensitive unless `fold`. (An expanded
    policy variable's literal `*` and `?` are STAR and QUESTION, and match only themselves.)"""
    return _pattern(pattern, fold).fullmatch(value) is not None
