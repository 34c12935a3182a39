"""Sealed tokens: request -> approve -> run, end to end against `xtok server --dev`, and every
way a sealed token must be refused before the command runs."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import stat
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import pytest
from conftest import ACCOUNT, CANARY, DevServer, Result, aws_env, run_xtok

from xtok.approval import pending, seal
from xtok.approval.ci import RunIdentity, detect
from xtok.errors import ConfigError, TokenError
from xtok.refs import parse_ref
from xtok.sensitive import Secret
from xtok.tokens import armor
from xtok.tokens import token as tokens

JENKINS = {
    "JENKINS_URL": "https://ci.example/",
    "JOB_NAME": "deploy",
    "BUILD_NUMBER": "42",
    "BUILD_URL": "https://ci.example/job/deploy/42/",
    "GIT_COMMIT": "0badc0ffee",
}


@pytest.fixture
def env(xtok_server: DevServer, tmp_path: Path) -> dict[str, str]:
    state = tmp_path / "state"
    return {
        **aws_env(xtok_server.url, xtok_server.access_key_id, xtok_server.secret_access_key),
        "XTOK_STATE_DIR": str(state),
        **JENKINS,
    }


@pytest.fixture
def xtok(env: dict[str, str]) -> Callable[..., Result]:
    def call(*args: str, stdin: str | None = None, **extra: str) -> Result:
        return run_xtok(list(args), {**env, **extra}, stdin=stdin)

    return call


@pytest.fixture
def role(xtok: Callable[..., Result], unique: str) -> str:
    assert xtok("secret", "put", f"sealed-{unique}/db", stdin=CANARY).code == 0
    assert xtok("secret", "put", f"sealed-{unique}/other", stdin="other-value").code == 0
    res = xtok(
        "setup",
        "aws",
        "--role-name",
        f"sealed-{unique}",
        "--trust",
        f"arn:aws:iam::{ACCOUNT}:user/admin",
        "--unsafe-no-mfa",
        "--prefix",
        f"sealed-{unique}/",
    )
    assert res.code == 0, res.err
    return f"arn:aws:iam::{ACCOUNT}:role/sealed-{unique}"


class Request(NamedTuple):
    code: str  # for the approver
    ticket: str  # for this run only


def request(xtok: Callable[..., Result], role: str, unique: str, **extra: str) -> Request:
    res = xtok("request", "--secret", f"DB=sealed-{unique}/db", "--role", role, **extra)
    assert res.code == 0, res.err
    code, ticket = res.out.split()
    assert code.startswith("xtokr1.") and ticket.startswith("xtokt1.")
    return Request(code, ticket)


def approve(xtok: Callable[..., Result], code: str) -> str:
    res = xtok("approve", code, "--yes")
    assert res.code == 0, res.err
    assert "job:      deploy" in res.err and "commit:   0badc0ffee" in res.err
    (sealed,) = res.out.split()
    return sealed


def run_sealed(
    xtok: Callable[..., Result],
    sealed: str,
    ticket: str | None,
    *cmd: str,
    state: Path | None = None,
) -> Result:
    tickets = {} if ticket is None else {"XTOK_TICKET": ticket}
    where = () if state is None else ("--state-dir", str(state))
    command = cmd or ("echo", "ran")
    return xtok("run", "--sealed", *where, "--", *command, XTOK_TOKEN=sealed, **tickets)


def test_request_approve_run_once(
    xtok: Callable[..., Result], role: str, unique: str, tmp_path: Path
) -> None:
    req = request(xtok, role, unique)
    sealed = approve(xtok, req.code)
    marker = tmp_path / "ran"
    cmd = ["sh", "-c", f'echo "db=$DB"; touch {marker}; exit 7']
    first = run_sealed(xtok, sealed, req.ticket, *cmd)
    assert first.code == 7 and "db=***" in first.out, first.err
    marker.unlink()
    again = run_sealed(xtok, sealed, req.ticket, *cmd)
    assert again.code == 201 and "already answered and used" in again.err
    assert not marker.exists()


def test_token_for_another_request_is_refused_and_burns_nothing(
    xtok: Callable[..., Result], role: str, unique: str
) -> None:
    mine, theirs = request(xtok, role, unique), request(xtok, role, unique)
    sealed_for_them = approve(xtok, theirs.code)
    res = run_sealed(xtok, sealed_for_them, mine.ticket)
    assert res.code == 201 and "sealed for another run" in res.err and "ran" not in res.out
    # Neither key was used up: both runs still open their own answers.
    assert run_sealed(xtok, sealed_for_them, theirs.ticket).out == "ran\n"
    assert run_sealed(xtok, approve(xtok, mine.code), mine.ticket).out == "ran\n"


def test_another_job_without_the_ticket_cannot_open_the_request(
    xtok: Callable[..., Result], role: str, unique: str
) -> None:
    """Another job of the same user on the agent: same state directory, and it holds the sealed
    token (it travels through Jenkins' records). Without this run's ticket it opens nothing."""
    victim = request(xtok, role, unique)
    sealed = approve(xtok, victim.code)
    no_ticket = run_sealed(xtok, sealed, None)
    assert no_ticket.code == 200 and "no request ticket in XTOK_TICKET" in no_ticket.err
    forged = pending.Ticket(seal.SealedToken.parse(sealed).request_id, b"\0" * 32).encode()
    guessed = run_sealed(xtok, sealed, forged)
    assert guessed.code == 201 and "not this run's ticket" in guessed.err
    assert "ran" not in guessed.out + no_ticket.out
    assert run_sealed(xtok, sealed, victim.ticket).out == "ran\n"  # the victim is unharmed


def test_tampered_token_and_request_are_refused(
    xtok: Callable[..., Result], role: str, unique: str
) -> None:
    req = request(xtok, role, unique)
    genuine = approve(xtok, req.code)
    sealed = seal.SealedToken.parse(genuine)
    flipped = bytes([sealed.ciphertext[-1] ^ 1])
    forged = seal.SealedToken(
        sealed.request_id, sealed.digest, sealed.ciphertext[:-1] + flipped
    ).encode()
    res = run_sealed(xtok, forged, req.ticket)
    assert res.code == 201 and "does not open" in res.err and "ran" not in res.out
    assert run_sealed(xtok, genuine, req.ticket).out == "ran\n"  # the key survived the forgery
    code = req.code
    typo = code[:40] + ("A" if code[40] != "A" else "B") + code[41:]
    assert xtok("approve", typo, "--yes").code == 201


def test_request_with_altered_secrets_is_not_answered(
    role: str, unique: str, tmp_path: Path
) -> None:
    """An attacker who rewrites the request code (same key, more secrets) and gets it approved
    cannot make the run accept the answer: it does not match the stored request."""
    state = tmp_path / "s"
    ref = parse_ref(f"DB=sealed-{unique}/db")
    original, ticket = seal.new_request(RunIdentity(), (ref,), 900, role, state)
    wider = seal.RequestCode(
        original.id,
        original.identity,
        (ref, parse_ref(f"X=sealed-{unique}/other")),
        original.duration,
        original.public_key,
        original.role,
        original.created,
    )
    answer = seal.seal(wider, _creds(timedelta(minutes=15)))
    with pytest.raises(TokenError, match="does not answer this run's request"):
        seal.open_sealed(answer, ticket, state)


def _creds(life: timedelta) -> tokens.Credentials:
    return tokens.Credentials(
        "ASIAIOSFODNN7EXAMPLE",
        Secret("k" * 40),
        Secret("t" * 40),
        expiration=datetime.now(UTC) + life,
    )


def test_expired_sealed_token_is_refused(
    xtok: Callable[..., Result], unique: str, tmp_path: Path
) -> None:
    state = tmp_path / "s"
    ref = parse_ref(f"DB=sealed-{unique}/db")
    req, ticket = seal.new_request(RunIdentity(), (ref,), 900, None, state)
    sealed = seal.seal(req, _creds(timedelta(seconds=-5))).encode()
    res = run_sealed(xtok, sealed, ticket.encode(), state=state)
    assert res.code == 202 and "token expired" in res.err and "ran" not in res.out
    assert not list(state.iterdir())  # the key is gone all the same


def test_missing_or_unsafe_state_directory(
    xtok: Callable[..., Result], role: str, unique: str, tmp_path: Path
) -> None:
    req = request(xtok, role, unique)
    sealed = approve(xtok, req.code)
    args = ("run", "--sealed", "--state-dir")
    missing = xtok(
        *args, str(tmp_path / "nope"), "--", "true", XTOK_TOKEN=sealed, XTOK_TICKET=req.ticket
    )
    assert missing.code == 208 and "no request state directory" in missing.err
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    res = xtok(*args, str(loose), "--", "true", XTOK_TOKEN=sealed, XTOK_TICKET=req.ticket)
    assert res.code == 208 and "not a private (0700) directory" in res.err
    with pytest.raises(ConfigError):
        seal.open_sealed(seal.SealedToken.parse(sealed), pending.Ticket.parse(req.ticket), loose)


def test_state_is_private_and_holds_no_usable_key(
    xtok: Callable[..., Result], role: str, unique: str, env: dict[str, str]
) -> None:
    req = request(xtok, role, unique)
    state = Path(env["XTOK_STATE_DIR"])
    assert oct(state.stat().st_mode & 0o777) == "0o700"
    (record,) = state.iterdir()
    assert oct(record.stat().st_mode & 0o777) == "0o600"
    data = json.loads(record.read_text())
    assert set(data) == {"request", "expires", "nonce", "key"} and data["request"] == req.code
    ticket = pending.Ticket.parse(req.ticket)
    with contextlib.suppress(RuntimeError), pending.claim(ticket, state) as (_, private):
        raw = record.with_name(f"{record.stem}.{os.getpid()}.claimed").read_bytes()
        for form in (private, base64.b64encode(private), armor.b64e(private).encode()):
            assert form not in raw  # at rest the key is encrypted to the ticket
        raise RuntimeError("a failure inside the claim puts the record back")
    assert record.exists()


def test_expired_requests_and_leftovers_are_purged(
    xtok: Callable[..., Result], role: str, unique: str, env: dict[str, str]
) -> None:
    state = Path(env["XTOK_STATE_DIR"])
    old = request(xtok, role, unique)
    (record,) = state.iterdir()
    data = json.loads(record.read_text())
    record.write_text(json.dumps({**data, "expires": int(time.time()) - 1}))
    crashed = state / "0123456789abcdef.999.claimed"  # a run that died after claiming
    crashed.write_text(json.dumps({**data, "expires": int(time.time()) - 1}))
    assert xtok("request", "--purge-after", "1m", "--secret", "A=a/b").code == 0
    assert not record.exists() and not crashed.exists() and len(list(state.iterdir())) == 1
    res = run_sealed(xtok, approve(xtok, old.code), old.ticket)
    assert res.code == 201 and "waited too long" in res.err
    assert xtok("request", "--purge-after", "10s", "--secret", "A=a/b").code == 200


def test_a_planted_fifo_or_link_does_not_hang_the_purge(
    xtok: Callable[..., Result], unique: str, env: dict[str, str], tmp_path: Path
) -> None:
    """Another process of the user can put anything in the state directory: a FIFO named like
    a record must not block every later request (the purge would wait on it forever)."""
    state = Path(env["XTOK_STATE_DIR"])
    assert xtok("request", "--secret", "A=a/b").code == 0
    os.mkfifo(state / "fedcba9876543210.json")
    (state / "0123456789abcdef.json").symlink_to(tmp_path / "elsewhere.json")
    (tmp_path / "elsewhere.json").write_text('{"expires": 0}')
    assert xtok("request", "--secret", "A=a/b").code == 0  # run_xtok times out at 60 s
    assert (tmp_path / "elsewhere.json").exists()


def _plant(kind: str, path: Path) -> str:
    """Put a `kind` of non-regular file in the place of `path`, as another process of the user
    could."""
    if kind != "link":
        path.unlink()
    if kind == "fifo":
        os.mkfifo(path, 0o600)
        return "a FIFO"
    if kind == "directory":
        path.mkdir()
        return "a directory"
    if kind == "socket":
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(path))
        return "a socket"
    copy = path.with_name("copy")  # the real record, behind a link
    path.rename(copy)
    path.symlink_to(copy)
    return "a symbolic link"


@pytest.mark.parametrize("kind", ["fifo", "directory", "socket", "link"])
def test_a_planted_state_file_fails_the_run_at_once(
    xtok: Callable[..., Result], unique: str, tmp_path: Path, kind: str
) -> None:
    """Another process of the user swaps the run's own record for something else: a FIFO
    blocked the read for ever. The run stops with a reason instead (run_xtok's timeout only
    detects a hang)."""
    state = tmp_path / "s"
    ref = parse_ref(f"DB=sealed-{unique}/db")
    req, ticket = seal.new_request(RunIdentity(), (ref,), 900, None, state)
    record = state / f"{req.id}.json"
    what = _plant(kind, record)
    sealed = seal.seal(req, _creds(timedelta(minutes=10))).encode()
    res = run_sealed(xtok, sealed, ticket.encode(), state=state)
    assert res.code == 208 and "ran" not in res.out, res.err
    assert f"request state {record} is {what}, not a regular file" in res.err
    assert "tip: start a new request" in res.err and len(res.err.splitlines()) == 2
    assert record.is_symlink() or not stat.S_ISREG(record.lstat().st_mode)  # left in place


def test_ticket_never_goes_to_the_approver(
    xtok: Callable[..., Result], role: str, unique: str
) -> None:
    req = request(xtok, role, unique)
    both = xtok("approve", "-", "--yes", stdin=f"{req.code}\n{req.ticket}\n")
    assert both.code == 201 and "holds the run's ticket" in both.err and both.out == ""
    shown = xtok("inspect", "-", stdin=req.ticket)
    assert shown.code == 201 and "run's ticket" in shown.err and req.ticket not in shown.both


def test_sealed_flags_and_inspect(xtok: Callable[..., Result], role: str, unique: str) -> None:
    code = request(xtok, role, unique).code
    both = xtok("run", "--sealed", "--secret", "A=b/c", "--", "true", XTOK_TOKEN="x")
    assert both.code == 200 and "takes its secrets from the request" in both.err
    shown = json.loads(xtok("inspect", "--json", stdin=code).out)
    assert shown["format"] == "request-code" and shown["run"]["job"] == "deploy"
    assert shown["secrets"] == [f"DB=sealed-{unique}/db"]
    sealed = approve(xtok, code)
    shown = json.loads(xtok("inspect", "--json", stdin=sealed).out)
    assert shown["format"] == "sealed-token"
    assert shown["request"] == seal.RequestCode.parse(code).id
    plain = xtok("run", "--secret", "A=b/c", "--", "true", XTOK_TOKEN=sealed)
    assert plain.code == 201 and "xtok run --sealed" in plain.err
    assert xtok("approve", code).code == 200  # no terminal, no --yes: no approval


def test_ci_detection() -> None:
    assert detect(JENKINS) == RunIdentity(
        "jenkins", "deploy", "42", "https://ci.example/job/deploy/42/", "0badc0ffee"
    )
    gh = detect(
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_REPOSITORY": "o/r",
            "GITHUB_WORKFLOW": "ci",
            "GITHUB_RUN_NUMBER": "9",
            "GITHUB_RUN_ID": "123",
            "GITHUB_SHA": "abc",
        }
    )
    assert gh == RunIdentity(
        "github-actions", "o/r/ci", "9", "https://github.com/o/r/actions/runs/123", "abc"
    )
    gl = detect(
        {
            "GITLAB_CI": "true",
            "CI_PROJECT_PATH": "g/p",
            "CI_JOB_NAME": "deploy",
            "CI_PIPELINE_IID": "5",
            "CI_JOB_URL": "https://gl/j/1",
            "CI_COMMIT_SHA": "d",
        }
    )
    assert gl == RunIdentity("gitlab-ci", "g/p/deploy", "5", "https://gl/j/1", "d")
    assert detect({}) == RunIdentity()


def test_armor_refuses_other_kinds() -> None:
    text = armor.encode("xtokr", 1, {"a": 1})
    with pytest.raises(TokenError, match="not an xtok sealed token"):
        seal.SealedToken.parse(text)
    with pytest.raises(TokenError, match="newer than this xtok"):
        seal.SealedToken.parse("xtoks9.AAAA.BBBB")
