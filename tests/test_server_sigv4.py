"""SigV4 is as strict on `xtok server` as on AWS: the headers that name the request are signed,
and the credential scope names the endpoint's region and the operation's service. Requests are
signed with botocore's own signer (some headers left out on purpose) and sent over loopback."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from conftest import Peer, make_peer

JSON = {"Content-Type": "application/x-amz-json-1.1"}
FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}


@pytest.fixture
def peer(request: pytest.FixtureRequest) -> Peer:
    return make_peer(request, "xtok-server")


class _Leaving(SigV4Auth):
    """botocore's signer, leaving some headers out of SignedHeaders."""

    def __init__(self, creds: Credentials, service: str, region: str, leave_out: tuple[str, ...]):
        super().__init__(creds, service, region)
        self.leave_out = leave_out

    def headers_to_sign(self, request: AWSRequest) -> Any:
        headers = super().headers_to_sign(request)
        for name in self.leave_out:
            del headers[name]
        return headers


def sign(
    peer: Peer,
    body: bytes,
    headers: dict[str, str],
    *,
    service: str,
    region: str = "us-east-1",
    leave_out: tuple[str, ...] = (),
) -> dict[str, str]:
    request = AWSRequest("POST", peer.url + "/", data=body, headers=headers)
    creds = Credentials(peer.key_id, peer.secret_key)
    _Leaving(creds, service, region, leave_out).add_auth(request)
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}


def send(peer: Peer, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    url = urlsplit(peer.url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
    conn.request("POST", "/", body=body, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def json_code(status: int, body: bytes) -> str:
    assert 400 <= status < 500, (status, body)
    return str(json.loads(body)["__type"])


def query_code(status: int, body: bytes) -> str:
    assert 400 <= status < 500, (status, body)
    return body.split(b"<Code>", 1)[1].split(b"</Code>", 1)[0].decode()


def test_a_request_signed_without_its_target_cannot_be_replayed_as_another(
    peer: Peer, unique: str
) -> None:
    name = f"sigv4-{unique}/s"
    sm = peer.client("secretsmanager")
    sm.create_secret(Name=name, SecretString="v")
    body = json.dumps({"SecretId": name}).encode()
    read = {**JSON, "X-Amz-Target": "secretsmanager.GetSecretValue"}
    headers = sign(peer, body, read, service="secretsmanager", leave_out=("X-Amz-Target",))
    replayed = {**headers, "X-Amz-Target": "secretsmanager.DeleteSecret"}
    assert json_code(*send(peer, body, replayed)) == "IncompleteSignatureException"
    assert "DeletedDate" not in sm.describe_secret(SecretId=name)
    assert json_code(*send(peer, body, headers)) == "IncompleteSignatureException"


@pytest.mark.parametrize("header", ["Host", "X-Amz-Date"])
def test_host_and_date_must_be_signed(peer: Peer, header: str) -> None:
    body = b"Action=GetCallerIdentity&Version=2011-06-15"
    headers = sign(peer, body, FORM, service="sts", leave_out=(header,))
    status, answer = send(peer, body, headers)
    assert query_code(status, answer) == "IncompleteSignature"
    assert f"'{header.lower()}' must be a 'SignedHeader'".encode() in answer


def test_the_credential_scope_names_the_endpoints_region(peer: Peer) -> None:
    body = b"Action=GetCallerIdentity&Version=2011-06-15"
    status, answer = send(peer, body, sign(peer, body, FORM, service="sts", region="us-west-2"))
    assert query_code(status, answer) == "SignatureDoesNotMatch"
    assert b"scoped to a valid region, not 'us-west-2'" in answer
    target = {**JSON, "X-Amz-Target": "secretsmanager.ListSecrets"}
    headers = sign(peer, b"{}", target, service="secretsmanager", region="eu-west-1")
    assert json_code(*send(peer, b"{}", headers)) == "InvalidSignatureException"
    assert "Arn" in peer.client("sts").get_caller_identity()  # the endpoint's own region works


@pytest.mark.parametrize("scope", ["sts", "iam", "s3", "no-such-service"])
def test_the_credential_scope_names_the_operations_service(peer: Peer, scope: str) -> None:
    target = {**JSON, "X-Amz-Target": "secretsmanager.ListSecrets"}
    status, answer = send(peer, b"{}", sign(peer, b"{}", target, service=scope))
    assert json_code(status, answer) == "InvalidSignatureException"
    assert b"scoped to correct service: 'secretsmanager'" in answer


def test_a_query_request_scoped_to_an_unserved_service_is_refused(peer: Peer) -> None:
    body = b"Action=GetCallerIdentity&Version=2011-06-15"
    for scope in ("ec2", "no-such-service"):
        status, answer = send(peer, body, sign(peer, body, FORM, service=scope))
        assert query_code(status, answer) == "SignatureDoesNotMatch"
        assert b"scoped to correct service: 'sts'" in answer
