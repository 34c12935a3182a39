"""`xtok revoke`: deny every session of a role or user issued before a time.

This is the policy AWS's console attaches as "Revoke active sessions" (AWSRevokeOlderSessions):
a Deny on `aws:TokenIssueTime`. Sessions issued after the time, and long-term keys, still work.
"""

from __future__ import annotations

from datetime import datetime

from xtok.aws.iam import Call
from xtok.aws.policy import REVOKE_POLICY_NAME, revoke_policy
from xtok.aws.session import AwsConfig, client, session
from xtok.errors import UsageError


def plan(*, role: str | None, user: str | None, before: datetime) -> Call:
    if (role is None) == (user is None):
        raise UsageError("give exactly one of --role NAME or --user NAME")
    doc = revoke_policy(before)
    if role is not None:
        return Call.of(
            "put_role_policy", RoleName=role, PolicyName=REVOKE_POLICY_NAME, PolicyDocument=doc
        )
    return Call.of(
        "put_user_policy", UserName=user, PolicyName=REVOKE_POLICY_NAME, PolicyDocument=doc
    )


def revoke(config: AwsConfig, call: Call) -> None:
    call.apply(client(session(config), "iam", config))
