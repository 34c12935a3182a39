"""The relay end to end: real `xtok relay` (and `xtok server --dev`'s /relay), real approvers
logging in with a signed GetCallerIdentity checked by the real local STS, runs proven by a
loopback OIDC issuer stand-in (a true boundary: GitHub's and GitLab's issuers), and every way
the relay or the approver's xtok must refuse."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import (
    ACCOUNT,
    CANARY,
    DevServer,
    Result,
    aws_env,
    run_xtok,
    self_signed_certificate,
)
from relay_support import ADMIN_ARN, RUN_KEY, RelayProc, start_relay

from xtok.approval import oidc, relay_client, seal
from xtok.approval.ci import RunIdentity
from xtok.approval.oidc_standin import Issuer
from xtok.aws.session import AwsConfig
from xtok.errors import AccessDenied, CredentialsRejected, Error, NotFound
from xtok.refs import parse_ref
from xtok.server.bootstrap import clean_environment, spawn_dev

GITHUB_ENV = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_REPOSITORY": "acme/app",
    "GITHUB_WORKFLOW": "deploy",
    "GITHUB_JOB": "prod",
    "GITHUB_RUN_ID": "77",
    "GITHUB_RUN_NUMBER": "12",
    "GITHUB_SHA": "0badc0ffee",
}


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    with Issuer().running() as running:
        yield running


@pytest.fixture(scope="module")
def relay(
    xtok_server: DevServer, issuer: Issuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RelayProc]:
    running = start_relay(
        tmp_path_factory.mktemp("relay"),
        xtok_server.url,
        issuer.url,
        extra=("--posts-per-minute", "1000", "--logins-per-minute", "1000"),
    )
    yield running
    running.proc.terminate()
    running.proc.wait(timeout=30)


@pytest.fixture
def approver_env(xtok_server: DevServer, issuer: Issuer, tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "approver.toml"
    config.write_text(f'[oidc]\nissuers = ["{issuer.url}"]\n')
    return {
        **aws_env(xtok_server.url, xtok_server.access_key_id, xtok_server.secret_access_key),
        "XTOK_APPROVER_CONFIG": str(config),
        "XDG_STATE_HOME": str(tmp_path / "approver-state"),
    }


@pytest.fixture
def run_env(xtok_server: DevServer, tmp_path: Path) -> dict[str, str]:
    """A CI job's environment: no AWS credentials at all, only where the endpoint is."""
    env = clean_environment()
    env.update(
        AWS_ENDPOINT_URL=xtok_server.url,
        AWS_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        XTOK_STATE_DIR=str(tmp_path / "run-state"),
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def role(approver_env: dict[str, str], unique: str) -> tuple[str, str]:
    secret = f"relay-{unique}/db"
    assert run_xtok(["secret", "put", secret], approver_env, stdin=CANARY).code == 0
    res = run_xtok(
        [
            "setup",
            "aws",
            "--role-name",
            f"relay-{unique}",
            "--trust",
            ADMIN_ARN,
            "--unsafe-no-mfa",
            "--prefix",
            f"relay-{unique}/",
        ],
        approver_env,
    )
    assert res.code == 0, res.err
    return f"arn:aws:iam::{ACCOUNT}:role/relay-{unique}", secret


class Waiting:
    """A run side command in the background, waiting on the relay."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "xtok", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.err = ""
        assert self.proc.stderr is not None
        while "approver: xtok approve" not in self.err:
            line = self.proc.stderr.readline()
            if not line:
                raise AssertionError(f"the run did not post: {self.err}")
            self.err += line
        found = re.search(r"--pick ([0-9a-f]{16})", self.err)
        assert found
        self.id = found.group(1)

    def finish(self) -> Result:
        out, err = self.proc.communicate(timeout=60)
        result = Result(self.proc.returncode, out, self.err + err)
        assert CANARY not in result.both and "Traceback" not in result.err
        return result


def test_github_proven_request_approved_through_the_relay(
    relay: RelayProc,
    issuer: Issuer,
    role: tuple[str, str],
    run_env: dict[str, str],
    approver_env: dict[str, str],
) -> None:
    role_arn, secret = role
    env = {**run_env, **GITHUB_ENV, **issuer.github_env()}
    waiting = Waiting(
        ["request", "--secret", f"DB={secret}", "--role", role_arn, "--relay", relay.url, "--wait"],
        env,
    )
    assert "proven by the CI's OIDC token" in waiting.err
    listing = run_xtok(["approve", "--relay", relay.url], approver_env)
    assert listing.code == 0 and waiting.id in listing.err and "verified acme/app" in listing.err
    approved = run_xtok(
        ["approve", "--relay", relay.url, "--pick", waiting.id, "--yes"], approver_env
    )
    assert approved.code == 0, approved.err
    assert f"VERIFIED by {issuer.url} (bound to this request's key)" in approved.err
    assert "claim:    repository = acme/app" in approved.err
    assert "UNPROVEN" not in approved.err
    done = waiting.finish()
    assert done.code == 0, done.err
    sealed, ticket = done.out.split()  # the sealed token, then the run's ticket
    assert sealed.startswith("xtoks1.") and ticket.startswith("xtokt1.")
    ran = run_xtok(
        ["run", "--sealed", "--token-env", "SEALED", "--", "sh", "-c", 'echo "db=$DB"'],
        {**run_env, "SEALED": sealed, "XTOK_TICKET": ticket},
    )
    assert ran.code == 0 and "db=***" in ran.out, ran.err


def test_denial_reaches_the_run_with_the_reason(
    relay: RelayProc, role: tuple[str, str], run_env: dict[str, str], approver_env: dict[str, str]
) -> None:
    role_arn, secret = role
    waiting = Waiting(
        ["request", "--secret", f"DB={secret}", "--role", role_arn, "--relay", relay.url, "--wait"],
        {**run_env, "XTOK_RELAY_KEY": RUN_KEY},
    )
    assert "UNPROVEN" in waiting.err
    denied = run_xtok(
        ["approve", "--relay", relay.url, "--pick", waiting.id, "--deny", "not on a Friday"],
        approver_env,
    )
    assert denied.code == 0, denied.err
    done = waiting.finish()
    assert done.code == int(AccessDenied.exit_code)
    assert f"denied by {ADMIN_ARN}: not on a Friday" in done.err
    assert done.out == ""


def test_one_process_gitlab_style_run_and_a_replay_refused(
    relay: RelayProc,
    issuer: Issuer,
    role: tuple[str, str],
    run_env: dict[str, str],
    approver_env: dict[str, str],
) -> None:
    """GitLab's `id_tokens` give a fixed audience: the token proves the first key it is used
    with; the same job token posted again with another key is refused by the relay."""
    role_arn, secret = role
    token = issuer.token("xtok", project_path="acme/app", sub="project_path:acme/app")
    env = {**run_env, "GITLAB_CI": "true", "CI_PROJECT_PATH": "acme/app", oidc.TOKEN_ENV: token}
    waiting = Waiting(
        [
            "run",
            "--relay",
            relay.url,
            "--secret",
            f"DB={secret}",
            "--role",
            role_arn,
            "--",
            "sh",
            "-c",
            'echo "db=$DB oidc=${XTOK_OIDC_TOKEN:-dropped}"',
        ],
        env,
    )
    assert not list(Path(run_env["XTOK_STATE_DIR"]).glob("*.json"))  # its key is in memory
    replay = run_xtok(["request", "--secret", f"DB={secret}", "--relay", relay.url, "--wait"], env)
    assert replay.code == int(AccessDenied.exit_code)
    assert "already used to prove another request" in replay.err
    approved = run_xtok(
        ["approve", "--relay", relay.url, "--pick", waiting.id, "--yes"], approver_env
    )
    assert approved.code == 0, approved.err
    assert "fixed audience: first use" in approved.err
    done = waiting.finish()
    assert done.code == 0, done.err
    assert "db=*** oidc=dropped" in done.out
    # The one process kept its key in memory; the refused `xtok request` removed its own.
    assert not list(Path(run_env["XTOK_STATE_DIR"]).glob("*.json"))


def test_approver_rules_and_required_proof_refuse_before_minting(
    relay: RelayProc,
    issuer: Issuer,
    role: tuple[str, str],
    run_env: dict[str, str],
    approver_env: dict[str, str],
) -> None:
    role_arn, secret = role
    config = Path(approver_env["XTOK_APPROVER_CONFIG"])
    config.write_text(
        f'[oidc]\nissuers = ["{issuer.url}"]\nrequire_proof = true\n'
        '[[oidc.require]]\nref = "refs/heads/main"\n'
    )
    args = ["request", "--secret", f"DB={secret}", "--role", role_arn, "--relay", relay.url]
    unproven = Waiting([*args, "--wait"], {**run_env, "XTOK_RELAY_KEY": RUN_KEY})
    res = run_xtok(["approve", "--relay", relay.url, "--pick", unproven.id, "--yes"], approver_env)
    assert res.code == int(AccessDenied.exit_code) and "requires one" in res.err
    issuer.claims["ref"] = "refs/heads/feature"
    try:
        dev = Waiting([*args, "--wait"], {**run_env, **GITHUB_ENV, **issuer.github_env()})
    finally:
        issuer.claims["ref"] = "refs/heads/main"
    res = run_xtok(["approve", "--relay", relay.url, "--pick", dev.id, "--yes"], approver_env)
    assert res.code == int(AccessDenied.exit_code)
    assert "ref is 'refs/heads/feature', required 'refs/heads/main'" in res.err
    assert "sealed token posted" not in res.err
    for waiting in (unproven, dev):
        waiting.proc.terminate()
        waiting.proc.communicate(timeout=30)


# -- the relay's own refusals, through its HTTP API -------------------------------------------


def new_code(duration: int = 900) -> tuple[seal.RequestCode, object]:
    return seal.new_request_in_memory(RunIdentity(), (parse_ref("DB=x"),), duration, None)


@pytest.fixture
def admin(xtok_server: DevServer, monkeypatch: pytest.MonkeyPatch) -> AwsConfig:
    for key, value in aws_env(
        xtok_server.url, xtok_server.access_key_id, xtok_server.secret_access_key
    ).items():
        monkeypatch.setenv(key, value)
    return AwsConfig()


def refused(call: Callable[[], object], cls: type[Error], text: str) -> None:
    with pytest.raises(cls) as info:
        call()
    assert text in info.value.message, info.value.message


def test_posting_needs_a_proof_or_a_relay_key(relay: RelayProc) -> None:
    client = relay_client.Relay(relay.url)
    code, _ = new_code()
    refused(lambda: client.post(code.encode(), None, None), CredentialsRejected, "OIDC token")
    refused(lambda: client.post(code.encode(), None, "wrong"), CredentialsRejected, "OIDC token")
    assert client.post(code.encode(), None, RUN_KEY)["id"] == code.id
    refused(lambda: client.post(code.encode(), None, RUN_KEY), relay_client.RelayError, "exists")


def test_relay_refuses_a_proof_bound_to_another_key(relay: RelayProc, issuer: Issuer) -> None:
    client = relay_client.Relay(relay.url)
    code, _ = new_code()
    other, _ = new_code()
    token = issuer.token(oidc.binding_audience(other))
    refused(lambda: client.post(code.encode(), token, None), CredentialsRejected, "another")


def test_approver_login_is_bound_to_the_relay_and_the_allowed_arns(
    relay: RelayProc, admin: AwsConfig, xtok_server: DevServer, tmp_path: Path
) -> None:
    client = relay_client.Relay(relay.url)
    assert client.login(admin) == ADMIN_ARN
    proof = relay_client.caller_proof(admin, "http://127.0.0.1:1/other-relay")
    refused(lambda: client.call("POST", "/v1/session", proof), CredentialsRejected, "another relay")
    tampered = relay_client.caller_proof(admin, relay.url)
    tampered["headers"]["X-Amz-Date"] = "20200101T000000Z"
    refused(lambda: client.call("POST", "/v1/session", tampered), CredentialsRejected, "STS")
    injected = relay_client.caller_proof(admin, relay.url)
    injected["headers"]["X-Amz-Date"] += "\r\nX-Evil: 1"
    refused(lambda: client.call("POST", "/v1/session", injected), Error, "malformed")
    strict = start_relay(
        tmp_path / "strict", xtok_server.url, "http://127.0.0.1:1", "arn:aws:iam::*:user/bob"
    )
    try:
        refused(
            lambda: relay_client.Relay(strict.url).login(admin), AccessDenied, "not an approver"
        )
    finally:
        strict.proc.terminate()
        strict.proc.wait(timeout=30)


def test_answers_are_checked_and_only_the_run_reads_them(
    relay: RelayProc, admin: AwsConfig
) -> None:
    run = relay_client.Relay(relay.url)
    code, _ = new_code()
    posted = run.post(code.encode(), None, RUN_KEY)
    approver = relay_client.Relay(relay.url)
    approver.login(admin)
    other, _ = new_code()
    from xtok.tokens import token as tokens

    creds = tokens.parse(
        "AQoDYXdzEJr:AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    )
    wrong = seal.seal(other, creds).encode()
    refused(lambda: approver.approve(code.id, wrong), relay_client.RelayError, "another request")
    refused(lambda: approver.deny(code.id, "bad\x1b[31m"), relay_client.RelayError, "one line")
    refused(lambda: run.wait(code.id, "not-the-secret", 0), NotFound, "no such request")
    approver.deny(code.id, "no")
    refused(lambda: approver.deny(code.id, "again"), relay_client.RelayError, "no longer pending")
    assert run.wait(code.id, posted["wait_secret"], 0)["reason"] == "no"


def test_unanswered_request_expires_and_the_wait_ends(
    xtok_server: DevServer, issuer: Issuer, admin: AwsConfig, tmp_path: Path
) -> None:
    """A request expires after its lifetime or the relay's --max-wait, the shorter."""
    short = start_relay(tmp_path / "short", xtok_server.url, issuer.url, extra=("--max-wait", "1s"))
    try:
        run = relay_client.Relay(short.url)
        code, _ = new_code()
        posted = run.post(code.encode(), None, RUN_KEY)
        started = time.monotonic()
        assert run.wait(code.id, posted["wait_secret"], 10)["state"] == "expired"
        assert time.monotonic() - started < 9  # the long poll ended with the expiry
        approver = relay_client.Relay(short.url)
        approver.login(admin)
        refused(lambda: approver.deny(code.id, "late"), relay_client.RelayError, "expired")
    finally:
        short.proc.terminate()
        short.proc.wait(timeout=30)


def test_picking_an_answered_request_is_refused(
    relay: RelayProc, admin: AwsConfig, approver_env: dict[str, str]
) -> None:
    code, _ = new_code()
    relay_client.Relay(relay.url).post(code.encode(), None, RUN_KEY)
    approver = relay_client.Relay(relay.url)
    approver.login(admin)
    approver.deny(code.id, "no")
    res = run_xtok(["approve", "--relay", relay.url, "--pick", code.id, "--yes"], approver_env)
    assert res.code == 200 and f"request {code.id} is denied" in res.err


def test_rate_limit_per_poster(xtok_server: DevServer, issuer: Issuer, tmp_path: Path) -> None:
    limited = start_relay(tmp_path / "limited", xtok_server.url, issuer.url)
    try:
        run = relay_client.Relay(limited.url)
        for _ in range(10):
            run.post(new_code()[0].encode(), None, RUN_KEY)
        with pytest.raises(relay_client.RelayError) as info:
            run.post(new_code()[0].encode(), None, RUN_KEY)
        assert "too many" in info.value.message and "retry in" in (info.value.tip or "")
    finally:
        limited.proc.terminate()
        limited.proc.wait(timeout=30)


def test_dev_server_serves_the_relay(xtok_server: DevServer, admin: AwsConfig) -> None:
    url = xtok_server.url + "/relay"
    run = relay_client.Relay(url)
    code, _ = new_code()
    posted = run.post(code.encode(), None, None)  # dev mode: open posting, unproven
    approver = relay_client.Relay(url)
    assert approver.login(admin) == ADMIN_ARN
    assert [e["id"] for e in approver.pending() if e["id"] == code.id] == [code.id]
    approver.deny(code.id, "dev")
    assert run.wait(code.id, posted["wait_secret"], 5)["state"] == "denied"


def test_dev_server_serves_the_relay_from_every_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """With --workers each worker serves /relay over one store: a request posted through one is
    seen, answered and waited for through whichever worker each new connection reaches."""
    proc, exports = spawn_dev("--workers", "2")
    try:
        for key, value in aws_env(
            exports["AWS_ENDPOINT_URL"],
            exports["AWS_ACCESS_KEY_ID"],
            exports["AWS_SECRET_ACCESS_KEY"],
        ).items():
            monkeypatch.setenv(key, value)
        url = exports["AWS_ENDPOINT_URL"] + "/relay"
        run = relay_client.Relay(url)
        code, _ = new_code()
        posted = run.post(code.encode(), None, None)
        approver = relay_client.Relay(url)
        assert approver.login(AwsConfig()) == ADMIN_ARN
        for _ in range(6):  # each call is a new connection, to either worker
            assert code.id in [e["id"] for e in approver.pending()]
        approver.deny(code.id, "dev")
        assert run.wait(code.id, posted["wait_secret"], 5)["state"] == "denied"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err


def test_events_long_poll_and_purge_after_keep(
    xtok_server: DevServer, issuer: Issuer, admin: AwsConfig, tmp_path: Path
) -> None:
    """An inbox follows changes without reloading; answered requests are kept for --keep, then
    purged (and say so in the events)."""
    short = start_relay(tmp_path / "keep", xtok_server.url, issuer.url, extra=("--keep", "1s"))
    try:
        approver = relay_client.Relay(short.url)
        approver.login(admin)
        start = approver.call("GET", "/v1/events?after=0")
        assert start == {"events": [], "next": 0}
        code, _ = new_code()

        def post_soon() -> None:
            time.sleep(0.5)
            relay_client.Relay(short.url).post(code.encode(), None, RUN_KEY)

        poster = threading.Thread(target=post_soon)
        poster.start()
        woke = approver.call("GET", "/v1/events?after=0&wait=20")
        poster.join()
        assert [(e["id"], e["state"]) for e in woke["events"]] == [(code.id, "pending")]
        approver.deny(code.id, "no")
        answered = approver.call("GET", f"/v1/events?after={woke['next']}")
        assert [e["state"] for e in answered["events"]] == ["denied"]
        listed = approver.call("GET", "/v1/requests?state=all")["requests"]
        assert [(r["id"], r["state"], r["reason"]) for r in listed] == [(code.id, "denied", "no")]
        assert approver.pending() == []
        time.sleep(2.1)
        refused(lambda: approver.get(code.id), NotFound, "no such request")
        later = approver.call("GET", f"/v1/events?after={answered['next']}")
        assert [e["state"] for e in later["events"]] == ["purged"]
    finally:
        short.proc.terminate()
        short.proc.wait(timeout=30)


def test_relay_over_tls(
    xtok_server: DevServer,
    issuer: Issuer,
    role: tuple[str, str],
    run_env: dict[str, str],
    approver_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """--tls-cert/--tls-key serve HTTPS; clients verify the certificate (here a self-signed one
    they are told to trust) and fail closed without it."""
    cert, key = self_signed_certificate(tmp_path)
    tls = start_relay(
        tmp_path / "tls",
        xtok_server.url,
        issuer.url,
        extra=("--tls-cert", str(cert), "--tls-key", str(key)),
    )
    try:
        assert tls.url.startswith("https://127.0.0.1:")
        role_arn, secret = role
        args = ["request", "--secret", f"DB={secret}", "--role", role_arn]
        args += ["--relay", tls.url, "--wait"]
        untrusted = run_xtok(args, {**run_env, "XTOK_RELAY_KEY": RUN_KEY})
        assert untrusted.code == 206 and "cannot reach the relay" in untrusted.err
        trusting = {"SSL_CERT_FILE": str(cert)}
        waiting = Waiting(args, {**run_env, "XTOK_RELAY_KEY": RUN_KEY, **trusting})
        denied = run_xtok(
            ["approve", "--relay", tls.url, "--pick", waiting.id, "--deny", "over TLS"],
            {**approver_env, **trusting},
        )
        assert denied.code == 0, denied.err
        assert "denied by" in waiting.finish().err
    finally:
        tls.proc.terminate()
        tls.proc.wait(timeout=30)


def test_unproven_request_says_so_on_the_approve_screen(
    role: tuple[str, str], run_env: dict[str, str], approver_env: dict[str, str]
) -> None:
    role_arn, secret = role
    code = run_xtok(["request", "--secret", f"DB={secret}", "--role", role_arn], run_env)
    assert code.code == 0, code.err
    res = run_xtok(["approve", code.out.splitlines()[0], "--yes"], approver_env)  # line 1
    assert res.code == 0, res.err
    assert "identity: UNPROVEN: CI, job, build and commit above are only claimed" in res.err
    assert "VERIFIED" not in res.err


def test_interactive_pick_decline_and_deny_on_a_terminal(
    relay: RelayProc, role: tuple[str, str], run_env: dict[str, str], approver_env: dict[str, str]
) -> None:
    """On a terminal: the inbox is listed, a number picks, "no" offers a denial with a reason."""
    import pty
    import select

    role_arn, secret = role
    args = ["request", "--secret", f"DB={secret}", "--role", role_arn, "--relay", relay.url]
    waiting = Waiting([*args, "--wait"], {**run_env, "XTOK_RELAY_KEY": RUN_KEY})
    primary, secondary = pty.openpty()
    approver = subprocess.Popen(
        [sys.executable, "-m", "xtok", "approve", "--relay", relay.url],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env=approver_env,
    )
    os.close(secondary)
    seen = b""

    def expect(text: bytes) -> None:
        nonlocal seen
        while text not in seen:
            ready, _, _ = select.select([primary], [], [], 60)
            assert ready, f"timed out waiting for {text!r}: {seen!r}"
            chunk = os.read(primary, 4096)
            assert chunk, seen.decode(errors="replace")
            seen += chunk

    expect(b"Request number")
    number = next(
        line.split()[0]
        for line in seen.decode(errors="replace").splitlines()
        if waiting.id in line and line.split()[0].isdigit()
    )
    os.write(primary, number.encode() + b"\n")
    expect(b"Approve?")
    os.write(primary, b"n\n")
    expect(b"Reason to deny")
    os.write(primary, b"wrong branch\n")
    assert approver.wait(timeout=60) == 210  # not approved: nothing was minted
    os.close(primary)
    done = waiting.finish()
    assert "denied by" in done.err and "wrong branch" in done.err


def test_wait_needs_a_relay(run_env: dict[str, str]) -> None:
    res = run_xtok(["request", "--secret", "DB=x", "--wait"], run_env)
    assert res.code == 200 and "no relay given" in res.err and "XTOK_RELAY_URL" in res.err
    plain = run_xtok(["request", "--secret", "DB=x", "--relay", "http://example.com"], run_env)
    assert plain.code == 0 and plain.out.startswith("xtokr1.")  # no --wait: the code, as before
    keys = set(Path(run_env["XTOK_STATE_DIR"]).glob("*.json"))
    res = run_xtok(
        ["request", "--secret", "DB=x", "--relay", "http://example.com", "--wait"], run_env
    )
    assert res.code == 200 and "is not https://" in res.err
    assert set(Path(run_env["XTOK_STATE_DIR"]).glob("*.json")) == keys  # no key for nothing


def test_approver_signs_for_the_relays_sts_endpoint(
    relay: RelayProc, approver_env: dict[str, str]
) -> None:
    """The approver's own configuration names AWS (no endpoint override), the relay checks
    proofs with its STS: the proof is signed for the relay's STS URL (from /v1/info)."""
    env = {k: v for k, v in approver_env.items() if k != "AWS_ENDPOINT_URL"}
    res = run_xtok(["approve", "--relay", relay.url], env)
    assert res.code == 0, res.err
    assert f"logged in to {relay.url} as {ADMIN_ARN}" in res.err


def test_a_waiting_github_run_keeps_its_proof_fresh(
    relay: RelayProc,
    issuer: Issuer,
    role: tuple[str, str],
    run_env: dict[str, str],
    approver_env: dict[str, str],
    admin: AwsConfig,
) -> None:
    """GitHub's ID tokens live 5 minutes, approvers take longer: the waiting run posts a fresh
    one before the last expires, so the approver always verifies a live proof."""
    import jwt

    role_arn, secret = role
    issuer.lifetime = 62  # the run refreshes 60 s before expiry: here every ~2 s
    try:
        args = ["request", "--secret", f"DB={secret}", "--role", role_arn]
        waiting = Waiting(
            [*args, "--relay", relay.url, "--wait"],
            {**run_env, **GITHUB_ENV, **issuer.github_env()},
        )
        approver = relay_client.Relay(relay.url)
        approver.login(admin)
        first = approver.get(waiting.id)["proof"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            latest = approver.get(waiting.id)["proof"]
            if latest != first:
                break
            time.sleep(0.1)

        def issued(token: str) -> int:
            return int(jwt.decode(token, options={"verify_signature": False})["iat"])

        assert latest != first and issued(latest) > issued(first)
    finally:
        issuer.lifetime = 600
    res = run_xtok(["approve", "--relay", relay.url, "--pick", waiting.id, "--yes"], approver_env)
    assert res.code == 0 and "VERIFIED by" in res.err, res.err
    assert waiting.finish().code == 0


def test_proof_refresh_keeps_the_identity_and_needs_the_wait_secret(
    relay: RelayProc, issuer: Issuer
) -> None:
    run = relay_client.Relay(relay.url)
    code, _ = new_code()
    aud = oidc.binding_audience(code)
    posted = run.post(code.encode(), issuer.token(aud), None)
    run.refresh_proof(code.id, posted["wait_secret"], issuer.token(aud))  # same job: fine
    other_job = issuer.token(aud, sub="repo:evil/fork:ref:refs/heads/main")
    refused(
        lambda: run.refresh_proof(code.id, posted["wait_secret"], other_job),
        AccessDenied,
        "another CI identity",
    )
    refused(lambda: run.refresh_proof(code.id, "guess", issuer.token(aud)), NotFound, "no such")
    other, _ = new_code()
    unbound = issuer.token(oidc.binding_audience(other))
    refused(
        lambda: run.refresh_proof(code.id, posted["wait_secret"], unbound),
        CredentialsRejected,
        "another request's key",
    )


def test_a_public_relay_needs_its_public_url() -> None:
    res = run_xtok(["relay", "--listen", "0.0.0.0:0", "--approver", "*"], clean_environment())
    assert res.code == 200 and "--public-url is needed" in res.err
