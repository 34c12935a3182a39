"""IAM policy documents xtok generates: reader, role trust + permissions, session, revoke.

Resource ARNs follow Secrets Manager's naming: a secret's ARN is its name plus `-` and six random
characters, so one secret is matched by `NAME-??????` (never `NAME*`, which also matches
`NAME-old`, `NAMEx`, …) and a prefix by `PREFIX*`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from xtok.errors import UsageError

POLICY_VERSION = "2012-10-17"
SESSION_POLICY_LIMIT = 2048  # AWS: an inline session policy's plaintext is at most 2,048 chars
READ_ACTION = "secretsmanager:GetSecretValue"
TRUST_ACTIONS = ("sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession")
REVOKE_POLICY_NAME = "AWSRevokeOlderSessions"
DEFAULT_MFA_MAX_AGE = 3600

_SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
_SUFFIX_LIKE = re.compile(r"-[A-Za-z0-9]{6}$")
_ACCOUNT = re.compile(r"^(\d{12}|\*)$")
_REGION = re.compile(r"^([a-z]{2}(-[a-z]+)+-\d|\*)$")
_PRINCIPAL = re.compile(
    r"^arn:aws[a-z-]*:(iam::\d{12}:(root|user/\S+|role/\S+)|sts::\d{12}:assumed-role/\S+)$"
)

Document = dict[str, Any]


def check_secret_name(name: str) -> str:
    """Return `name` if AWS would accept it as a secret name, else raise `UsageError`."""
    if not _SECRET_NAME.match(name):
        raise UsageError(
            f"invalid secret name {name!r}",
            tip="1-512 characters of ASCII letters, digits and /_+=.@-",
        )
    return name


def name_looks_suffixed(name: str) -> bool:
    """AWS advises against names ending in `-` + 6 characters: they read like an ARN suffix."""
    return bool(_SUFFIX_LIKE.search(name))


def check_prefix(prefix: str) -> str:
    if not prefix:
        raise UsageError("--prefix must not be empty: it would match every secret")
    if not _SECRET_NAME.match(prefix):
        raise UsageError(
            f"invalid prefix {prefix!r}", tip="use characters of secret names: /_+=.@-"
        )
    return prefix


def check_principal(arn: str) -> str:
    if not _PRINCIPAL.match(arn):
        raise UsageError(
            f"not an IAM principal ARN: {arn!r}",
            tip="e.g. arn:aws:iam::123456789012:user/alice or arn:aws:iam::123456789012:role/ops",
        )
    return arn


@dataclass(frozen=True)
class Target:
    """The secrets a policy grants: exact names or one prefix, in one region and account."""

    secrets: tuple[str, ...] = ()
    prefix: str | None = None
    region: str = "*"
    account: str = "*"
    partition: str = "aws"

    def __post_init__(self) -> None:
        if bool(self.secrets) == (self.prefix is not None):
            raise UsageError("give either --prefix or at least one --secret (not both)")
        for name in self.secrets:
            check_secret_name(name)
        if self.prefix is not None:
            check_prefix(self.prefix)
        if not _ACCOUNT.match(self.account):
            raise UsageError(f"invalid account id {self.account!r}", tip="12 digits, or *")
        if not _REGION.match(self.region):
            raise UsageError(f"invalid region {self.region!r}", tip="e.g. us-east-1, or *")

    def resources(self) -> list[str]:
        base = f"arn:{self.partition}:secretsmanager:{self.region}:{self.account}:secret:"
        if self.prefix is not None:
            return [base + self.prefix + "*"]
        return [f"{base}{name}-??????" for name in dict.fromkeys(self.secrets)]


def _read_statement(target: Target, sid: str) -> Document:
    resources = target.resources()
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": READ_ACTION,
        "Resource": resources[0] if len(resources) == 1 else resources,
    }


def reader_policy(target: Target, *, require_mfa: bool = True) -> Document:
    """The write-up's identity policy, corrected: exact ARNs and, by default, MFA sessions only.

    `Bool` (not `BoolIfExists`) on purpose: long-term keys have no MFA context key, so they are
    not allowed to read the secret directly.
    """
    statement = _read_statement(target, "XtokReadSecrets")
    if require_mfa:
        statement["Condition"] = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    return {"Version": POLICY_VERSION, "Statement": [statement]}


def role_trust_policy(
    principals: Sequence[str], *, require_mfa: bool = True, mfa_max_age: int = DEFAULT_MFA_MAX_AGE
) -> Document:
    """Who may assume the role: the named principals only, with a recent MFA by default.

    SetSourceIdentity and TagSession are allowed because `xtok token` records the approver and
    the job on the session.
    """
    if not principals:
        raise UsageError("name at least one --trust principal ARN")
    if mfa_max_age < 1:
        raise UsageError("--mfa-max-age must be a positive number of seconds")
    statement: Document = {
        "Sid": "XtokApprovers",
        "Effect": "Allow",
        "Principal": {"AWS": [check_principal(p) for p in dict.fromkeys(principals)]},
        "Action": list(TRUST_ACTIONS),
    }
    if require_mfa:
        statement["Condition"] = {
            "Bool": {"aws:MultiFactorAuthPresent": "true"},
            "NumericLessThan": {"aws:MultiFactorAuthAge": str(mfa_max_age)},
        }
    return {"Version": POLICY_VERSION, "Statement": [statement]}


def role_permission_policy(target: Target) -> Document:
    return {"Version": POLICY_VERSION, "Statement": [_read_statement(target, "XtokReadSecrets")]}


def session_policy(target: Target) -> Document:
    """The inline policy `xtok token --role` passes to AssumeRole: the session's effective
    permissions are the intersection of this and the role's."""
    doc = {"Version": POLICY_VERSION, "Statement": [_read_statement(target, "XtokSession")]}
    size = len(compact(doc))
    if size > SESSION_POLICY_LIMIT:
        raise UsageError(
            f"the session policy for {len(target.secrets)} secrets is {size:,} characters; "
            f"AWS allows {SESSION_POLICY_LIMIT:,}",
            tip="use fewer or shorter secret names per token, or --prefix",
        )
    return doc


def revoke_policy(before: datetime) -> Document:
    """AWSRevokeOlderSessions: deny everything to sessions issued before `before`.

    `aws:TokenIssueTime` exists only for temporary credentials, so long-term keys and sessions
    issued later are not affected.
    """
    # Milliseconds, rounded up: a session issued earlier in the same second is older too.
    ms = -(-before.microsecond // 1000)
    when = before.replace(microsecond=0) + timedelta(milliseconds=ms)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S") + (
        f".{when.microsecond // 1000:03d}Z" if ms else "Z"
    )
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Effect": "Deny",
                "Action": ["*"],
                "Resource": ["*"],
                "Condition": {"DateLessThan": {"aws:TokenIssueTime": stamp}},
            }
        ],
    }


def compact(doc: Document) -> str:
    return json.dumps(doc, separators=(",", ":"))


def pretty(doc: Document) -> str:
    return json.dumps(doc, indent=2)
