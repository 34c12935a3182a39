"""The local endpoint's storage, audit log and robustness, on a real `xtok server` process
started from `xtok server init` data."""

from __future__ import annotations

import http.client
import json
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from conftest import CANARY, Peer, Server, base_env, run_xtok, self_signed_certificate

from xtok.server.bootstrap import spawn_dev


def test_database_files_hold_no_secret_value(server: tuple[Server, Peer]) -> None:
    srv, peer = server
    sm = peer.client("secretsmanager")
    sm.create_secret(Name="prod/canary", SecretString=CANARY)
    sm.put_secret_value(SecretId="prod/canary", SecretBinary=CANARY.encode() + b"\x00bin")
    creds = peer.client("sts").get_session_token(DurationSeconds=900)["Credentials"]
    assert (
        peer.client("secretsmanager", creds)
        .get_secret_value(SecretId="prod/canary")["SecretBinary"]
        .startswith(CANARY.encode())
    )
    files = sorted(srv.data.glob("xtok.db*"))
    assert files, "no database files"
    needles = [
        CANARY.encode(),
        creds["SecretAccessKey"].encode(),
        creds["SessionToken"].encode(),
        peer.secret_key.encode(),
        srv.key_file.read_text().strip().encode(),
    ]
    for path in files:
        blob = path.read_bytes()
        for needle in needles:
            assert needle not in blob, f"a secret value is readable in {path.name}"
    srv.stop()
    for path in sorted(srv.data.glob("xtok.db*")):  # after the WAL is checkpointed too
        assert CANARY.encode() not in path.read_bytes()


def test_audit_log_records_requests_and_detects_tampering(
    server: tuple[Server, Peer], initialised: tuple[Path, Path, dict[str, str]]
) -> None:
    srv, peer = server
    data, key_file, _ = initialised
    sm = peer.client("secretsmanager")
    sm.create_secret(Name="audit/s", SecretString=CANARY)
    sm.get_secret_value(SecretId="audit/s")
    with pytest.raises(ClientError):
        sm.get_secret_value(SecretId="audit/missing")
    srv.stop()
    args = ["audit", "--data", str(data), "--master-key-file", str(key_file)]
    rows = json.loads(run_xtok([*args, "--json"], base_env()).out)
    actions = [(r["action"], r["decision"], r["error"]) for r in rows]
    assert ("secretsmanager:CreateSecret", "allow", None) in actions
    assert ("secretsmanager:GetSecretValue", "allow", None) in actions
    assert ("secretsmanager:GetSecretValue", "error", "ResourceNotFoundException") in actions
    assert all(r["principal"] == "arn:aws:iam::123456789012:user/admin" for r in rows)
    assert run_xtok([*args, "--verify"], base_env()).code == 0
    conn = sqlite3.connect(data / "xtok.db")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE audit SET decision = 'allow' WHERE seq = 3")
    conn.execute("DROP TRIGGER audit_append_only_update")  # an attacker with the file
    conn.execute("UPDATE audit SET decision = 'allow', error = NULL WHERE seq = 3")
    conn.commit()
    conn.close()
    broken = run_xtok([*args, "--verify"], base_env())
    assert broken.code == 211 and "row 3: altered" in broken.err


def test_wrong_master_key_is_refused(
    initialised: tuple[Path, Path, dict[str, str]], tmp_path: Path
) -> None:
    data, _, _ = initialised
    other = tmp_path / "other.key"
    res = run_xtok(
        ["server", "init", "--data", str(tmp_path / "d2"), "--master-key-file", str(other)],
        base_env(),
    )
    assert res.code == 0
    wrong = run_xtok(["audit", "--data", str(data), "--master-key-file", str(other)], base_env())
    assert wrong.code == 208 and "does not decrypt" in wrong.err


