"""The policy language: every condition operator AWS documents, set qualifiers, the condition
keys the endpoint sets, validation when a policy is written, strict ARN resolution, and what a
denied caller learns. Evaluation is checked directly (pure functions) and, where the endpoint
supplies the facts, through boto3 against the real `xtok server`. Sources: docs/aws-semantics.md."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import Peer, make_peer

from xtok.server.conditions import OPERATORS
from xtok.server.evaluation import Decision, Request, decide
from xtok.server.faults import Fault
from xtok.server.policydoc import parse_document

ACCOUNT = "123456789012"
SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:x-AbC123"


def holds(condition: dict[str, Any], context: dict[str, Any]) -> bool:
    """Whether a Deny with `condition` applies to a request with `context`."""
    doc = {
        "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": condition}]
    }
    request = Request("secretsmanager:GetSecretValue", SECRET, dict(context))
    return decide(request, [doc], None) is Decision.DENY


TAGS = "aws:tagkeys"


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [
        # ForAllValues: every request value passes the operator; no values at all passes.
        ({"ForAllValues:StringNotEquals": {"aws:TagKeys": ["a", "b"]}}, {TAGS: ["c", "d"]}, True),
        ({"ForAllValues:StringNotEquals": {"aws:TagKeys": ["a", "b"]}}, {TAGS: ["c", "a"]}, False),
        ({"ForAllValues:StringNotEquals": {"aws:TagKeys": ["a"]}}, {}, True),
        ({"ForAllValues:StringNotEquals": {"aws:TagKeys": ["a"]}}, {TAGS: []}, True),
        ({"ForAllValues:StringNotLike": {"aws:TagKeys": "tmp-*"}}, {TAGS: ["x", "y"]}, True),
        ({"ForAllValues:StringNotLike": {"aws:TagKeys": "tmp-*"}}, {TAGS: ["x", "tmp-1"]}, False),
        (
            {"ForAllValues:StringNotEqualsIgnoreCase": {"aws:TagKeys": "A"}},
            {TAGS: ["a"]},
            False,
        ),
        # ForAnyValue: at least one request value passes; no values never passes.
        ({"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["a", "b"]}}, {TAGS: ["a", "c"]}, True),
        ({"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["a", "b"]}}, {TAGS: ["a", "b"]}, False),
        ({"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["a"]}}, {}, False),
        ({"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["a"]}}, {TAGS: []}, False),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}}, {}, False),
        ({"ForAnyValue:StringLike": {"aws:TagKeys": "a*"}}, {TAGS: ["b", "ab"]}, True),
        ({"ForAnyValue:StringEqualsIfExists": {"aws:TagKeys": ["a"]}}, {}, True),
        # Single-valued operators on a missing key: negated ones match, ...IfExists matches.
        ({"StringNotEquals": {"aws:username": "bob"}}, {}, True),
        ({"NumericNotEquals": {"aws:EpochTime": "1"}}, {}, True),
        ({"NumericEquals": {"aws:EpochTime": "1"}}, {}, False),
        ({"DateNotEqualsIfExists": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}}, {}, True),
        # IP addresses: CIDR blocks, IPv4 and IPv6.
        ({"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}, {"aws:sourceip": "127.0.0.1"}, True),
        ({"IpAddress": {"aws:SourceIp": ["10.0.0.0/8"]}}, {"aws:sourceip": "127.0.0.1"}, False),
        ({"IpAddress": {"aws:SourceIp": "203.0.113.7"}}, {"aws:sourceip": "203.0.113.7"}, True),
        ({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:sourceip": "127.0.0.1"}, True),
        ({"NotIpAddress": {"aws:SourceIp": "127.0.0.0/8"}}, {"aws:sourceip": "127.0.0.1"}, False),
        ({"IpAddress": {"aws:SourceIp": "2001:db8::/32"}}, {"aws:sourceip": "2001:db8::1"}, True),
        ({"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}, {"aws:sourceip": "::1"}, False),
        ({"NotIpAddressIfExists": {"aws:SourceIp": "10.0.0.0/8"}}, {}, True),
        # Binary: base64 of the key's bytes.
        ({"BinaryEquals": {"aws:username": "YWxpY2U="}}, {"aws:username": "alice"}, True),
        ({"BinaryEquals": {"aws:username": "Ym9i"}}, {"aws:username": "alice"}, False),
        # ARNs: each of the six components matches separately; `*` does not cross a colon.
        (
            {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/ci/*"}},
            {"aws:principalarn": f"arn:aws:iam::{ACCOUNT}:role/ci/deploy"},
            True,
        ),
        (
            {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/x"}},
            {"aws:principalarn": f"arn:aws:iam::999:{ACCOUNT}:role/x"},
            False,
        ),
        (
            {"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::*:user/alice"}},
            {"aws:principalarn": f"arn:aws:iam::{ACCOUNT}:user/alice"},
            True,
        ),
        (
            {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/ci-*"}},
            {"aws:principalarn": "not an arn"},
            True,
        ),
        # Bool is case-insensitive; anything else than true/false never equals.
        ({"Bool": {"aws:SecureTransport": "FALSE"}}, {"aws:securetransport": "false"}, True),
    ],
)
def test_operator_semantics(
    condition: dict[str, Any], context: dict[str, Any], expected: bool
) -> None:
    assert holds(condition, context) is expected


@pytest.mark.parametrize("operator", sorted(OPERATORS))
def test_every_documented_operator_is_accepted_with_if_exists(operator: str) -> None:
    value = {
        "Bool": "true",
        "Null": "true",
        "BinaryEquals": "YWxpY2U=",
    }.get(operator, "127.0.0.1/32" if "Ip" in operator else "1")
    if operator.startswith("Date"):
        value = "2026-01-01T00:00:00Z"
    if operator.startswith("Arn"):
        value = "arn:aws:iam::*:role/x"
    forms = [operator] if operator == "Null" else [operator, operator + "IfExists"]
    for form in forms:
        text = json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Deny",
                        "Action": "*",
                        "Resource": "*",
                        "Condition": {form: {"aws:SourceIp": value}},
                    }
                ],
            }
        )
        parse_document(text)
    assert {"IpAddress", "NotIpAddress", "BinaryEquals", "ArnNotEquals"} <= OPERATORS


def test_well_formed_variants_are_accepted() -> None:
    """What the grammar allows stays allowed; the key on the last line failed before (IP)."""
    variants = [
        {"Sid": "s", "Effect": "Allow", "Action": "SecretsManager:Get*", "Resource": "*"},
        {"Effect": "Deny", "NotAction": ["sts:*"], "NotResource": ["arn:aws:iam::*:role/x"]},
        {
            "Effect": "Allow",
            "Action": "*",
            "Resource": "*",
            "Condition": {
                "NumericLessThan": {"aws:MultiFactorAuthAge": 900},
                "Bool": {"aws:MultiFactorAuthPresent": True},
                "ForAnyValue:StringLike": {"aws:TagKeys": ["a*", "b?"]},
                "StringEquals": {"aws:PrincipalTag/team": "ops", "aws:RequestTag/job": "x"},
                "IpAddressIfExists": {"aws:SourceIp": ["10.0.0.0/8", "2001:db8::/32"]},
            },
        },
    ]
    for st in variants:
        parse_document(json.dumps({"Version": "2012-10-17", "Statement": st}))
    # Under the 2008 grammar `${…}` is literal text, not a policy variable.
    literal = {"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::${x}"}
    parse_document(json.dumps({"Version": "2008-10-17", "Statement": [literal]}))


def statement(**fields: Any) -> str:
    base: dict[str, Any] = {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}
    base.update(fields)
    return json.dumps({"Version": "2012-10-17", "Statement": [base]})


@pytest.mark.parametrize(
    "text",
    [
        statement(Action=5),
        statement(Action=["secretsmanager:Get*", 7]),
        statement(Action=[]),
        statement(Action="GetSecretValue"),  # no service prefix
        statement(Resource={"arn": "x"}),
        statement(Resource="secret/x"),  # neither an ARN nor *
        statement(Effect="allow"),
        statement(Effect=None),
        statement(Sid=3),
        statement(Principal={"AWS": "*"}),  # identity policies name no principal
        statement(Condition={"StringSortOf": {"aws:username": "a"}}),
        statement(Condition={"ForSomeValues:StringEquals": {"aws:username": "a"}}),
        statement(Condition={"NullIfExists": {"aws:username": "true"}}),
        statement(Condition={"StringEquals": "aws:username"}),
        statement(Condition={"StringEquals": {"aws:username": {"a": "b"}}}),
        statement(Condition={"StringEquals": {"aws:username": []}}),
        statement(Condition={"Bool": {"aws:SecureTransport": "yes"}}),
        statement(Condition={"Null": {"aws:username": "maybe"}}),
        statement(Condition={"NumericLessThan": {"aws:EpochTime": "soon"}}),
        statement(Condition={"DateLessThan": {"aws:CurrentTime": "tomorrow"}}),
        statement(Condition={"IpAddress": {"aws:SourceIp": "10.0.0.300/8"}}),
        statement(Condition={"BinaryEquals": {"aws:username": "not base64!"}}),
        statement(Unknown="x"),
        '{"Version": "2012-10-17", "Statement": 5}',
        '{"Version": "2012-10-17", "Statement": ["x"]}',
        '{"Version": "2019-01-01", "Statement": []}',
        '{"Version": "2012-10-17", "Statement": [], "Extra": 1}',
        "[]",
    ],
)
def test_malformed_policies_are_refused_with_a_reason(text: str) -> None:
    with pytest.raises(Fault) as info:
        parse_document(text)
    assert info.value.code == "MalformedPolicyDocument"
    assert info.value.message and "\n" not in info.value.message


@pytest.mark.parametrize("key", ["aws:PrincipalOrgID", "s3:prefix", "secretsmanager:Unknown"])
def test_a_condition_on_a_key_the_endpoint_never_sets_is_refused(key: str) -> None:
    """A Deny on such a key would never apply: refused when written, not silently ignored."""
    with pytest.raises(Fault) as info:
        parse_document(
            statement(Effect="Deny", Condition={"StringEquals": {key: "x"}}), trust=False
        )
    assert info.value.code == "MalformedPolicyDocument"
    assert key in info.value.message


def test_trust_policies_are_validated_too() -> None:
    good = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}
    parse_document(json.dumps({"Statement": [{**good, "Action": "sts:AssumeRole"}]}), trust=True)
    for bad in (
        {**good, "Action": 5},
        {**good, "Action": "sts:AssumeRole", "Principal": {"AWS": 5}},
        {**good, "Action": "sts:AssumeRole", "Principal": {"Somebody": "x"}},
        {"Effect": "Allow", "Action": "sts:AssumeRole"},
    ):
        with pytest.raises(Fault):
            parse_document(json.dumps({"Statement": [bad]}), trust=True)


# --- through the endpoint ------------------------------------------------------------------------


@pytest.fixture
def peer(request: pytest.FixtureRequest) -> Peer:
    return make_peer(request, "xtok-server")


def error(call: Callable[[], Any]) -> ClientError:
    with pytest.raises(ClientError) as info:
        call()
    return info.value


def put_user(peer: Peer, name: str, statements: list[dict[str, Any]]) -> dict[str, str]:
    iam = peer.client("iam")
    iam.create_user(UserName=name)
    iam.put_user_policy(
        UserName=name,
        PolicyName="p",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
    )
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}


def test_writing_a_malformed_policy_is_refused_on_the_wire(peer: Peer, unique: str) -> None:
    iam = peer.client("iam")
    iam.create_user(UserName=f"mal-{unique}")
    deep = '{"Version": "2012-10-17", "Statement": ' + "[" * 1500 + "]" * 1500 + "}"
    for text in ('{"Version": "2012-10-17", "Statement": 5}', statement(Action=5), deep):
        err = error(
            lambda t=text: iam.put_user_policy(
                UserName=f"mal-{unique}", PolicyName="p", PolicyDocument=t
            )
        )
        assert err.response["Error"]["Code"] == "MalformedPolicyDocument"
    session = error(
        lambda: peer.client("sts").assume_role(
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/none-{unique}",
            RoleSessionName="xx",
            Policy=statement(Condition={"StringEquals": {"aws:PrincipalOrgID": "o-1"}}),
        )
    )
    assert session.response["Error"]["Code"] == "MalformedPolicyDocument"
    trust = error(lambda: iam.create_role(RoleName=f"mal-{unique}", AssumeRolePolicyDocument=deep))
    assert trust.response["Error"]["Code"] == "MalformedPolicyDocument"


def deny_if(operator: str, key: str, value: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {operator: {key: value}}}


READ = {"Effect": "Allow", "Action": ["secretsmanager:*", "sts:AssumeRole"], "Resource": "*"}


@pytest.mark.parametrize(
    ("operator", "key", "value"),
    [
        ("Bool", "aws:SecureTransport", "false"),
        ("StringEquals", "aws:RequestedRegion", "us-east-1"),
        ("IpAddress", "aws:SourceIp", ["127.0.0.0/8", "::1/128"]),
        ("Bool", "aws:ViaAWSService", "false"),
        ("ArnLike", "secretsmanager:SecretId", "arn:aws:secretsmanager:*:*:secret:ck-*"),
    ],
)
def test_the_endpoint_sets_request_keys(
    peer: Peer, unique: str, operator: str, key: str, value: Any
) -> None:
    """A Deny on each key applies: the endpoint sets it on the request (loopback, plain HTTP)."""
    name = f"ck-{unique}"
    peer.client("secretsmanager").create_secret(Name=name, SecretString="v")
    keys = put_user(peer, name, [READ, deny_if(operator, key, value)])
    sm = peer.client("secretsmanager", keys)
    assert error(lambda: sm.get_secret_value(SecretId=name)).response["Error"]["Code"] == (
        "AccessDeniedException"
    )


@pytest.mark.parametrize(
    ("key", "value", "header"),
    [
        ("aws:SecureTransport", "false", ("X-Forwarded-Proto", "https")),
        ("aws:SourceIp", ["127.0.0.0/8", "::1/128"], ("X-Forwarded-For", "10.1.2.3")),
    ],
)
def test_forwarded_headers_do_not_set_request_keys(
    peer: Peer, unique: str, key: str, value: Any, header: tuple[str, str]
) -> None:
    """Any local caller can send X-Forwarded-* headers (unsigned): they must not turn plain
    HTTP into aws:SecureTransport true, nor move aws:SourceIp off loopback."""
    name = f"fw-{unique}-{key.split(':')[1]}"
    peer.client("secretsmanager").create_secret(Name=name, SecretString="v")
    operator = "Bool" if key == "aws:SecureTransport" else "IpAddress"
    sm = peer.client("secretsmanager", put_user(peer, name, [READ, deny_if(operator, key, value)]))

    def forge(request: Any, **kwargs: Any) -> None:
        request.headers[header[0]] = header[1]

    sm.meta.events.register("before-send.*", forge)
    assert error(lambda: sm.get_secret_value(SecretId=name)).response["Error"]["Code"] == (
        "AccessDeniedException"
    )


def test_secrets_manager_request_keys(peer: Peer, unique: str) -> None:
    name = f"sk-{unique}"
    sm = peer.client("secretsmanager")
    version = sm.create_secret(Name=name, SecretString="v")["VersionId"]
    keys = put_user(
        peer,
        name,
        [
            READ,
            deny_if("StringEquals", "secretsmanager:VersionStage", "AWSPREVIOUS"),
            deny_if("StringEquals", "secretsmanager:VersionId", version),
            deny_if("StringLike", "secretsmanager:Name", f"sk-{unique}-new*"),
        ],
    )
    mine = peer.client("secretsmanager", keys)
    mine.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")
    for call in (
        lambda: mine.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS"),
        lambda: mine.get_secret_value(SecretId=name, VersionId=version),
        lambda: mine.create_secret(Name=f"sk-{unique}-new", SecretString="v"),
        lambda: mine.update_secret_version_stage(
            SecretId=name, VersionStage="AWSPREVIOUS", MoveToVersionId=version
        ),
    ):
        assert error(call).response["Error"]["Code"] == "AccessDeniedException"
    mine.create_secret(Name=f"sk-{unique}-other", SecretString="v")


def test_external_id_and_a_path_aware_principal_arn(peer: Peer, unique: str) -> None:
    iam = peer.client("iam")
    admin = peer.client("sts").get_caller_identity()["Arn"]
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": admin}, "Action": "sts:AssumeRole"},
            {
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": "stolen"}},
            },
        ],
    }
    arn = iam.create_role(
        RoleName=f"ext-{unique}", Path=f"/ci-{unique}/", AssumeRolePolicyDocument=json.dumps(trust)
    )["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=f"ext-{unique}",
        PolicyName="p",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    READ,
                    deny_if("ArnLike", "aws:PrincipalArn", f"arn:aws:iam::*:role/ci-{unique}/*"),
                ],
            }
        ),
    )
    sts = peer.client("sts")
    refused = error(lambda: sts.assume_role(RoleArn=arn, RoleSessionName="xx", ExternalId="stolen"))
    assert refused.response["Error"]["Code"] == "AccessDenied"
    creds = sts.assume_role(RoleArn=arn, RoleSessionName="xx", ExternalId="mine")["Credentials"]
    session = peer.client("secretsmanager", creds)
    assert error(session.list_secrets).response["Error"]["Code"] == "AccessDeniedException"


def test_secret_arns_resolve_strictly(peer: Peer, unique: str) -> None:
    name = f"strict-{unique}"
    sm = peer.client("secretsmanager")
    full = sm.create_secret(Name=name, SecretString="v")["ARN"]
    partial = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{name}"
    assert sm.get_secret_value(SecretId=full)["Name"] == name
    assert sm.get_secret_value(SecretId=partial)["Name"] == name
    for other in (
        full.replace(":us-east-1:", ":eu-west-1:"),
        full.replace(f":{ACCOUNT}:", ":999999999999:"),
        full.replace("arn:aws:", "arn:aws-cn:"),
        partial.replace(":us-east-1:", ":eu-west-1:"),
        full[:-6] + ("zzzzzz" if not full.endswith("zzzzzz") else "yyyyyy"),
        full.replace(":secret:", ":secrets:"),
    ):
        err = error(lambda o=other: sm.get_secret_value(SecretId=o))
        assert err.response["Error"]["Code"] == "ResourceNotFoundException", other


def test_a_denied_caller_learns_nothing_about_existence(peer: Peer, unique: str) -> None:
    name = f"hidden-{unique}"
    arn = peer.client("secretsmanager").create_secret(Name=name, SecretString="v")["ARN"]
    keys = put_user(
        peer,
        f"nosy-{unique}",
        [{"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}],
    )
    sm = peer.client("secretsmanager", keys)
    existing = error(lambda: sm.get_secret_value(SecretId=name)).response["Error"]
    missing = error(lambda: sm.get_secret_value(SecretId=f"{name}-x")).response["Error"]
    assert existing["Code"] == missing["Code"] == "AccessDeniedException"
    assert arn not in existing["Message"] and arn[-7:] not in existing["Message"]
    assert existing["Message"] == missing["Message"].replace(f"{name}-x", name)
    sts = peer.client("sts", keys)
    role_arn = peer.client("iam").create_role(
        RoleName=f"hidden-{unique}",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                        "Action": "sts:AssumeRole",
                    }
                ]
            }
        ),
    )["Role"]["Arn"]
    real = error(lambda: sts.assume_role(RoleArn=role_arn, RoleSessionName="xx")).response["Error"]
    ghost = error(lambda: sts.assume_role(RoleArn=role_arn + "-x", RoleSessionName="xx")).response[
        "Error"
    ]
    assert real["Message"] == ghost["Message"].replace(role_arn + "-x", role_arn)
    iam_admin, nosy = peer.client("iam"), peer.client("iam", keys)
    iam_admin.create_group(GroupName=f"hidden-{unique}", Path="/secret-team/")
    real = error(lambda: nosy.get_group(GroupName=f"hidden-{unique}")).response["Error"]
    ghost = error(lambda: nosy.get_group(GroupName=f"ghost-{unique}")).response["Error"]
    assert "secret-team" not in real["Message"]  # neither the path nor existence shows
    assert real["Message"] == ghost["Message"].replace("ghost-", "hidden-")


# --- policy variables ----------------------------------------------------------------------------

BASE = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:"


def decision(
    statements: list[dict[str, Any]], resource: str, version: str = "2012-10-17", **ctx: Any
) -> Decision:
    doc = {"Version": version, "Statement": statements}
    context = {k.lower().replace("_", ":", 1): v for k, v in ctx.items()}
    return decide(Request("secretsmanager:GetSecretValue", resource, context), [doc], None)


def grant(resource: str, **condition: Any) -> dict[str, Any]:
    st: dict[str, Any] = {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": resource}
    if condition:
        st["Condition"] = condition
    return st


ALICE_ONLY = grant(BASE + "${aws:username}/*")


@pytest.mark.parametrize(
    ("statements", "resource", "version", "context", "expected"),
    [
        ([ALICE_ONLY], BASE + "alice/db", "2012-10-17", {"aws_username": "alice"}, Decision.ALLOW),
        ([ALICE_ONLY], BASE + "bob/db", "2012-10-17", {"aws_username": "alice"}, Decision.IMPLICIT),
        # Under 2008-10-17 the text is literal.
        (
            [ALICE_ONLY],
            BASE + "alice/db",
            "2008-10-17",
            {"aws_username": "alice"},
            Decision.IMPLICIT,
        ),
        # A key the request lacks: the statement does not apply (a Deny neither).
        ([ALICE_ONLY], BASE + "alice/db", "2012-10-17", {}, Decision.IMPLICIT),
        (
            [grant("*"), {**ALICE_ONLY, "Effect": "Deny"}],
            BASE + "x/db",
            "2012-10-17",
            {},
            Decision.ALLOW,
        ),
        # ... unless the variable has a default.
        (
            [grant(BASE + "${aws:username, 'shared'}/*")],
            BASE + "shared/db",
            "2012-10-17",
            {},
            Decision.ALLOW,
        ),
        # ${*} is a literal asterisk, not a wildcard.
        ([grant(BASE + "a${*}")], BASE + "a*", "2012-10-17", {}, Decision.ALLOW),
        ([grant(BASE + "a${*}")], BASE + "ab", "2012-10-17", {}, Decision.IMPLICIT),
        # In conditions, and a substituted value is literal too.
        (
            [grant("*", StringEquals={"aws:PrincipalTag/owner": "${aws:username}"})],
            BASE + "x",
            "2012-10-17",
            {"aws_username": "alice", "aws_principaltag/owner": "alice"},
            Decision.ALLOW,
        ),
        (
            [grant("*", StringLike={"aws:username": "${aws:PrincipalTag/pattern}"})],
            BASE + "x",
            "2012-10-17",
            {"aws_username": "alice", "aws_principaltag/pattern": "a*"},
            Decision.IMPLICIT,
        ),
        (
            [
                grant("*"),
                {
                    "Effect": "Deny",
                    "Action": "*",
                    "Resource": "*",
                    "Condition": {"StringNotEquals": {"aws:PrincipalTag/owner": "${aws:username}"}},
                },
            ],
            BASE + "x",
            "2012-10-17",
            {"aws_username": "alice", "aws_principaltag/owner": "bob"},
            Decision.DENY,
        ),
    ],
)
def test_policy_variables(
    statements: list[dict[str, Any]],
    resource: str,
    version: str,
    context: dict[str, Any],
    expected: Decision,
) -> None:
    assert decision(statements, resource, version, **context) is expected


@pytest.mark.parametrize(
    "resource",
    [
        BASE + "${aws:PrincipalOrgID}/*",  # a key this endpoint never sets
        BASE + "${aws:TagKeys}",  # multivalued keys cannot be variables
        BASE + "${aws:username",  # unterminated
        BASE + "${aws:username, default}",  # the default must be quoted
    ],
)
def test_unusable_policy_variables_are_refused(resource: str) -> None:
    with pytest.raises(Fault) as info:
        parse_document(statement(Resource=resource))
    assert info.value.code == "MalformedPolicyDocument"


def test_a_policy_variable_scopes_iam_on_the_wire(peer: Peer, unique: str) -> None:
    """AWS's own example: each user may manage their own access keys, nobody else's."""
    own = {
        "Effect": "Allow",
        "Action": ["iam:CreateAccessKey", "iam:ListAccessKeys"],
        "Resource": f"arn:aws:iam::{ACCOUNT}:user/${{aws:username}}",
    }
    keys = put_user(peer, f"self-{unique}", [own])
    peer.client("iam").create_user(UserName=f"other-{unique}")
    iam = peer.client("iam", keys)
    iam.list_access_keys(UserName=f"self-{unique}")
    err = error(lambda: iam.list_access_keys(UserName=f"other-{unique}"))
    assert err.response["Error"]["Code"] == "AccessDenied"


def _sized(n_resources: int) -> str:
    """A policy of about 40 characters per resource, padded with white space IAM does not count."""
    resources = [f"arn:aws:secretsmanager:*:*:secret:p{i:04}-*" for i in range(n_resources)]
    return json.dumps({"Version": "2012-10-17", "Statement": [allow_read(resources)]}, indent=8)


def allow_read(resources: list[str]) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": resources}


def test_policy_size_quotas_are_iams(peer: Peer, unique: str) -> None:
    """IAM's quotas (white space not counted): a user's inline policies 2,048 characters
    together, a managed policy 6,144, a trust policy 2,048. A policy that fits here must fit
    on AWS, or xtok's generated policies could fail only there."""
    iam = peer.client("iam")
    user = f"size-{unique}"
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="a", PolicyDocument=_sized(25))  # ~1,100
    iam.put_user_policy(UserName=user, PolicyName="a", PolicyDocument=_sized(25))  # replaced
    too_much = error(
        lambda: iam.put_user_policy(UserName=user, PolicyName="b", PolicyDocument=_sized(25))
    )
    assert too_much.response["Error"]["Code"] == "LimitExceeded"
    assert "2048" in too_much.response["Error"]["Message"]
    iam.create_policy(PolicyName=f"fits-{unique}", PolicyDocument=_sized(130))  # ~5,700
    big = error(lambda: iam.create_policy(PolicyName=f"big-{unique}", PolicyDocument=_sized(150)))
    assert big.response["Error"]["Code"] == "LimitExceeded"
    over = error(
        lambda: iam.create_role(RoleName=f"t-{unique}", AssumeRolePolicyDocument=_trust(80))
    )
    assert over.response["Error"]["Code"] == "LimitExceeded"
    assert iam.create_role(RoleName=f"t-{unique}", AssumeRolePolicyDocument=_trust(55))


