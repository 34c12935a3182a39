"""The fetch retries what botocore's standard retry mode retries, reads several secrets at
once, and `xtok run` honours --profile / AWS_PROFILE and the profile's endpoint_url.

Retries are checked against a loopback stand-in for AWS (a boundary: real AWS cannot be told to
throttle) that plays a script of failures; botocore's own client plays the same script, and both
must make the same number of attempts and end the same way. Backoff sleeps are patched to zero
on both sides: what is compared is the decision to retry, not the wait.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import botocore.retries.standard as standard
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from conftest import CANARY, DevServer, aws_env, run_xtok, self_signed_certificate

from xtok.aws import fetch, retry
from xtok.aws.session import AwsConfig
from xtok.errors import ConfigError, Error, NetworkError, TokenError, UsageError
from xtok.refs import parse_ref
from xtok.sensitive import Secret
from xtok.server.bootstrap import spawn_dev
from xtok.tokens.token import Credentials

OK = (200, {"Name": "s", "SecretString": "stand-in-value"}, {})


def err(status: int, code: str | None = None) -> tuple[int, dict[str, str], dict[str, str]]:
    return (status, {"__type": code, "message": "scripted"} if code else {}, {})


class StandIn(ThreadingHTTPServer):
    """Answers each POST with the next step of `script` (then OK); counts the requests."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script: list[Any] = []
        self.requests = 0
        self.lock = threading.Lock()
        self.barrier: threading.Barrier | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def next_step(self) -> Any:
        with self.lock:
            self.requests += 1
            return self.script.pop(0) if self.script else OK


class _Handler(BaseHTTPRequestHandler):
    server: StandIn

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        step = self.server.next_step()
        if self.server.barrier is not None:
            self.server.barrier.wait(timeout=10)  # all secrets must be in flight at once
        if step == "drop":  # the connection dies before any answer
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if step == "partial":  # the answer is cut short
            self.wfile.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"Secret')
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        status, doc, headers = step
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> Iterator[StandIn]:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setattr(retry.random, "random", lambda: 0.0)
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, ctx: 0)
    server = StandIn()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def creds() -> Credentials:
    return Credentials("ASIAEXAMPLEEXAMPLE", Secret("secret"), Secret("token"), region="us-east-1")


def ours(server: StandIn, script: list[Any]) -> tuple[int, str]:
    server.script, server.requests = list(script), 0
    try:
        fetch.fetch([parse_ref("S=s")], creds(), AwsConfig(endpoint_url=server.url))
        outcome = "ok"
    except NetworkError:
        outcome = "no answer"
    except Error:
        outcome = "error"
    return server.requests, outcome


def botocores(server: StandIn, script: list[Any]) -> tuple[int, str]:
    server.script, server.requests = list(script), 0
    client = boto3.client(
        "secretsmanager",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="ASIAEXAMPLEEXAMPLE",
        aws_secret_access_key="secret",
        aws_session_token="token",
        config=Config(retries={"mode": "standard", "total_max_attempts": retry.MAX_ATTEMPTS}),
    )
    try:
        client.get_secret_value(SecretId="s")
        outcome = "ok"
    except ClientError:
        outcome = "error"
    except BotoCoreError:
        outcome = "no answer"
    return server.requests, outcome


SCRIPTS = {
    "throttled 429 without a body": [err(429)],
    "429 carrying a modeled error": [err(429, "ResourceNotFoundException")],
    "ThrottlingException": [err(400, "ThrottlingException")],
    "namespaced throttling code": [err(400, "com.amazonaws.sm#ThrottlingException:http://x")],
    "TooManyRequestsException twice": [err(400, "TooManyRequestsException")] * 2,
    "RequestTimeout": [err(400, "RequestTimeout")],
    "500": [err(500, "InternalServiceError")],
    "502 503": [err(502), err(503)],
    "504 thrice": [err(504)] * 3,
    "501 is not transient": [err(501)],
    "access denied": [err(400, "AccessDeniedException")],
    "not found": [err(400, "ResourceNotFoundException")],
    "dropped connection": ["drop"],
    "dropped thrice": ["drop"] * 3,
    "throttled, dropped, then fine": [err(400, "Throttling"), "drop"],
}


