"""Conformance: the write-up's own commands, verbatim through the real `aws` CLI, and the same
plumbing through boto3 — against `xtok server` and against moto's server, so the suite is not
tailored to one peer."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import CANARY, Peer, make_peer

VALUE_SHA = hashlib.sha256(CANARY.encode()).hexdigest()


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(params=["xtok-server", "moto"])
def peer(request: pytest.FixtureRequest) -> Peer:
    return make_peer(request, request.param)


def aws(peer: Peer, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Any:
    """The unmodified `aws` CLI; returns its parsed JSON output."""
    proc = subprocess.run(
        [sys.executable, "-m", "awscli", *args],
        env=env or peer.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )
    assert proc.returncode == 0, proc.stderr.replace(CANARY, "<canary>")
    return json.loads(proc.stdout) if proc.stdout.strip() else None


def test_write_up_commands_through_the_aws_cli(peer: Peer, unique: str, tmp_path: Path) -> None:
    name = f"/prod-{unique}/exampleCredential"
    # Store a Secret in AWS
    aws(peer, "secretsmanager", "create-secret", "--name", name)
    aws(
        peer,
        "secretsmanager",
        "put-secret-value",
        "--secret-id",
        name,
        "--secret-string",
        "first-" + CANARY,
    )
    # ... or with a temporary file
    (tmp_path / "exampleCredential.txt").write_text(CANARY)
    aws(
        peer,
        "secretsmanager",
        "put-secret-value",
        "--secret-id",
        name,
        "--secret-string",
        "file://exampleCredential.txt",
        cwd=tmp_path,
    )
    got = aws(peer, "secretsmanager", "get-secret-value", "--secret-id", name)
    assert sha(got["SecretString"]) == VALUE_SHA
    # ... or with a named pipe
    fifo = tmp_path / "myfifo"
    os.mkfifo(fifo, 0o600)
    writer = threading.Thread(target=lambda: fifo.write_text("fifo-" + CANARY))
    writer.start()
    aws(
        peer,
        "secretsmanager",
        "put-secret-value",
        "--secret-id",
        name,
        "--secret-string",
        f"file://{fifo}",
    )
    writer.join(timeout=30)
    got = aws(peer, "secretsmanager", "get-secret-value", "--secret-id", name)
    assert sha(got["SecretString"]) == sha("fifo-" + CANARY)

    # The Jenkins step: get-session-token | jq -r '.Credentials|.SessionToken+":"+…'
    creds = aws(peer, "sts", "get-session-token", "--duration-seconds", "900")["Credentials"]
    temp = f"{creds['SessionToken']}:{creds['AccessKeyId']}:{creds['SecretAccessKey']}"
    session_token, key_id, secret_key = temp.split(":")
    env = {
        **peer.env(),
        "AWS_SESSION_TOKEN": session_token,
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret_key,
    }
    got = aws(
        peer,
        "--region",
        "us-east-1",
        "secretsmanager",
        "get-secret-value",
        "--secret-id",
        name,
        env=env,
    )
    assert sha(got["SecretString"]) == sha("fifo-" + CANARY)

    # A least-privilege enhancement: aws sts assume-role
    me = aws(peer, "sts", "get-caller-identity")["Arn"]
    role = f"reader-{unique}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": me}, "Action": "sts:AssumeRole"}],
    }
    aws(
        peer,
        "iam",
        "create-role",
        "--role-name",
        role,
        "--assume-role-policy-document",
        json.dumps(trust),
    )
    reader = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": f"arn:aws:secretsmanager:us-east-1:*:secret:/prod-{unique}/*",
            }
        ],
    }
    aws(
        peer,
        "iam",
        "put-role-policy",
        "--role-name",
        role,
        "--policy-name",
        "reader",
        "--policy-document",
        json.dumps(reader),
    )
    account = aws(peer, "sts", "get-caller-identity")["Account"]
    assumed = aws(
        peer,
        "sts",
        "assume-role",
        "--role-arn",
        f"arn:aws:iam::{account}:role/{role}",
        "--role-session-name",
        "jenkins-42",
    )
    c = assumed["Credentials"]
    env = {
        **peer.env(),
        "AWS_SESSION_TOKEN": c["SessionToken"],
        "AWS_ACCESS_KEY_ID": c["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": c["SecretAccessKey"],
    }
    got = aws(
        peer,
        "--region",
        "us-east-1",
        "secretsmanager",
        "get-secret-value",
        "--secret-id",
        name,
        env=env,
    )
    assert sha(got["SecretString"]) == sha("fifo-" + CANARY)
    assert assumed["AssumedRoleUser"]["Arn"].endswith(f":assumed-role/{role}/jenkins-42")


def test_secrets_manager_plumbing_through_boto3(peer: Peer, unique: str) -> None:
    sm = peer.client("secretsmanager")
    name = f"plumb-{unique}/db"
    created = sm.create_secret(Name=name, SecretString="v1", Description="d")
    assert created["ARN"].endswith(f":secret:{name}-" + created["ARN"][-6:])
    assert len(created["ARN"].rsplit("-", 1)[1]) == 6
    with pytest.raises(ClientError) as exists:
        sm.create_secret(Name=name, SecretString="again")
    assert exists.value.response["Error"]["Code"] == "ResourceExistsException"
    v2 = sm.put_secret_value(SecretId=name, SecretString="v2")["VersionId"]
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    assert stages[v2] == ["AWSCURRENT"]
    assert stages[created["VersionId"]] == ["AWSPREVIOUS"]
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v2"
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"] == "v1"
    assert (
        sm.get_secret_value(SecretId=created["ARN"], VersionId=created["VersionId"])["SecretString"]
        == "v1"
    )
    blob = bytes(range(256))
    sm.create_secret(Name=f"plumb-{unique}/bin", SecretBinary=blob)
    got = sm.get_secret_value(SecretId=f"plumb-{unique}/bin")
    assert got["SecretBinary"] == blob and "SecretString" not in got
    listed = sm.list_secrets(Filters=[{"Key": "name", "Values": [f"plumb-{unique}/"]}])
    assert sorted(s["Name"] for s in listed["SecretList"]) == [f"plumb-{unique}/bin", name]
    sm.update_secret(SecretId=name, Description="new")
    assert sm.describe_secret(SecretId=name)["Description"] == "new"
    sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    with pytest.raises(ClientError) as deleted:
        sm.get_secret_value(SecretId=name)
    assert deleted.value.response["Error"]["Code"] == "InvalidRequestException"
    sm.restore_secret(SecretId=name)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v2"
    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    with pytest.raises(ClientError) as gone:
        sm.describe_secret(SecretId=name)
    assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_iam_plumbing_through_boto3(peer: Peer, unique: str) -> None:
    iam = peer.client("iam")
    user = f"u-{unique}"
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    assert key["AccessKeyId"].startswith("AKIA") and len(key["SecretAccessKey"]) == 40
    listed = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in listed] == [key["AccessKeyId"]]
    doc = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}
        ],
    }
    iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps(doc))
    assert iam.get_user_policy(UserName=user, PolicyName="p")["PolicyDocument"] == doc
    assert iam.list_user_policies(UserName=user)["PolicyNames"] == ["p"]
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::123456789012:user/{user}"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = iam.create_role(
        RoleName=f"r-{unique}", AssumeRolePolicyDocument=json.dumps(trust), MaxSessionDuration=7200
    )["Role"]
    assert role["Arn"].endswith(f":role/r-{unique}")
    got = iam.get_role(RoleName=f"r-{unique}")["Role"]
    assert got["AssumeRolePolicyDocument"] == trust and got["MaxSessionDuration"] == 7200
    iam.put_role_policy(RoleName=f"r-{unique}", PolicyName="p", PolicyDocument=json.dumps(doc))
    assert iam.list_role_policies(RoleName=f"r-{unique}")["PolicyNames"] == ["p"]
    iam.delete_role_policy(RoleName=f"r-{unique}", PolicyName="p")
    iam.delete_role(RoleName=f"r-{unique}")
    with pytest.raises(ClientError) as missing:
        iam.get_role(RoleName=f"r-{unique}")
    assert missing.value.response["Error"]["Code"] == "NoSuchEntity"
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=f"m-{unique}")
    assert serial["VirtualMFADevice"]["SerialNumber"].endswith(f":mfa/m-{unique}")


def test_iam_lists_paginate(request: pytest.FixtureRequest, unique: str) -> None:
    """xtok server only: moto answers ListUsers in one page whatever MaxItems says."""
    iam = make_peer(request, "xtok-server").client("iam")
    names = [f"page-{unique}-{i}" for i in range(5)]
    for name in names:
        iam.create_user(UserName=name)
    first = iam.list_users(MaxItems=2)
    assert len(first["Users"]) == 2 and first["IsTruncated"] and first["Marker"]
    seen = [
        u["UserName"]
        for page in iam.get_paginator("list_users").paginate(PaginationConfig={"PageSize": 2})
        for u in page["Users"]
    ]
    assert [n for n in seen if n.startswith(f"page-{unique}-")] == names
