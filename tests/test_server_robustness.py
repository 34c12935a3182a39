"""The local endpoint against hostile callers: every request gets an AWS-shaped 4xx (never a
500 or a traceback), memory stays bounded whatever service names callers send, and connections
that never finish a request are closed. All against a real `xtok server` process."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import botocore.session
import pytest
from botocore.exceptions import ClientError
from conftest import Peer, Server
from test_server_sigv4 import FORM, JSON, send, sign

from xtok.server.bootstrap import spawn_dev


def raw(url: str, data: bytes, timeout: float = 30) -> bytes:
    """Send raw bytes (headers no HTTP client would write) and read the answer to the end."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname or "", parts.port or 80), timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def aws_error(status: int, body: bytes) -> str:
    """The AWS error code of a 4xx answer in either protocol's shape."""
    assert 400 <= status < 500, (status, body[:200])
    if body.startswith(b"{"):
        return str(json.loads(body)["__type"])
    assert body.startswith(b"<ErrorResponse"), body[:200]
    return body.split(b"<Code>", 1)[1].split(b"</Code>", 1)[0].decode()


def status_and_body(answer: bytes) -> tuple[int, bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_hostile_requests_get_aws_shaped_4xx_never_a_500(server: tuple[Server, Peer]) -> None:
    srv, peer = server
    nested = b"[" * 500_000 + b"]" * 500_000  # 1 MB, 500,000 levels deep
    target = {**JSON, "X-Amz-Target": "secretsmanager.ListSecrets"}
    code = aws_error(*send(peer, nested, sign(peer, nested, target, service="secretsmanager")))
    assert code == "SerializationException"
    in_a_field = b'{"Filters": ' + b"[" * 400_000 + b"]" * 400_000 + b"}"
    headers = sign(peer, in_a_field, target, service="secretsmanager")
    assert aws_error(*send(peer, in_a_field, headers)) == "SerializationException"
    for number in (b"9" * 100_000, b"Infinity", b"-Infinity", b"NaN"):
        body = b'{"MaxResults": ' + number + b"}"
        headers = sign(peer, body, target, service="secretsmanager")
        assert aws_error(*send(peer, body, headers)) == "SerializationException"
    query = b"Action=GetCallerIdentity&Version=2011-06-15"
    for scope in ("no-such-service", "ec2"):
        assert aws_error(*send(peer, query, sign(peer, query, FORM, service=scope)))
    host = urlsplit(peer.url).netloc.encode()
    hostile = [
        b"POST /?Action=%ff%fe HTTP/1.1\r\nHost: " + host + b"\r\nContent-Length: 0\r\n\r\n",
        b"GET /%ff%00?Action=GetCallerIdentity HTTP/1.1\r\nHost: " + host + b"\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: [\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIA/"
        b"20250101/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature="
        + b"0" * 64
        + b"\r\nX-Amz-Date: 20250101T000000Z\r\nContent-Length: 0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: " + host + b"\r\nAuthorization: AWS4-HMAC-SHA256 \xe9"
        b"\r\nX-Amz-Target: secretsmanager.\xe9GetSecretValue\r\nContent-Length: 0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: " + host + b"\r\nX-Amz-Target: \xff.\xff\r\n"
        b"Content-Length: 2\r\n\r\n{}",
    ]
    for method in (b"PUT", b"DELETE", b"PATCH", b"OPTIONS"):
        hostile.append(method + b" / HTTP/1.1\r\nHost: " + host + b"\r\nContent-Length: 0\r\n\r\n")
    for request in hostile:
        answer = raw(
            peer.url, request.replace(b"HTTP/1.1\r\n", b"HTTP/1.1\r\nConnection: close\r\n")
        )
        assert aws_error(*status_and_body(answer))
    not_http = [  # refused by the HTTP parser before any handler: a plain 400
        b"POST /?Action=\xff HTTP/1.1\r\nHost: " + host + b"\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: " + host + b"\r\nX-Amz-Target: \x01\x1b[2J\r\n\r\n",
    ]
    for request in not_http:
        assert raw(peer.url, request).startswith(b"HTTP/1.1 400 ")
    assert "Arn" in peer.client("sts").get_caller_identity()
    srv.stop()
    assert srv.proc is not None and srv.proc.stderr is not None
    log = srv.proc.stderr.read()
    assert "Traceback" not in log and "internal error" not in log


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:", 1)[1].split()[0])


def test_memory_stays_bounded_whatever_services_callers_name(server: tuple[Server, Peer]) -> None:
    """Each request names another of botocore's ~400 services in its credential scope or its
    target; none of their models (about 1 MB each) may be loaded."""
    srv, peer = server
    assert srv.proc is not None
    services = botocore.session.get_session().get_available_services()
    served = {"sts", "iam", "secretsmanager"}
    others = [s for s in services if s not in served][:150]
    query = b"Action=DescribeInstances&Version=2016-11-15"
    send(peer, query, sign(peer, query, FORM, service=others[0]))  # warm up
    before = rss_kib(srv.proc.pid)
    for name in others:
        status, _ = send(peer, query, sign(peer, query, FORM, service=name))
        assert 400 <= status < 500
        target = {**JSON, "X-Amz-Target": f"{name}.ListThings"}
        status, _ = send(peer, b"{}", sign(peer, b"{}", target, service=name))
        assert 400 <= status < 500
    grown_mib = (rss_kib(srv.proc.pid) - before) / 1024
    assert grown_mib < 30, f"the server grew by {grown_mib:.0f} MiB"


@pytest.fixture
def quick_timeouts() -> Iterator[str]:
    """A dev endpoint that gives a request 1 s for its headers and 1 s for its body."""
    proc, exports = spawn_dev("--read-timeout", "1")
    yield exports["AWS_ENDPOINT_URL"]
    proc.terminate()
    proc.wait(timeout=30)


def closed_without_answer(url: str, data: bytes) -> bytes:
    """What the server sends before closing a connection that sent `data` and stalled; the
    30 s socket timeout only bounds a failing run."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname or "", parts.port or 80), 30) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pytest.fail(f"the server kept a stalled connection open: {data[:40]!r}")
    return b"".join(chunks)


def test_idle_and_incomplete_requests_are_closed(quick_timeouts: str) -> None:
    url = quick_timeouts
    host = urlsplit(url).netloc.encode()
    assert closed_without_answer(url, b"") == b""
    assert closed_without_answer(url, b"POST / HTTP/1.1\r\nHost: " + host + b"\r\nX-Am") == b""
    declared = b"POST / HTTP/1.1\r\nHost: " + host + b"\r\nContent-Length: 100\r\n\r\n{}\n"
    assert closed_without_answer(url, declared) == b""
    # A complete request on a new connection is still answered.
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname or "", parts.port or 80), 30) as sock:
        request = b"POST / HTTP/1.1\r\nHost: " + host + b"\r\nContent-Length: 0\r\n\r\n"
        sock.sendall(request)
        assert sock.recv(65536).startswith(b"HTTP/1.1 403")


def test_a_deleted_key_is_refused_at_once_though_holders_are_remembered(
    server: tuple[Server, Peer],
) -> None:
    """The endpoint remembers who holds each key between requests; a change made through IAM
    must still apply to the very next request."""
    _, peer = server
    iam = peer.client("iam")
    iam.create_user(UserName="held")
    keys = [iam.create_access_key(UserName="held")["AccessKey"] for _ in range(2)]
    clients = [
        peer.client("sts", {k: key[k] for k in ("AccessKeyId", "SecretAccessKey")}) for key in keys
    ]
    for sts in clients:
        assert sts.get_caller_identity()["Arn"].endswith(":user/held")
    iam.delete_access_key(UserName="held", AccessKeyId=keys[0]["AccessKeyId"])
    with pytest.raises(ClientError) as refused:
        clients[0].get_caller_identity()
    assert refused.value.response["Error"]["Code"] == "InvalidClientTokenId"
    assert clients[1].get_caller_identity()["Arn"].endswith(":user/held")