def signed(peer: Peer, service: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    request = AWSRequest("POST", peer.url + "/", data=body, headers=headers)
    SigV4Auth(Credentials(peer.key_id, peer.secret_key), service, "us-east-1").add_auth(request)
    prepared = request.prepare()
    url = urlsplit(peer.url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
    conn.request("POST", "/", body=body, headers=dict(prepared.headers))
    response = conn.getresponse()
    return response.status, response.read()


def test_malformed_requests_get_aws_shaped_4xx(server: tuple[Server, Peer]) -> None:
    _, peer = server
    json_headers = {"Content-Type": "application/x-amz-json-1.1"}
    status, body = signed(
        peer,
        "secretsmanager",
        b"{not json",
        {**json_headers, "X-Amz-Target": "secretsmanager.GetSecretValue"},
    )
    assert status == 400 and json.loads(body)["__type"] == "SerializationException"
    for wrong in (b'{"MaxResults": "many"}', b'{"Filters": 5}'):
        target = {**json_headers, "X-Amz-Target": "secretsmanager.ListSecrets"}
        status, body = signed(peer, "secretsmanager", wrong, target)
        assert status == 400 and json.loads(body)["__type"] == "InvalidParameterException"
    status, body = signed(
        peer, "secretsmanager", b"{}", {**json_headers, "X-Amz-Target": "secretsmanager.Bogus"}
    )
    assert status == 400 and json.loads(body)["__type"] == "UnknownOperationException"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, body = signed(peer, "sts", b"Action=GetCallerIdentity&Version=2011-06-15\xff", form)
    # 404 is what AWS documents for MalformedQueryString (IAM/STS "Common Errors").
    assert status == 404 and b"<Code>MalformedQueryString</Code>" in body
    status, body = signed(peer, "iam", b"Action=GetAccountSummary&Version=2010-05-08", form)
    assert status == 400 and b"<Code>InvalidAction</Code>" in body
    big = b"Action=GetCallerIdentity&Version=2011-06-15&Pad=" + b"x" * (1 << 20)
    status, body = signed(peer, "sts", big, form)
    assert status == 413 and b"<Code>RequestEntityTooLarge</Code>" in body
    url = urlsplit(peer.url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
    conn.request("POST", "/", body=b"Action=GetCallerIdentity", headers=form)
    response = conn.getresponse()
    assert response.status == 403 and b"MissingAuthenticationToken" in response.read()


def test_non_loopback_without_tls_warns_loudly() -> None:
    """192.0.2.1 (TEST-NET-1) is no address of this machine: the warning comes first, then
    the bind fails, so nothing ever listens beyond loopback."""
    res = run_xtok(["server", "--dev", "--listen", "192.0.2.1:0"], base_env())
    assert "LISTENING ON 192.0.2.1 WITHOUT TLS" in res.err
    assert res.code == 200 and "cannot listen on 192.0.2.1:0" in res.err


def test_min_duration_is_only_for_dev(initialised: tuple[Path, Path, dict[str, str]]) -> None:
    data, key_file, _ = initialised
    res = run_xtok(
        ["server", "--data", str(data), "--master-key-file", str(key_file), "--min-duration", "5"],
        base_env(),
    )
    assert res.code == 200 and "only allowed with --dev" in res.err


def test_tls(tmp_path: Path) -> None:
    """--tls-cert/--tls-key serve HTTPS; boto3 verifies the (self-signed) certificate."""
    import boto3

    cert_file, key_file = self_signed_certificate(tmp_path)
    proc, exports = spawn_dev("--tls-cert", str(cert_file), "--tls-key", str(key_file))
    try:
        assert exports["AWS_ENDPOINT_URL"].startswith("https://127.0.0.1:")
        sts = boto3.client(
            "sts",
            endpoint_url=exports["AWS_ENDPOINT_URL"],
            region_name="us-east-1",
            verify=str(cert_file),
            aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
        )
        assert sts.get_caller_identity()["Arn"].endswith(":user/admin")
        sts.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_change_is_kept_only_with_its_audit_row(
    server: tuple[Server, Peer], initialised: tuple[Path, Path, dict[str, str]]
) -> None:
    """While the audit log refuses rows, no change lands (and the client gets an AWS error)."""
    _, peer = server
    data, _, _ = initialised
    conn = sqlite3.connect(data / "xtok.db", isolation_level=None)
    conn.execute(
        "CREATE TRIGGER audit_down BEFORE INSERT ON audit "
        "BEGIN SELECT RAISE(ABORT, 'audit unavailable'); END"
    )
    sm = peer.client("secretsmanager")
    with pytest.raises(ClientError) as refused:
        sm.create_secret(Name="unaudited/s", SecretString="v")
    assert refused.value.response["Error"]["Code"] == "InternalFailure"
    conn.execute("DROP TRIGGER audit_down")
    conn.close()
    with pytest.raises(ClientError) as missing:
        sm.describe_secret(SecretId="unaudited/s")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