def _trust(principals: int) -> str:
    """A trust policy of about 29 characters per principal."""
    names = [f"arn:aws:iam::{ACCOUNT}:root"] * principals
    statement = {"Effect": "Allow", "Principal": {"AWS": names}, "Action": "sts:AssumeRole"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def test_tagging_requests_set_tag_keys_and_request_tags(peer: Peer, unique: str) -> None:
    """User and role tags are aws:PrincipalTag: a Deny on aws:TagKeys / aws:RequestTag must
    stop a caller from tagging (or untagging) its way into a protected tag, on every tagging
    action as in AWS, not only on AssumeRole."""
    name = f"tagger-{unique}"
    protected = {
        "Effect": "Deny",
        "Action": ["iam:*", "secretsmanager:*"],
        "Resource": "*",
        "Condition": {"ForAnyValue:StringEqualsIgnoreCase": {"aws:TagKeys": ["clearance"]}},
    }
    pinned = {
        "Effect": "Deny",
        "Action": "iam:TagUser",
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:RequestTag/team": "admins"}},
    }
    everything = {"Effect": "Allow", "Action": ["iam:*", "secretsmanager:*"], "Resource": "*"}
    keys = put_user(peer, name, [everything, protected, pinned])
    peer.client("secretsmanager").create_secret(Name=f"{name}/s", SecretString="v")
    iam, sm = peer.client("iam", keys), peer.client("secretsmanager", keys)
    clearance = [{"Key": "Clearance", "Value": "high"}]
    attempts = {
        "TagUser": lambda: iam.tag_user(UserName=name, Tags=clearance),
        "UntagUser": lambda: iam.untag_user(UserName=name, TagKeys=["Clearance"]),
        "CreateUser": lambda: iam.create_user(UserName=f"{name}-2", Tags=clearance),
        "CreateRole": lambda: iam.create_role(
            RoleName=name, AssumeRolePolicyDocument=_trust(1), Tags=clearance
        ),
        "TagResource": lambda: sm.tag_resource(SecretId=f"{name}/s", Tags=clearance),
        "UntagResource": lambda: sm.untag_resource(SecretId=f"{name}/s", TagKeys=["clearance"]),
        "CreateSecret": lambda: sm.create_secret(
            Name=f"{name}/t", SecretString="v", Tags=clearance
        ),
        "RequestTag": lambda: iam.tag_user(
            UserName=name, Tags=[{"Key": "team", "Value": "admins"}]
        ),
    }
    for action, attempt in attempts.items():
        code = error(attempt).response["Error"]["Code"]
        assert code in ("AccessDenied", "AccessDeniedException"), action
    iam.tag_user(UserName=name, Tags=[{"Key": "team", "Value": "ops"}])  # other tags are fine


def test_iam_tag_keys_are_case_insensitive(peer: Peer, unique: str) -> None:
    """IAM user and role tag keys are case-insensitive (case preserved): `team` replaces
    `Team`, so aws:PrincipalTag/team has one value, the last one written."""
    iam = peer.client("iam")
    name = f"case-{unique}"
    gated = {
        "Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:PrincipalTag/team": "ops"}},
    }
    keys = put_user(peer, name, [gated])
    peer.client("secretsmanager").create_secret(Name=name, SecretString="v")
    iam.tag_user(UserName=name, Tags=[{"Key": "team", "Value": "ops"}])
    iam.tag_user(UserName=name, Tags=[{"Key": "Team", "Value": "dev"}])
    assert iam.list_user_tags(UserName=name)["Tags"] == [{"Key": "Team", "Value": "dev"}]
    sm = peer.client("secretsmanager", keys)
    assert error(lambda: sm.get_secret_value(SecretId=name)).response["Error"]["Code"] == (
        "AccessDeniedException"
    )
    twice = [{"Key": "Team", "Value": "a"}, {"Key": "TEAM", "Value": "b"}]
    assert error(lambda: iam.tag_user(UserName=name, Tags=twice)).response["Error"]["Code"] == (
        "InvalidInput"
    )
    iam.untag_user(UserName=name, TagKeys=["TEAM"])
    assert not iam.list_user_tags(UserName=name)["Tags"]