@pytest.mark.parametrize("name", SCRIPTS)
def test_retries_as_botocore_standard_mode(stand_in: StandIn, name: str) -> None:
    script = SCRIPTS[name]
    assert ours(stand_in, script) == botocores(stand_in, script)


def test_an_answer_cut_short_is_retried(stand_in: StandIn) -> None:
    """Here xtok deliberately differs: botocore hands back a truncated 200 as an empty answer
    (no SecretString); the fetch treats it as a dropped connection and asks again."""
    assert botocores(stand_in, ["partial"]) == (1, "ok")
    assert ours(stand_in, ["partial"]) == (2, "ok")


def test_retry_lists_are_botocores() -> None:
    assert set(standard.TransientRetryableChecker._TRANSIENT_ERROR_CODES) == retry.TRANSIENT_CODES
    assert (
        set(standard.TransientRetryableChecker._TRANSIENT_STATUS_CODES) == retry.TRANSIENT_STATUSES
    )
    assert set(standard.ThrottledRetryableChecker._THROTTLED_ERROR_CODES) == retry.THROTTLING_CODES
    assert (
        set(standard.ThrottlingStatusCodeChecker._THROTTLING_STATUS_CODES)
        == retry.THROTTLING_STATUSES
    )
    assert standard.DEFAULT_MAX_ATTEMPTS == retry.MAX_ATTEMPTS
    model = boto3.client("secretsmanager", region_name="us-east-1")._service_model
    errors = model.operation_model("GetSecretValue").error_shapes
    assert {shape.name for shape in errors} == retry.MODELED_ERRORS
    assert not any(shape.metadata.get("retryable") for shape in errors)


def test_backoff_matches_botocores_formula(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry.random, "random", lambda: 1.0)
    assert retry.delay(1, throttled=True) == 1.0
    assert retry.delay(3, throttled=True) == 4.0
    assert retry.delay(2, throttled=False) == pytest.approx(0.1)
    assert retry.delay(9, throttled=True) == 20.0
    assert retry.delay(1, throttled=False, retry_after_ms="3000") == 3.0
    assert retry.delay(1, throttled=False, retry_after_ms="60000") == pytest.approx(5.05)
    assert retry.delay(1, throttled=True, retry_after_ms="junk") == 1.0


def test_several_secrets_are_read_concurrently(stand_in: StandIn) -> None:
    """Three requests must be in flight together to pass the stand-in's barrier."""
    stand_in.barrier = threading.Barrier(3)
    refs = [parse_ref(f"S{i}=name{i}") for i in range(3)] + [parse_ref("T=name0")]
    values = fetch.fetch(refs, creds(), AwsConfig(endpoint_url=stand_in.url))
    assert [value.reveal_text() for _, value in values] == ["stand-in-value"] * 4
    assert stand_in.requests == 3  # a name asked for twice is read once


def test_the_first_failure_in_order_is_reported(stand_in: StandIn) -> None:
    stand_in.script = [err(400, "ResourceNotFoundException")] * 2
    with pytest.raises(Error, match="cannot read secret 'a' \\(for A\\): not found"):
        fetch.fetch(
            [parse_ref("A=a"), parse_ref("B=b")], creds(), AwsConfig(endpoint_url=stand_in.url)
        )


@pytest.fixture(scope="module")
def token_env(xtok_server: DevServer) -> dict[str, str]:
    base = aws_env(xtok_server.url, xtok_server.access_key_id, xtok_server.secret_access_key)
    assert run_xtok(["secret", "put", "fetch/canary"], base, stdin=CANARY).code == 0
    token = run_xtok(["token"], base).out.strip()
    env = {k: v for k, v in base.items() if not k.startswith("AWS_")}
    return {**env, "XTOK_TOKEN": token}


@pytest.mark.parametrize("how", ["--profile", "AWS_PROFILE", "XTOK_PROFILE"])
def test_run_honours_the_profile_and_its_endpoint_url(
    token_env: dict[str, str], xtok_server: DevServer, tmp_path: Path, how: str
) -> None:
    """No AWS_ENDPOINT_URL: only the profile's endpoint_url leads to the local endpoint."""
    config = tmp_path / "config"
    config.write_text(
        "[default]\nregion = eu-west-1\n\n"
        f"[profile ci]\nregion = us-east-1\nendpoint_url = {xtok_server.url}\n"
    )
    env = {**token_env, "AWS_CONFIG_FILE": str(config)}
    command = ["--secret", "S=fetch/canary", "--", "sh", "-c", 'test "$S" = "$EXPECTED"']
    env["EXPECTED"] = CANARY
    if how == "--profile":
        res = run_xtok(["run", "--profile", "ci", *command], env)
    else:
        res = run_xtok(["run", *command], {**env, how: "ci"})
    assert res.code == 0, res.err
    missing = run_xtok(["run", "--profile", "nosuch", *command], env)
    assert missing.code == 208, missing.err
    assert "nosuch" in missing.err


