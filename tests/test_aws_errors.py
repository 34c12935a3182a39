"""AWS error answers become one-line messages with distinct exit codes.

moto never refuses a token, so a small loopback HTTP server stands in for AWS here: it answers
every request with one AWS-shaped error (STS and IAM speak XML, Secrets Manager JSON with
`__type`), and the real botocore inside the `xtok` subprocess parses it as it would AWS's.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from conftest import ACCOUNT, CANARY, aws_env, make_peer, run_xtok

from xtok.sensitive import Secret
from xtok.tokens import token as tokens

CALLER = f"""<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
<GetCallerIdentityResult><Arn>arn:aws:iam::{ACCOUNT}:user/alice@example</Arn>
<UserId>AIDAEXAMPLE</UserId><Account>{ACCOUNT}</Account></GetCallerIdentityResult>
<ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></GetCallerIdentityResponse>"""


class AwsErrorServer(ThreadingHTTPServer):
    """Answers GetCallerIdentity as alice, everything else with the configured error, and
    keeps the form of the last query-protocol request."""

    status = 400
    code = ""
    message = ""  # AWS's words; "stand-in CODE" when empty
    last_authorization = ""
    last_form: dict[str, list[str]] = {}  # noqa: RUF012 - replaced, never mutated

    def answer(self, target: str) -> tuple[bytes, str]:
        if target == "secretsmanager":
            text = self.message or f"stand-in {self.code}"
            body = {"__type": self.code, "message": text} if self.code else {}
            return json.dumps(body).encode(), "application/x-amz-json-1.1"
        if not self.code:
            return b"", "text/plain"
        xml = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{self.code}</Code>"
            f"<Message>{self.message or 'stand-in ' + self.code}</Message></Error>"
            "<RequestId>1</RequestId></ErrorResponse>"
        )
        return xml.encode(), "text/xml"


class Handler(BaseHTTPRequestHandler):
    server: AwsErrorServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.last_authorization = self.headers.get("Authorization") or ""
        target = (
            "secretsmanager"
            if "secretsmanager" in (self.headers.get("X-Amz-Target") or "")
            else "query"
        )
        status = self.server.status
        if target == "query":
            form = parse_qs(body.decode())
            if form.get("Action") == ["GetCallerIdentity"]:
                status, answer = 200, (CALLER.encode(), "text/xml")
            else:
                self.server.last_form = form
        if status != 200:
            answer = self.server.answer(target)
        body, ctype = answer
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[AwsErrorServer]:
    server = AwsErrorServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture
def stand_in(server: AwsErrorServer) -> AwsErrorServer:
    server.message = ""
    return server


def fresh_token() -> str:
    creds = tokens.Credentials(
        "ASIAIOSFODNN7EXAMPLE",
        Secret("k" * 40),
        Secret("t" * 200),
        expiration=datetime.now(UTC) + timedelta(minutes=15),
    )
    return tokens.encode(creds)


@pytest.mark.parametrize(
    ("code", "status", "exit_code", "text"),
    [
        ("ExpiredTokenException", 400, 202, "the credentials have expired (ExpiredTokenException)"),
        ("AccessDeniedException", 400, 204, "access denied (AccessDeniedException)"),
        ("", 403, 204, "access denied (HTTP 403)"),
        ("ResourceNotFoundException", 400, 205, "not found (ResourceNotFoundException)"),
        ("UnrecognizedClientException", 400, 203, "unknown access key"),
        ("InvalidSignatureException", 400, 203, "bad request signature"),
        ("ThrottlingException", 400, 207, "ThrottlingException: stand-in"),
    ],
)
def test_fetch_errors(
    stand_in: AwsErrorServer, code: str, status: int, exit_code: int, text: str
) -> None:
    stand_in.code, stand_in.status = code, status
    env = aws_env(f"http://127.0.0.1:{stand_in.server_address[1]}")
    res = run_xtok(
        ["run", "--secret", "DB=prod/db", "--", "echo", "ran"], {**env, "XTOK_TOKEN": fresh_token()}
    )
    assert res.code == exit_code, res.err
    assert "cannot read secret 'prod/db' (for DB): " + text in res.err
    assert "ran" not in res.out
    assert len(res.err.strip().splitlines()) <= 2


@pytest.mark.parametrize(
    ("code", "exit_code", "text"),
    [
        ("ExpiredToken", 202, "have expired (ExpiredToken)"),
        ("AccessDenied", 204, "access denied (AccessDenied)"),
        ("InvalidClientTokenId", 203, "unknown access key"),
        ("SignatureDoesNotMatch", 203, "bad request signature"),
        ("RequestExpired", 203, "15-minute window"),
        ("PackedPolicyTooLarge", 207, "session policy too large"),
    ],
)
def test_sts_errors(stand_in: AwsErrorServer, code: str, exit_code: int, text: str) -> None:
    stand_in.code, stand_in.status = code, 403 if code == "AccessDenied" else 400
    env = aws_env(f"http://127.0.0.1:{stand_in.server_address[1]}")
    res = run_xtok(["token", "--role", f"arn:aws:iam::{ACCOUNT}:role/x", "--secret", "a/b"], env)
    assert res.code == exit_code, res.err
    assert text in res.err and res.out == ""


def test_secret_put_error_does_not_echo_the_value(stand_in: AwsErrorServer) -> None:
    stand_in.code, stand_in.status = "ValidationException", 400
    env = aws_env(f"http://127.0.0.1:{stand_in.server_address[1]}")
    res = run_xtok(["secret", "put", "prod/x"], env, stdin=CANARY)
    assert res.code == 207 and "cannot store secret 'prod/x': ValidationException" in res.err


def test_assume_role_request_carries_scope_identity_label_and_mfa(
    stand_in: AwsErrorServer, tmp_path: Path
) -> None:
    """What `xtok token --role` asks of STS, read off the wire (the stand-in refuses it)."""
    stand_in.code, stand_in.status = "AccessDenied", 403
    config = tmp_path / "config"
    config.write_text(f"[default]\nmfa_serial = arn:aws:iam::{ACCOUNT}:mfa/alice\n")
    env = {
        **aws_env(f"http://127.0.0.1:{stand_in.server_address[1]}"),
        "AWS_CONFIG_FILE": str(config),
    }
    role = f"arn:aws:iam::{ACCOUNT}:role/xtok-ci"
    args = ["token", "--role", role, "--secret", "prod/db", "--for", "deploy #42 (main)"]
    no_code = run_xtok(args, env)
    assert (
        no_code.code == 200
        and f"MFA code is needed for arn:aws:iam::{ACCOUNT}:mfa/alice" in no_code.err
    )
    res = run_xtok([*args, "--mfa-code", "123456", "--duration", "20m"], env)
    assert res.code == 204
    form = {k: v[0] for k, v in stand_in.last_form.items()}
    assert form["Action"] == "AssumeRole" and form["RoleArn"] == role
    assert form["RoleSessionName"] == "deploy-42-main"
    assert form["SourceIdentity"] == "alice@example"
    assert form["DurationSeconds"] == "1200"
    assert (form["SerialNumber"], form["TokenCode"]) == (
        f"arn:aws:iam::{ACCOUNT}:mfa/alice",
        "123456",
    )
    assert (form["Tags.member.1.Key"], form["Tags.member.1.Value"]) == (
        "xtok:for",
        "deploy 42 main",
    )
    policy = json.loads(form["Policy"])
    assert policy["Statement"][0]["Resource"] == "arn:aws:secretsmanager:*:*:secret:prod/db-??????"


def test_fetch_network_failure_and_missing_region() -> None:
    env = {**aws_env("http://127.0.0.1:9"), "XTOK_TOKEN": fresh_token()}  # nothing listens
    res = run_xtok(["run", "--secret", "DB=prod/db", "--", "echo", "ran"], env)
    assert res.code == 206 and "cannot read secret 'prod/db' (for DB)" in res.err
    no_region = {k: v for k, v in env.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")}
    res = run_xtok(["run", "--secret", "DB=prod/db", "--", "echo", "ran"], no_region)
    assert res.code == 208 and "no AWS region" in res.err and "ran" not in res.out


def test_fetch_takes_the_region_from_the_aws_config_file(tmp_path: Path) -> None:
    """With no --region and no AWS_REGION, the profile's region still reaches the request (the
    stand-in refuses it, but its credential scope names the region)."""
    config = tmp_path / "config"
    config.write_text("[default]\nregion = eu-north-1\n")
    server = AwsErrorServer(("127.0.0.1", 0), Handler)
    server.code, server.status = "AccessDeniedException", 400
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = {
            k: v
            for k, v in aws_env(f"http://127.0.0.1:{server.server_address[1]}").items()
            if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")
        }
        env.update(AWS_CONFIG_FILE=str(config), XTOK_TOKEN=fresh_token())
        res = run_xtok(["run", "--secret", "DB=prod/db", "--", "true"], env)
        assert res.code == 204, res.err
        assert "/eu-north-1/secretsmanager/aws4_request" in server.last_authorization
    finally:
        server.shutdown()


_MFA = f"arn:aws:iam::{ACCOUNT}:mfa/alice"
_ROLE = f"arn:aws:iam::{ACCOUNT}:role/xtok-ci"


@pytest.mark.parametrize(
    ("message", "tip"),
    [
        (
            "MultiFactorAuthentication failed with invalid MFA one time pass code.",
            "the MFA code was wrong or already used",
        ),
        (
            "MultiFactorAuthentication failed, unable to validate MFA code. Please verify your "
            "MFA serial number is valid and associated with this user.",
            "check the MFA device",
        ),
        (
            f"User: arn:aws:iam::{ACCOUNT}:user/alice is not authorized to perform: "
            f"sts:AssumeRole on resource: {_ROLE}",
            "check that the role's trust policy names you, and the MFA code",
        ),
    ],
)
def test_approver_denials_keep_aws_reason(stand_in: AwsErrorServer, message: str, tip: str) -> None:
    """What AWS said reaches the approver, with a tip for that case; none speaks of a token's
    scope, since no token exists yet."""
    stand_in.code, stand_in.status, stand_in.message = "AccessDenied", 403, message
    env = aws_env(f"http://127.0.0.1:{stand_in.server_address[1]}")
    args = ["token", "--role", _ROLE, "--secret", "a/b", "--mfa-serial", _MFA]
    res = run_xtok([*args, "--mfa-code", "123456"], env)
    assert res.code == 204, res.err
    assert message in res.err and f"tip: {tip}" in res.err
    assert "scope" not in res.err and len(res.err.strip().splitlines()) == 2


def test_missing_permission_names_the_action(stand_in: AwsErrorServer) -> None:
    message = (
        f"User: arn:aws:iam::{ACCOUNT}:user/alice is not authorized to perform: "
        "secretsmanager:CreateSecret on resource: prod/x because no identity-based policy "
        "allows the secretsmanager:CreateSecret action"
    )
    stand_in.code, stand_in.status, stand_in.message = "AccessDeniedException", 400, message
    env = aws_env(f"http://127.0.0.1:{stand_in.server_address[1]}")
    res = run_xtok(["secret", "put", "prod/x"], env, stdin=CANARY)
    assert res.code == 204 and message in res.err
    assert "tip: your identity may not call secretsmanager:CreateSecret" in res.err
    stand_in.message = message.replace("CreateSecret", "GetSecretValue")
    res = run_xtok(
        ["run", "--secret", "DB=prod/db", "--", "true"], {**env, "XTOK_TOKEN": fresh_token()}
    )
    assert res.code == 204 and "secretsmanager:GetSecretValue on resource" in res.err
    assert "token's scope" in res.err  # with a token, its narrow scope is the likely cause


def test_aws_message_cannot_paint_the_terminal(stand_in: AwsErrorServer) -> None:
    stand_in.code, stand_in.status = "ThrottlingException", 400
    stand_in.message = "slow down\x1b[2K\rall good\u202e"
    env = aws_env(f"http://127.0.0.1:{stand_in.server_address[1]}")
    res = run_xtok(
        ["run", "--secret", "DB=prod/db", "--", "true"], {**env, "XTOK_TOKEN": fresh_token()}
    )
    assert res.code == 207 and "slow down\\x1b[2K" in res.err
    assert "\x1b" not in res.err and "\u202e" not in res.err


def test_aws_reasons_from_the_real_local_endpoint(
    request: pytest.FixtureRequest, unique: str
) -> None:
    """The same three denials, from `xtok server` itself: a wrong MFA code, a reused one, a
    caller the role's trust policy does not name, and a missing permission."""
    import base64
    import time

    from xtok.aws.policy import role_trust_policy
    from xtok.server.totp import code_at

    peer = make_peer(request, "xtok-server")
    iam = peer.client("iam")
    keys = {}
    for who in ("alice", "mallory"):
        name = f"{who}-{unique}"
        iam.create_user(UserName=name)
        key = iam.create_access_key(UserName=name)["AccessKey"]
        keys[who] = aws_env(peer.url, key["AccessKeyId"], key["SecretAccessKey"])
    trust = role_trust_policy([f"arn:aws:iam::{ACCOUNT}:user/alice-{unique}"], mfa_max_age=900)
    role = iam.create_role(RoleName=f"r-{unique}", AssumeRolePolicyDocument=json.dumps(trust))
    device = iam.create_virtual_mfa_device(VirtualMFADeviceName=f"alice-{unique}")
    serial = device["VirtualMFADevice"]["SerialNumber"]
    seed = base64.b32decode(device["VirtualMFADevice"]["Base32StringSeed"])
    now = time.time()
    iam.enable_mfa_device(
        UserName=f"alice-{unique}",
        SerialNumber=serial,
        AuthenticationCode1=code_at(seed, now - 30),
        AuthenticationCode2=code_at(seed, now),
    )
    args = ["token", "--role", role["Role"]["Arn"], "--secret", "a/b", "--mfa-serial", serial]
    wrong = "000000" if code_at(seed, time.time()) != "000000" else "111111"
    res = run_xtok([*args, "--mfa-code", wrong], keys["alice"])
    assert res.code == 204 and "invalid MFA one time pass code" in res.err, res.err
    assert "tip: the MFA code was wrong or already used" in res.err
    fresh = code_at(seed, time.time() + 30)
    assert run_xtok([*args, "--mfa-code", fresh], keys["alice"]).code == 0
    reused = run_xtok([*args, "--mfa-code", fresh], keys["alice"])
    assert reused.code == 204 and "tip: the MFA code was wrong or already used" in reused.err
    untrusted = run_xtok(args[:5], keys["mallory"])  # mallory has no MFA device
    assert untrusted.code == 204 and "sts:AssumeRole" in untrusted.err, untrusted.err
    assert "tip: the role's trust policy must name you" in untrusted.err
    denied = run_xtok(["secret", "put", f"x-{unique}"], keys["mallory"], stdin=CANARY)
    assert denied.code == 204 and "secretsmanager:CreateSecret" in denied.err, denied.err
    assert "tip: your identity may not call secretsmanager:CreateSecret" in denied.err
