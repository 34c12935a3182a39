"""`xtok setup aws`: the role that approvers assume, created or brought up to date idempotently."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from xtok.aws.iam import Call
from xtok.aws.policy import Target, role_permission_policy, role_trust_policy
from xtok.aws.session import AwsConfig, aws_errors, client, session
from xtok.errors import UsageError

PERMISSION_POLICY_NAME = "xtok-read-secrets"
_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$", re.ASCII)


@dataclass(frozen=True)
class RoleSpec:
    name: str
    principals: tuple[str, ...]
    secrets: tuple[str, ...] = ()
    prefix: str | None = None
    region: str = "*"
    account: str | None = None
    require_mfa: bool = True
    mfa_max_age: int = 3600
    max_session: int = 3600

    def __post_init__(self) -> None:
        if not _ROLE_NAME.match(self.name):
            raise UsageError(
                f"invalid role name {self.name!r}",
                tip="1-64 characters of letters, digits and +=,.@_-",
            )
        if not 3600 <= self.max_session <= 43_200:
            raise UsageError("--max-session must be 1h to 12h (IAM's MaxSessionDuration)")


@dataclass(frozen=True)
class SetupResult:
    role_arn: str
    calls: tuple[Call, ...]
    applied: bool


def setup(config: AwsConfig, spec: RoleSpec, *, dry_run: bool) -> SetupResult:
    """Plan the IAM calls that bring the role to `spec` (reading only); apply them unless dry."""
    sess = session(config)
    sts = client(sess, "sts", config)
    iam = client(sess, "iam", config)
    account = spec.account
    if account is None:
        with aws_errors("cannot identify the account (GetCallerIdentity)"):
            account = str(sts.get_caller_identity()["Account"])
    target = Target(spec.secrets, spec.prefix, region=spec.region, account=account)
    trust = role_trust_policy(
        spec.principals, require_mfa=spec.require_mfa, mfa_max_age=spec.mfa_max_age
    )
    permissions = role_permission_policy(target)
    role = _get_role(iam, spec.name)
    calls: list[Call] = []
    if role is None:
        calls.append(
            Call.of(
                "create_role",
                RoleName=spec.name,
                AssumeRolePolicyDocument=trust,
                MaxSessionDuration=spec.max_session,
                Description="xtok: approvers assume this role to mint CI tokens",
            )
        )
        role_arn = f"arn:aws:iam::{account}:role/{spec.name}"
    else:
        role_arn = role["Arn"]
        if role.get("AssumeRolePolicyDocument") != trust:
            calls.append(
                Call.of("update_assume_role_policy", RoleName=spec.name, PolicyDocument=trust)
            )
        if role.get("MaxSessionDuration") != spec.max_session:
            calls.append(
                Call.of("update_role", RoleName=spec.name, MaxSessionDuration=spec.max_session)
            )
    if role is None or _get_role_policy(iam, spec.name) != permissions:
        calls.append(
            Call.of(
                "put_role_policy",
                RoleName=spec.name,
                PolicyName=PERMISSION_POLICY_NAME,
                PolicyDocument=permissions,
            )
        )
    if not dry_run:
        for call in calls:
            call.apply(iam)
    return SetupResult(role_arn, tuple(calls), applied=not dry_run)


def _get_role(iam: Any, name: str) -> dict[str, Any] | None:
    with aws_errors(f"cannot read role {name!r}"):
        try:
            return dict(iam.get_role(RoleName=name)["Role"])
        except iam.exceptions.NoSuchEntityException:
            return None


def _get_role_policy(iam: Any, role: str) -> object:
    with aws_errors(f"cannot read the policy of role {role!r}"):
        try:
            return iam.get_role_policy(RoleName=role, PolicyName=PERMISSION_POLICY_NAME)[
                "PolicyDocument"
            ]
        except iam.exceptions.NoSuchEntityException:
            return None