def test_https_endpoint_is_verified_against_aws_ca_bundle(tmp_path: Path) -> None:
    """Over TLS the fetch trusts what botocore trusts: AWS_CA_BUNDLE, else the public CAs, so
    a self-signed endpoint works only when its certificate is the bundle."""
    cert, key = self_signed_certificate(tmp_path)
    proc, exports = spawn_dev("--tls-cert", str(cert), "--tls-key", str(key))
    try:
        env = {**aws_env(exports["AWS_ENDPOINT_URL"]), **exports, "AWS_CA_BUNDLE": str(cert)}
        assert run_xtok(["secret", "put", "tls/canary"], env, stdin=CANARY).code == 0
        env["XTOK_TOKEN"] = run_xtok(["token"], env).out.strip()
        command = ["run", "--secret", "S=tls/canary", "--", "sh", "-c", 'test "$S" = "$WANT"']
        env["WANT"] = CANARY
        assert run_xtok(command, env).code == 0
        untrusted = run_xtok(command, {k: v for k, v in env.items() if k != "AWS_CA_BUNDLE"})
        assert untrusted.code == 206, untrusted.err  # ExitCode.NETWORK: refused, not read
        assert "SSLCertVerificationError" in untrusted.err
        assert "AWS_CA_BUNDLE" in untrusted.err
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize(
    "url",
    ["127.0.0.1:4566", "ftp://h/", "http://", "http://h:0/", "http://é.example/", "http://h/a b"],
)
def test_an_endpoint_url_that_is_not_http_is_a_usage_error(url: str) -> None:
    with pytest.raises(UsageError):
        fetch.fetch([parse_ref("S=s")], creds(), AwsConfig(endpoint_url=url))


@pytest.mark.parametrize("region", ["us-east-1\r\nX-Evil: 1", "a.b", ""])
def test_a_forged_region_in_the_token_is_refused(region: str) -> None:
    forged = Credentials("ASIAEXAMPLEEXAMPLE", Secret("s"), Secret("t"), region=region or "-")
    with pytest.raises(ConfigError, match="invalid AWS region"):
        fetch.fetch([parse_ref("S=s")], forged, AwsConfig(endpoint_url="http://127.0.0.1:9/"))


def test_credentials_with_characters_aws_never_issues_are_a_token_error() -> None:
    forged = Credentials("ASIAEXAMPLEEXAMPLE", Secret("s"), Secret("t\r\nX: y"), region="us-east-1")
    with pytest.raises(TokenError, match="never issues"):
        fetch.fetch([parse_ref("S=s")], forged, AwsConfig(endpoint_url="http://127.0.0.1:9/"))


@pytest.mark.parametrize("config", ["", "[default]\nregion = us-east-1\noutput = json\n"])
def test_the_usual_fetch_imports_no_botocore(
    token_env: dict[str, str], xtok_server: DevServer, tmp_path: Path, config: str
) -> None:
    """The fast path's reason to exist: `xtok run` with a plain environment, or the config file
    `aws configure` writes, never loads botocore (its import costs more than the request)."""
    (tmp_path / "config").write_text(config)
    env = {k: v for k, v in token_env.items() if not k.lower().endswith("_proxy")}
    env.update(AWS_ENDPOINT_URL=xtok_server.url, AWS_CONFIG_FILE=str(tmp_path / "config"))
    code = (
        "import sys; from xtok.cli import main; "
        "status = main(['run', '--secret', 'S=fetch/canary', '--', 'true']); "
        "print(status, sorted(m for m in sys.modules if m.split('.')[0] in "
        "('botocore', 'boto3', 'urllib3', 'http')), file=sys.stderr)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.stderr.strip() == "0 []", proc.stderr
