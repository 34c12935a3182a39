"""IAM as the write-up uses it, against the real `xtok server`: managed policies and their
versions, groups and their policies, user and role tags as aws:PrincipalTag, and AssumeRole's
PolicyArns and ExternalId. Every grant is checked by what the grantee can then do."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import CANARY, Peer, aws_env, make_peer


@pytest.fixture
def peer(request: pytest.FixtureRequest) -> Peer:
    return make_peer(request, "xtok-server")


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: str, resource: str = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def code(call: Any) -> str:
    with pytest.raises(ClientError) as info:
        call()
    return str(info.value.response["Error"]["Code"])


def user(peer: Peer, name: str, **extra: Any) -> dict[str, str]:
    iam = peer.client("iam")
    iam.create_user(UserName=name, **extra)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}


def aws_cli(env: dict[str, str], *args: str, cwd: Path | None = None) -> Any:
    proc = subprocess.run(
        [sys.executable, "-m", "awscli", *args, "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )
    assert proc.returncode == 0, proc.stderr.replace(CANARY, "<canary>")
    return json.loads(proc.stdout) if proc.stdout.strip() else None


# The write-up's policy, verbatim ("Write an IAM Policy").
WRITE_UP_POLICY = """{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "ExamplePolicy",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": "arn:aws:secretsmanager:us-east-1:*:secret:/prod/*"
        }
    ]
}
"""


@pytest.mark.parametrize("via", ["user", "group"])
def test_write_up_policy_attached_with_the_aws_cli_grants_what_it_says(
    peer: Peer, unique: str, tmp_path: Path, via: str
) -> None:
    """ "Attach this policy to your IAM user account or an IAM group of which you are a member"
    — with `aws iam create-policy` and `attach-user-policy` / `attach-group-policy`."""
    sm = peer.client("secretsmanager")
    sm.create_secret(Name=f"/prod/exampleCredential-{unique}", SecretString=CANARY)
    sm.create_secret(Name=f"/staging/exampleCredential-{unique}", SecretString="staging")
    jenkins = f"jenkins-{via}-{unique}"
    keys = user(peer, jenkins)
    (tmp_path / "policy.json").write_text(WRITE_UP_POLICY)
    admin = peer.env()
    policy = aws_cli(
        admin,
        "iam",
        "create-policy",
        "--policy-name",
        f"ExamplePolicy-{via}-{unique}",
        "--policy-document",
        "file://policy.json",
        cwd=tmp_path,
    )["Policy"]
    assert policy["Arn"] == f"arn:aws:iam::123456789012:policy/ExamplePolicy-{via}-{unique}"
    assert policy["DefaultVersionId"] == "v1"
    if via == "user":
        aws_cli(
            admin,
            "iam",
            "attach-user-policy",
            "--user-name",
            jenkins,
            "--policy-arn",
            policy["Arn"],
        )
    else:
        group = f"readers-{unique}"
        aws_cli(admin, "iam", "create-group", "--group-name", group)
        aws_cli(admin, "iam", "add-user-to-group", "--group-name", group, "--user-name", jenkins)
        aws_cli(
            admin,
            "iam",
            "attach-group-policy",
            "--group-name",
            group,
            "--policy-arn",
            policy["Arn"],
        )
    theirs = aws_env(peer.url, keys["AccessKeyId"], keys["SecretAccessKey"])
    got = peer.client("secretsmanager", keys).get_secret_value(
        SecretId=f"/prod/exampleCredential-{unique}"
    )
    assert got["SecretString"] == CANARY
    denied = subprocess.run(
        [sys.executable, "-m", "awscli", "secretsmanager", "get-secret-value", "--secret-id",
         f"/staging/exampleCredential-{unique}"],
        env=theirs, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert denied.returncode != 0 and "AccessDeniedException" in denied.stderr
    assert code(lambda: peer.client("secretsmanager", keys).list_secrets()) == (
        "AccessDeniedException"
    )


def test_policy_versions_change_what_is_granted(peer: Peer, unique: str) -> None:
    iam = peer.client("iam")
    sm = peer.client("secretsmanager")
    sm.create_secret(Name=f"ver-{unique}/a", SecretString="a")
    sm.create_secret(Name=f"ver-{unique}/b", SecretString="b")
    keys = user(peer, f"ver-{unique}")
    arn = iam.create_policy(
        PolicyName=f"ver-{unique}",
        Path="/ci/",
        PolicyDocument=doc(
            allow(
                "secretsmanager:GetSecretValue",
                f"arn:aws:secretsmanager:*:*:secret:ver-{unique}/a-*",
            )
        ),
    )["Policy"]["Arn"]
    assert arn.endswith(f":policy/ci/ver-{unique}")
    iam.attach_user_policy(UserName=f"ver-{unique}", PolicyArn=arn)
    theirs = peer.client("secretsmanager", keys)
    assert theirs.get_secret_value(SecretId=f"ver-{unique}/a")["SecretString"] == "a"
    assert code(lambda: theirs.get_secret_value(SecretId=f"ver-{unique}/b")) == (
        "AccessDeniedException"
    )
    v2 = iam.create_policy_version(
        PolicyArn=arn,
        PolicyDocument=doc(
            allow(
                "secretsmanager:GetSecretValue",
                f"arn:aws:secretsmanager:*:*:secret:ver-{unique}/b-*",
            )
        ),
        SetAsDefault=True,
    )["PolicyVersion"]
    assert v2["VersionId"] == "v2" and v2["IsDefaultVersion"]
    assert theirs.get_secret_value(SecretId=f"ver-{unique}/b")["SecretString"] == "b"
    assert code(lambda: theirs.get_secret_value(SecretId=f"ver-{unique}/a")) == (
        "AccessDeniedException"
    )
    assert code(lambda: iam.delete_policy_version(PolicyArn=arn, VersionId="v2")) == (
        "DeleteConflict"
    )
    iam.set_default_policy_version(PolicyArn=arn, VersionId="v1")
    assert theirs.get_secret_value(SecretId=f"ver-{unique}/a")["SecretString"] == "a"
    got = iam.get_policy_version(PolicyArn=arn, VersionId="v2")["PolicyVersion"]
    assert "ver-" in json.dumps(got["Document"]) and not got["IsDefaultVersion"]
    for _ in range(3):
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=doc(allow("sts:GetCallerIdentity")))
    assert (
        code(
            lambda: iam.create_policy_version(
                PolicyArn=arn, PolicyDocument=doc(allow("iam:GetUser"))
            )
        )
        == "LimitExceeded"
    )
    assert code(lambda: iam.delete_policy(PolicyArn=arn)) == "DeleteConflict"  # attached
    attached = iam.list_attached_user_policies(UserName=f"ver-{unique}")["AttachedPolicies"]
    assert attached == [{"PolicyName": f"ver-{unique}", "PolicyArn": arn}]
    entities = iam.list_entities_for_policy(PolicyArn=arn)
    assert [u["UserName"] for u in entities["PolicyUsers"]] == [f"ver-{unique}"]
    assert code(lambda: iam.delete_user(UserName=f"ver-{unique}")) == "DeleteConflict"
    iam.detach_user_policy(UserName=f"ver-{unique}", PolicyArn=arn)
    assert code(lambda: theirs.get_secret_value(SecretId=f"ver-{unique}/a")) == (
        "AccessDeniedException"
    )
    # A policy ARN with another path is another policy.
    other_path = arn.replace("/ci/", "/")
    assert code(lambda: iam.attach_user_policy(UserName=f"ver-{unique}", PolicyArn=other_path)) == (
        "NoSuchEntity"
    )


def test_group_inline_deny_applies_to_members(peer: Peer, unique: str) -> None:
    iam = peer.client("iam")
    peer.client("secretsmanager").create_secret(Name=f"grp-{unique}/s", SecretString="s")
    name = f"grp-{unique}"
    keys = user(peer, name)
    iam.put_user_policy(
        UserName=name, PolicyName="read", PolicyDocument=doc(allow("secretsmanager:GetSecretValue"))
    )
    theirs = peer.client("secretsmanager", keys)
    assert theirs.get_secret_value(SecretId=f"grp-{unique}/s")["SecretString"] == "s"
    iam.create_group(GroupName=name)
    iam.put_group_policy(
        GroupName=name,
        PolicyName="no-reads",
        PolicyDocument=doc({"Effect": "Deny", "Action": "secretsmanager:*", "Resource": "*"}),
    )
    iam.add_user_to_group(GroupName=name, UserName=name)
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName=name)["Groups"]] == [name]
    assert code(lambda: theirs.get_secret_value(SecretId=f"grp-{unique}/s")) == (
        "AccessDeniedException"
    )
    assert code(lambda: iam.delete_group(GroupName=name)) == "DeleteConflict"
    iam.remove_user_from_group(GroupName=name, UserName=name)
    assert theirs.get_secret_value(SecretId=f"grp-{unique}/s")["SecretString"] == "s"
    assert iam.get_group(GroupName=name)["Users"] == []
    assert iam.list_group_policies(GroupName=name)["PolicyNames"] == ["no-reads"]


def test_attach_is_authorized_with_the_policy_arn_condition_key(peer: Peer, unique: str) -> None:
    iam = peer.client("iam")
    good = iam.create_policy(PolicyName=f"good-{unique}", PolicyDocument=doc(allow("iam:GetUser")))
    bad = iam.create_policy(PolicyName=f"bad-{unique}", PolicyDocument=doc(allow("*")))
    delegate = user(peer, f"delegate-{unique}")
    iam.create_user(UserName=f"target-{unique}")
    iam.put_user_policy(
        UserName=f"delegate-{unique}",
        PolicyName="attach-good-only",
        PolicyDocument=doc(
            allow(
                "iam:AttachUserPolicy",
                Condition={"ArnEquals": {"iam:PolicyARN": good["Policy"]["Arn"]}},
            )
        ),
    )
    theirs = peer.client("iam", delegate)
    theirs.attach_user_policy(UserName=f"target-{unique}", PolicyArn=good["Policy"]["Arn"])
    assert (
        code(
            lambda: theirs.attach_user_policy(
                UserName=f"target-{unique}", PolicyArn=bad["Policy"]["Arn"]
            )
        )
        == "AccessDenied"
    )


def test_principal_tags_come_from_iam_tags(peer: Peer, unique: str) -> None:
    iam = peer.client("iam")
    peer.client("secretsmanager").create_secret(Name=f"tag-{unique}/s", SecretString="s")
    by_tag = doc(
        allow(
            "secretsmanager:GetSecretValue",
            Condition={"StringEquals": {"aws:PrincipalTag/team": "ci"}},
        )
    )
    name = f"tag-{unique}"
    keys = user(peer, name, Tags=[{"Key": "team", "Value": "web"}])
    iam.put_user_policy(UserName=name, PolicyName="by-tag", PolicyDocument=by_tag)
    theirs = peer.client("secretsmanager", keys)
    assert code(lambda: theirs.get_secret_value(SecretId=f"tag-{unique}/s")) == (
        "AccessDeniedException"
    )
    iam.tag_user(UserName=name, Tags=[{"Key": "team", "Value": "ci"}])
    assert iam.list_user_tags(UserName=name)["Tags"] == [{"Key": "team", "Value": "ci"}]
    assert theirs.get_secret_value(SecretId=f"tag-{unique}/s")["SecretString"] == "s"
    # A role's tags, overridden by the session's own tags.
    trust = doc(
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:user/admin"},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
        }
    )
    iam.create_role(
        RoleName=name, AssumeRolePolicyDocument=trust, Tags=[{"Key": "team", "Value": "ci"}]
    )
    iam.put_role_policy(RoleName=name, PolicyName="by-tag", PolicyDocument=by_tag)
    arn = f"arn:aws:iam::123456789012:role/{name}"
    sts = peer.client("sts")
    plain = sts.assume_role(RoleArn=arn, RoleSessionName="s1")["Credentials"]
    assert peer.client("secretsmanager", plain).get_secret_value(SecretId=f"tag-{unique}/s")
    tagged = sts.assume_role(
        RoleArn=arn, RoleSessionName="s2", Tags=[{"Key": "team", "Value": "web"}]
    )["Credentials"]
    assert (
        code(
            lambda: peer.client("secretsmanager", tagged).get_secret_value(
                SecretId=f"tag-{unique}/s"
            )
        )
        == "AccessDeniedException"
    )
    iam.untag_role(RoleName=name, TagKeys=["team"])
    assert "Tags" not in iam.get_role(RoleName=name)["Role"]
    assert (
        code(
            lambda: peer.client("secretsmanager", plain).get_secret_value(
                SecretId=f"tag-{unique}/s"
            )
        )
        == "AccessDeniedException"
    )


def test_assume_role_with_policy_arns_and_external_id(peer: Peer, unique: str) -> None:
    iam = peer.client("iam")
    sm = peer.client("secretsmanager")
    sm.create_secret(Name=f"ext-{unique}/a", SecretString="a")
    sm.create_secret(Name=f"ext-{unique}/b", SecretString="b")
    name = f"ext-{unique}"
    trust = doc(
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:user/admin"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": "build-42"}},
        }
    )
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)
    iam.put_role_policy(
        RoleName=name, PolicyName="read", PolicyDocument=doc(allow("secretsmanager:GetSecretValue"))
    )
    arn = f"arn:aws:iam::123456789012:role/{name}"
    sts = peer.client("sts")
    assert code(lambda: sts.assume_role(RoleArn=arn, RoleSessionName="job")) == "AccessDenied"
    assert (
        code(lambda: sts.assume_role(RoleArn=arn, RoleSessionName="job", ExternalId="build-41"))
        == "AccessDenied"
    )
    only_a = iam.create_policy(
        PolicyName=f"only-a-{unique}",
        PolicyDocument=doc(
            allow(
                "secretsmanager:GetSecretValue",
                f"arn:aws:secretsmanager:*:*:secret:ext-{unique}/a-*",
            )
        ),
    )["Policy"]["Arn"]
    creds = sts.assume_role(
        RoleArn=arn, RoleSessionName="job", ExternalId="build-42", PolicyArns=[{"arn": only_a}]
    )["Credentials"]
    scoped = peer.client("secretsmanager", creds)
    assert scoped.get_secret_value(SecretId=f"ext-{unique}/a")["SecretString"] == "a"
    assert code(lambda: scoped.get_secret_value(SecretId=f"ext-{unique}/b")) == (
        "AccessDeniedException"
    )
    missing = only_a.replace("only-a", "missing")
    assert (
        code(
            lambda: sts.assume_role(
                RoleArn=arn,
                RoleSessionName="job",
                ExternalId="build-42",
                PolicyArns=[{"arn": missing}],
            )
        )
        == "InvalidParameterValue"
    )
