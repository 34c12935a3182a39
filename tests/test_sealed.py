"""Sealed tokens: request -> approve -> run, end to end against `xtok server --dev`, and every
way a sealed token must be refused before the command runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import ACCOUNT, CANARY, DevServer, Result, aws_env, run_xtok

from xtok.approval import seal
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


def request(xtok: Callable[..., Result], role: str, unique: str, **extra: str) -> str:
    res = xtok("request", "--secret", f"DB=sealed-{unique}/db", "--role", role, **extra)
    assert res.code == 0, res.err
    (code,) = res.out.split()
    assert code.startswith("xtokr1.")
    return code


def approve(xtok: Callable[..., Result], code: str) -> str:
    res = xtok("approve", code, "--yes")
    assert res.code == 0, res.err
    assert "job:      deploy" in res.err and "commit:   0badc0ffee" in res.err
    (sealed,) = res.out.split()
    return sealed


def test_request_approve_run_once(
    xtok: Callable[..., Result], role: str, unique: str, tmp_path: Path
) -> None:
    code = request(xtok, role, unique)
    sealed = approve(xtok, code)
    marker = tmp_path / "ran"
    cmd = ["--", "sh", "-c", f'echo "db=$DB"; touch {marker}; exit 7']
    first = xtok("run", "--sealed", *cmd, XTOK_TOKEN=sealed)
    assert first.code == 7 and "db=***" in first.out, first.err
    marker.unlink()
    again = xtok("run", "--sealed", *cmd, XTOK_TOKEN=sealed)
    assert again.code == 201 and "already used" in again.err
    assert not marker.exists()


def test_token_for_another_request_is_refused(
    xtok: Callable[..., Result], role: str, unique: str, tmp_path: Path
) -> None:
    mine = request(xtok, role, unique)
    theirs_state = str(tmp_path / "their-state")
    theirs = request(xtok, role, unique, XTOK_STATE_DIR=theirs_state)
    sealed_for_them = approve(xtok, theirs)
    res = xtok("run", "--sealed", "--", "echo", "ran", XTOK_TOKEN=sealed_for_them)
    assert res.code == 201 and "sealed for another run" in res.err and "ran" not in res.out
    # and the intended run still works with its own approval
    assert xtok("run", "--sealed", "--", "true", XTOK_TOKEN=approve(xtok, mine)).code == 0


def test_tampered_token_and_request_are_refused(
    xtok: Callable[..., Result], role: str, unique: str
) -> None:
    code = request(xtok, role, unique)
    sealed = seal.SealedToken.parse(approve(xtok, code))
    flipped = bytes([sealed.ciphertext[-1] ^ 1])
    forged = seal.SealedToken(
        sealed.request_id, sealed.digest, sealed.ciphertext[:-1] + flipped
    ).encode()
    res = xtok("run", "--sealed", "--", "echo", "ran", XTOK_TOKEN=forged)
    assert res.code == 201 and "does not open" in res.err and "ran" not in res.out
    typo = code[:40] + ("A" if code[40] != "A" else "B") + code[41:]
    assert xtok("approve", typo, "--yes").code == 201


def test_request_with_altered_secrets_is_not_answered(
    role: str, unique: str, tmp_path: Path
) -> None:
    """An attacker who rewrites the request code (same key, more secrets) and gets it approved
    cannot make the run accept the answer: it does not match the stored request."""
    state = tmp_path / "s"
    ref = parse_ref(f"DB=sealed-{unique}/db")
    original = seal.new_request(RunIdentity(), (ref,), 900, role, state)
    wider = seal.RequestCode(
        original.id,
        original.identity,
        (ref, parse_ref(f"X=sealed-{unique}/other")),
        original.duration,
        original.public_key,
        original.role,
        original.created,
    )
    creds = tokens.Credentials(
        "ASIAIOSFODNN7EXAMPLE",
        Secret("k" * 40),
        Secret("t" * 40),
        expiration=datetime.now(UTC) + timedelta(minutes=15),
    )
    answer = seal.seal(wider, creds)
    with pytest.raises(TokenError, match="does not answer this run's request"):
        seal.open_sealed(answer, state)


def test_expired_sealed_token_is_refused(
    xtok: Callable[..., Result], unique: str, tmp_path: Path
) -> None:
    state = tmp_path / "s"
    ref = parse_ref(f"DB=sealed-{unique}/db")
    req = seal.new_request(RunIdentity(), (ref,), 900, None, state)
    creds = tokens.Credentials(
        "ASIAIOSFODNN7EXAMPLE",
        Secret("k" * 40),
        Secret("t" * 40),
        expiration=datetime.now(UTC) - timedelta(seconds=5),
    )
    res = xtok(
        "run",
        "--sealed",
        "--state-dir",
        str(state),
        "--",
        "echo",
        "ran",
        XTOK_TOKEN=seal.seal(req, creds).encode(),
    )
    assert res.code == 202 and "token expired" in res.err and "ran" not in res.out
    assert not list(state.iterdir())  # the key is gone all the same


def test_missing_or_unsafe_state_directory(
    xtok: Callable[..., Result], role: str, unique: str, tmp_path: Path
) -> None:
    sealed = approve(xtok, request(xtok, role, unique))
    missing = xtok(
        "run", "--sealed", "--state-dir", str(tmp_path / "nope"), "--", "true", XTOK_TOKEN=sealed
    )
    assert missing.code == 208 and "no request state directory" in missing.err
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    res = xtok("run", "--sealed", "--state-dir", str(loose), "--", "true", XTOK_TOKEN=sealed)
    assert res.code == 208 and "not a private (0700) directory" in res.err
    with pytest.raises(ConfigError):
        seal.open_sealed(seal.SealedToken.parse(sealed), loose)


def test_state_is_private_and_holds_no_credentials(
    xtok: Callable[..., Result], role: str, unique: str, env: dict[str, str]
) -> None:
    code = request(xtok, role, unique)
    state = Path(env["XTOK_STATE_DIR"])
    assert oct(state.stat().st_mode & 0o777) == "0o700"
    (record,) = state.iterdir()
    assert oct(record.stat().st_mode & 0o777) == "0o600"
    assert set(json.loads(record.read_text())) == {"request", "key"}
    assert json.loads(record.read_text())["request"] == code


def test_sealed_flags_and_inspect(xtok: Callable[..., Result], role: str, unique: str) -> None:
    code = request(xtok, role, unique)
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
