"""HTTP statuses per protocol, as AWS answers them, through boto3 against the real `xtok server`:
Secrets Manager (JSON 1.1) answers every client error with 400, AccessDeniedException and the
signature errors included; STS and IAM (query) use their model's status (NoSuchEntity 404,
EntityAlreadyExists 409, ...) or the documented common one (AccessDenied, ExpiredToken,
InvalidClientTokenId, SignatureDoesNotMatch: 403)."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError
from conftest import Peer, make_peer


@pytest.fixture
def peer(request: pytest.FixtureRequest) -> Peer:
    return make_peer(request, "xtok-server")


def answer(call: Callable[[], Any]) -> tuple[str, int]:
    with pytest.raises(ClientError) as info:
        call()
    response = info.value.response
    return str(response["Error"]["Code"]), int(response["ResponseMetadata"]["HTTPStatusCode"])


def test_statuses_per_protocol(peer: Peer, unique: str) -> None:
    iam = peer.client("iam")
    name = f"status-{unique}"
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    nobody = {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}
    unknown = {"AccessKeyId": "AKIA" + "X" * 16, "SecretAccessKey": "x" * 40}
    wrong = {**nobody, "SecretAccessKey": "y" * 40}
    sts = peer.client("sts", parameter_validation=False)
    expired = sts.get_session_token(DurationSeconds=1)["Credentials"]
    peer.client("secretsmanager").create_secret(Name=name, SecretString="x")
    time.sleep(2.1)

    def sm(creds: dict[str, str] | None = None) -> Any:
        return peer.client("secretsmanager", creds)

    expected = {
        # Secrets Manager, JSON 1.1
        "sm denied": (
            lambda: sm(nobody).get_secret_value(SecretId=name),
            "AccessDeniedException",
            400,
        ),
        "sm unknown key": (lambda: sm(unknown).list_secrets(), "UnrecognizedClientException", 400),
        "sm bad signature": (lambda: sm(wrong).list_secrets(), "InvalidSignatureException", 400),
        "sm expired": (lambda: sm(expired).list_secrets(), "ExpiredTokenException", 400),
        "sm not found": (
            lambda: sm().describe_secret(SecretId=f"{name}-missing"),
            "ResourceNotFoundException",
            400,
        ),
        "sm exists": (
            lambda: sm().create_secret(Name=name, SecretString="x"),
            "ResourceExistsException",
            400,
        ),
        # STS and IAM, query
        "sts expired": (
            lambda: peer.client("sts", expired).get_caller_identity(),
            "ExpiredToken",
            403,
        ),
        "iam expired": (lambda: peer.client("iam", expired).list_users(), "ExpiredToken", 403),
        "iam denied": (lambda: peer.client("iam", nobody).list_users(), "AccessDenied", 403),
        "sts unknown key": (
            lambda: peer.client("sts", unknown).get_caller_identity(),
            "InvalidClientTokenId",
            403,
        ),
        "sts bad signature": (
            lambda: peer.client("sts", wrong).get_caller_identity(),
            "SignatureDoesNotMatch",
            403,
        ),
        "iam no such entity": (lambda: iam.get_user(UserName=f"{name}-x"), "NoSuchEntity", 404),
        "iam exists": (lambda: iam.create_user(UserName=name), "EntityAlreadyExists", 409),
        "iam delete conflict": (lambda: iam.delete_user(UserName=name), "DeleteConflict", 409),
        "iam malformed policy": (
            lambda: iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument="{"),
            "MalformedPolicyDocument",
            400,
        ),
        "sts validation": (
            lambda: sts.assume_role(
                RoleArn="arn:aws:iam::123456789012:role/r", RoleSessionName="!"
            ),
            "ValidationError",
            400,
        ),
    }
    got = {case: answer(call) for case, (call, _, _) in expected.items()}
    assert got == {case: (code, status) for case, (_, code, status) in expected.items()}


def test_unsigned_requests_per_protocol(peer: Peer) -> None:
    """No Authorization header: MissingAuthenticationToken is 403 for query services and
    MissingAuthenticationTokenException 400 for JSON 1.1 ones."""
    url = urlsplit(peer.url)

    def post(body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
        conn.request("POST", "/", body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()

    status, body = post(
        b"Action=GetCallerIdentity&Version=2011-06-15",
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 403 and b"<Code>MissingAuthenticationToken</Code>" in body
    status, body = post(
        b"{}",
        {
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "secretsmanager.ListSecrets",
        },
    )
    assert (status, json.loads(body)["__type"]) == (400, "MissingAuthenticationTokenException")
