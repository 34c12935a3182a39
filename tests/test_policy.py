"""Policy documents: valid JSON, accepted by parliament (a policy linter), exact ARN rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from fnmatch import fnmatchcase

import pytest
from parliament import analyze_policy_string

from xtok.aws import policy
from xtok.errors import UsageError

ALICE = "arn:aws:iam::123456789012:user/alice"


def lint(doc: policy.Document) -> list[str]:
    text = json.dumps(doc)
    json.loads(text)  # valid JSON
    return [f"{f.issue}: {f.detail}" for f in analyze_policy_string(text).findings]


def test_the_linter_does_find_problems() -> None:
    broken = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "secretsmanager:GetSecretValu", "Resource": "*"}
        ],
    }
    assert lint(broken)


def test_documents_pass_the_linter() -> None:
    one = policy.Target(("prod/db",), region="us-east-1", account="123456789012")
    prefix = policy.Target(prefix="prod/")
    docs = [
        policy.reader_policy(one),
        policy.reader_policy(prefix, require_mfa=False),
        policy.role_permission_policy(prefix),
        policy.session_policy(one),
        policy.revoke_policy(datetime(2026, 11, 25, 14, 0, tzinfo=UTC)),
    ]
    for doc in docs:
        assert lint(doc) == []


def test_trust_policy_lints_as_identity_statement_and_names_principals() -> None:
    """parliament knows only identity policies: lint the trust statement's actions and
    conditions as an identity statement on the role, and check the Principal block separately."""
    doc = policy.role_trust_policy([ALICE, ALICE], mfa_max_age=900)
    (statement,) = doc["Statement"]
    assert statement["Principal"] == {"AWS": [ALICE]}
    assert statement["Condition"] == {
        "Bool": {"aws:MultiFactorAuthPresent": "true"},
        "NumericLessThan": {"aws:MultiFactorAuthAge": "900"},
    }
    as_identity = {k: v for k, v in statement.items() if k != "Principal"} | {
        "Resource": "arn:aws:iam::123456789012:role/xtok-ci"
    }
    assert lint({"Version": doc["Version"], "Statement": [as_identity]}) == []
    unsafe = policy.role_trust_policy([ALICE], require_mfa=False)
    assert "Condition" not in unsafe["Statement"][0]


def test_single_secret_arn_matches_that_secret_only() -> None:
    (arn,) = policy.Target(("prod/db",), region="us-east-1", account="123456789012").resources()
    assert arn == "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-??????"
    base = "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
    assert fnmatchcase(base + "prod/db-AbC123", arn)
    for other in ("prod/db-old-AbC123", "prod/dbx-AbC123", "prod/db-AbC12", "prod/db"):
        assert not fnmatchcase(base + other, arn), other


def test_prefix_arn() -> None:
    assert policy.Target(prefix="prod/").resources() == ["arn:aws:secretsmanager:*:*:secret:prod/*"]


def test_reader_policy_requires_mfa_with_bool_not_ifexists() -> None:
    doc = policy.reader_policy(policy.Target(("a/b",)))
    assert doc["Statement"][0]["Condition"] == {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    assert doc["Statement"][0]["Action"] == "secretsmanager:GetSecretValue"


def test_revoke_policy_is_aws_revoke_older_sessions() -> None:
    doc = policy.revoke_policy(datetime(2026, 11, 25, 14, 3, 27, tzinfo=UTC))
    (st,) = doc["Statement"]
    assert st["Effect"] == "Deny" and st["Action"] == ["*"] and st["Resource"] == ["*"]
    assert st["Condition"] == {"DateLessThan": {"aws:TokenIssueTime": "2026-11-25T14:03:27Z"}}


def test_session_policy_budget() -> None:
    names = tuple(f"prod/service-{i:03d}/database-password" for i in range(60))
    fits = next(
        n
        for n in range(1, 60)
        if len(
            policy.compact(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "XtokSession",
                            "Effect": "Allow",
                            "Action": policy.READ_ACTION,
                            "Resource": policy.Target(names[: n + 1]).resources(),
                        }
                    ],
                }
            )
        )
        > policy.SESSION_POLICY_LIMIT
    )
    doc = policy.session_policy(policy.Target(names[:fits]))
    assert len(policy.compact(doc)) <= policy.SESSION_POLICY_LIMIT
    with pytest.raises(UsageError, match="AWS allows 2,048"):
        policy.session_policy(policy.Target(names[: fits + 1]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(secrets=("bad name",)), "invalid secret name"),
        (dict(secrets=("a*",)), "invalid secret name"),
        (dict(prefix=""), "must not be empty"),
        (dict(), "either --prefix or"),
        (dict(secrets=("a",), prefix="b"), "either --prefix or"),
        (dict(secrets=("a",), account="12"), "invalid account"),
        (dict(secrets=("a",), region="moon"), "invalid region"),
    ],
)
def test_bad_targets_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        policy.Target(**kwargs)  # type: ignore[arg-type]


def test_bad_principal_is_refused() -> None:
    with pytest.raises(UsageError, match="not an IAM principal ARN"):
        policy.role_trust_policy(["alice"])
