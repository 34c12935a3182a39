"""Policy evaluation as AWS documents it, on xtok's own policy documents and on the operators
and keys the local endpoint supports."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from xtok.aws import policy
from xtok.server.evaluation import Decision, Grant, Principal, Request, decide, trust_allows
from xtok.server.faults import Fault
from xtok.server.policydoc import parse_document

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
ALICE = "arn:aws:iam::123456789012:user/alice"
READ = "secretsmanager:GetSecretValue"


def req(resource: str, action: str = READ, **context: str) -> Request:
    return Request(action, resource, {k.lower(): v for k, v in context.items()})


MFA_SESSION = {"aws:MultiFactorAuthPresent": "true", "aws:TokenIssueTime": "2026-11-25T14:00:00Z"}


def test_reader_policy_needs_an_mfa_session() -> None:
    doc = policy.reader_policy(policy.Target(("prod/db",)))
    assert decide(req(ARN + "prod/db-AbC123", **MFA_SESSION), [doc], None) is Decision.ALLOW
    # Long-term keys carry no MFA key at all: Bool (not BoolIfExists) does not match.
    assert decide(req(ARN + "prod/db-AbC123"), [doc], None) is Decision.IMPLICIT
    no_mfa = {**MFA_SESSION, "aws:MultiFactorAuthPresent": "false"}
    assert decide(req(ARN + "prod/db-AbC123", **no_mfa), [doc], None) is Decision.IMPLICIT
    assert decide(req(ARN + "prod/db-old-AbC123", **MFA_SESSION), [doc], None) is Decision.IMPLICIT


def test_session_policy_is_an_intersection() -> None:
    role = policy.role_permission_policy(policy.Target(prefix="prod/"))
    session = policy.session_policy(policy.Target(("prod/a",)))
    assert decide(req(ARN + "prod/a-AbC123"), [role], session) is Decision.ALLOW
    assert decide(req(ARN + "prod/b-AbC123"), [role], session) is Decision.IMPLICIT
    wide_session = policy.session_policy(policy.Target(prefix="dev/"))
    assert decide(req(ARN + "dev/x-AbC123"), [role], wide_session) is Decision.IMPLICIT


def test_revoke_denies_older_sessions_only() -> None:
    allow = policy.role_permission_policy(policy.Target(prefix="prod/"))
    revoke = policy.revoke_policy(datetime(2026, 11, 25, 14, 0, 0, tzinfo=UTC))
    older = Request(READ, ARN + "prod/a-AbC123", {"aws:tokenissuetime": "2026-11-25T13:59:59Z"})
    newer = Request(READ, ARN + "prod/a-AbC123", {"aws:tokenissuetime": "2026-11-25T14:00:00Z"})
    assert decide(older, [allow, revoke], None) is Decision.DENY
    assert decide(newer, [allow, revoke], None) is Decision.ALLOW
    # Long-term keys have no aws:TokenIssueTime: the revocation does not touch them.
    assert decide(req(ARN + "prod/a-AbC123"), [allow, revoke], None) is Decision.ALLOW


def test_role_trust_requires_named_principal_and_recent_mfa() -> None:
    trust = policy.role_trust_policy([ALICE], mfa_max_age=900)
    fresh = req(
        "arn:aws:iam::123456789012:role/r",
        "sts:AssumeRole",
        **{"aws:MultiFactorAuthPresent": "true", "aws:MultiFactorAuthAge": "60"},
    )
    stale = req(
        "arn:aws:iam::123456789012:role/r",
        "sts:AssumeRole",
        **{"aws:MultiFactorAuthPresent": "true", "aws:MultiFactorAuthAge": "901"},
    )
    alice = Principal(ALICE, ALICE, "123456789012")
    bob = Principal(ALICE.replace("alice", "bob"), ALICE.replace("alice", "bob"), "123456789012")
    assert trust_allows(trust, fresh, alice) == (Decision.ALLOW, Grant.PRINCIPAL)
    assert trust_allows(trust, stale, alice)[0] is Decision.IMPLICIT
    assert trust_allows(trust, fresh, bob)[0] is Decision.IMPLICIT
    account_trust = {
        "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": "123456789012"}}
        ]
    }
    assert trust_allows(account_trust, fresh, alice) == (Decision.ALLOW, Grant.NONE)


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [
        ({"StringEquals": {"aws:username": "alice"}}, {"aws:username": "alice"}, True),
        ({"StringEquals": {"aws:username": "alice"}}, {"aws:username": "Alice"}, False),
        ({"StringEqualsIgnoreCase": {"aws:username": "ALICE"}}, {"aws:username": "alice"}, True),
        ({"StringNotEquals": {"aws:username": "bob"}}, {"aws:username": "alice"}, True),
        ({"StringNotEquals": {"aws:username": "bob"}}, {}, True),  # negated: absent matches
        ({"StringEquals": {"aws:username": "alice"}}, {}, False),
        ({"StringEqualsIfExists": {"aws:username": "alice"}}, {}, True),
        ({"StringLike": {"aws:SourceIdentity": "ali*"}}, {"aws:sourceidentity": "alice"}, True),
        (
            {"StringLike": {"sts:RoleSessionName": "job-?"}},
            {"sts:rolesessionname": "job-12"},
            False,
        ),
        (
            {"StringNotLike": {"aws:PrincipalTag/team": "ops*"}},
            {"aws:principaltag/team": "dev"},
            True,
        ),
        (
            {"Bool": {"aws:MultiFactorAuthPresent": True}},
            {"aws:multifactorauthpresent": "true"},
            True,
        ),
        ({"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}, {}, True),
        (
            {"NumericLessThan": {"aws:MultiFactorAuthAge": "900"}},
            {"aws:multifactorauthage": "899"},
            True,
        ),
        (
            {"NumericGreaterThanEquals": {"aws:MultiFactorAuthAge": 900}},
            {"aws:multifactorauthage": "899"},
            False,
        ),
        (
            {"NumericLessThan": {"aws:MultiFactorAuthAge": "900"}},
            {"aws:multifactorauthage": "soon"},
            False,
        ),
        (
            {"DateGreaterThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}},
            {"aws:currenttime": "2026-11-25T14:00:00Z"},
            True,
        ),
        (
            {"DateLessThanEquals": {"aws:TokenIssueTime": "2026-11-25T14:00:00Z"}},
            {"aws:tokenissuetime": "2026-11-25T14:00:00Z"},
            True,
        ),
        ({"Null": {"aws:TokenIssueTime": "true"}}, {}, True),
        ({"Null": {"aws:TokenIssueTime": "false"}}, {}, False),
        (
            {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/ci-*"}},
            {"aws:principalarn": "arn:aws:iam::123456789012:role/ci-deploy"},
            True,
        ),
        (
            {"ArnNotEquals": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/x"}},
            {"aws:principalarn": "arn:aws:iam::123456789012:role/x"},
            False,
        ),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}, {"aws:tagkeys": ["a"]}, True),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}}, {"aws:tagkeys": ["a", "c"]}, False),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["c"]}}, {"aws:tagkeys": ["a", "c"]}, True),
        (
            {"StringEquals": {"aws:username": "alice"}, "Bool": {"aws:SecureTransport": "true"}},
            {"aws:username": "alice"},
            False,
        ),  # operators AND together
        (
            {"StringEquals": {"aws:username": ["bob", "alice"]}},
            {"aws:username": "alice"},
            True,
        ),  # values OR together
    ],
)
def test_condition_operators(
    condition: dict[str, object], context: dict[str, object], expected: bool
) -> None:
    doc = {
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": condition}]
    }
    request = Request(READ, ARN + "x-AbC123", dict(context))  # type: ignore[arg-type]
    assert (decide(request, [doc], None) is Decision.ALLOW) is expected


def test_actions_fold_case_resources_do_not_and_not_forms() -> None:
    doc = {
        "Statement": [
            {"Effect": "Allow", "Action": "SecretsManager:Get*", "Resource": ARN + "prod/*"},
            {"Effect": "Deny", "NotAction": "secretsmanager:Describe*", "NotResource": ARN + "p*"},
        ]
    }
    assert decide(req(ARN + "prod/x"), [doc], None) is Decision.ALLOW
    assert decide(req(ARN + "PROD/x"), [doc], None) is Decision.DENY
    assert (
        decide(req(ARN + "prod/x", "secretsmanager:PutSecretValue"), [doc], None)
        is Decision.IMPLICIT
    )


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        '{"Version": "2012-10-17"}',
        '{"Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]}',
        '{"Statement": [{"Effect": "Allow", "Resource": "*"}]}',
        '{"Statement": [{"Effect": "Allow", "Action": "*"}]}',
        '{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", '
        '"Condition": {"StringSortOf": {"a": "b"}}}]}',
    ],
)
def test_malformed_documents_are_refused(text: str) -> None:
    with pytest.raises(Fault) as info:
        parse_document(text)
    assert info.value.code == "MalformedPolicyDocument"
