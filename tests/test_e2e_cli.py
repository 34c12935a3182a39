"""End to end: the `xtok` CLI as a subprocess, against two peers on loopback.

Every test runs against moto's server (a plumbing peer: it enforces no policy, no session
policy, no MFA and no expiry) and against `xtok server --dev`, the local endpoint that does.
On the latter the approver is the dev admin, trusted without MFA (`--unsafe-no-mfa`); MFA and
the other enforcement are covered by test_server_enforcement.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import ACCOUNT, APPROVER, CANARY, ROOT, DevServer, Result, aws_env, run_xtok

from xtok.sensitive import Secret
from xtok.tokens import token as tokens

CHILD = str(ROOT / "tests" / "child_report.py")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


CANARY_SHA = sha(CANARY)  # assertion messages then show the digest, never the canary


@pytest.fixture(params=["moto", "xtok-server"])
def env(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "moto":
        return aws_env(request.getfixturevalue("moto_url"))
    server: DevServer = request.getfixturevalue("xtok_server")
    return aws_env(server.url, server.access_key_id, server.secret_access_key)


@pytest.fixture
def xtok(env: dict[str, str]) -> Callable[..., Result]:
    def call(*args: str, stdin: str | bytes | None = None, **extra_env: str) -> Result:
        return run_xtok(list(args), {**env, **extra_env}, stdin=stdin)

    return call


@pytest.fixture
def prod(xtok: Callable[..., Result], unique: str, env: dict[str, str]) -> dict[str, str]:
    """A stored canary secret and a role set up for its prefix, trusting the caller."""
    prefix = f"prod-{unique}/"
    name = prefix + "canary"
    put = xtok("secret", "put", name, "--description", "e2e canary", stdin=CANARY + "\n")
    assert put.code == 0, put.err
    if env["AWS_ACCESS_KEY_ID"] == "AKIAIOSFODNN7EXAMPLE":  # moto: any principal will do
        trust = [APPROVER]
    else:  # xtok server: the dev admin approves, and has no MFA device
        trust = [f"arn:aws:iam::{ACCOUNT}:user/admin", "--unsafe-no-mfa"]
    setup = xtok(
        "setup", "aws", "--role-name", f"xtok-{unique}", "--trust", *trust, "--prefix", prefix
    )
    assert setup.code == 0, setup.err
    return {"prefix": prefix, "name": name, "role": f"arn:aws:iam::{ACCOUNT}:role/xtok-{unique}"}


@pytest.fixture
def peer(env: dict[str, str]) -> Callable[[str], Any]:
    """boto3 clients on the same peer, to check what xtok stored."""

    def client(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name="us-east-1",
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )

    return client


def mint(xtok: Callable[..., Result], prod: dict[str, str], *scope: str) -> str:
    res = xtok(
        "token",
        "--role",
        prod["role"],
        *(scope or ("--secret", prod["name"])),
        "--for",
        "build #7 of deploy",
    )
    assert res.code == 0, res.err
    assert "explodes at" in res.err and ("in 15m00s" in res.err or "in 14m5" in res.err)
    (line,) = res.out.splitlines()
    return line


def report(path: Path) -> dict[str, object]:
    return json.loads(path.read_text())


def test_put_setup_token_run_masks_and_keeps_exit_code(
    xtok: Callable[..., Result], prod: dict[str, str], tmp_path: Path
) -> None:
    token = mint(xtok, prod)
    out = tmp_path / "report.json"
    res = xtok(
        "run",
        "--token-stdin",
        "--secret",
        f"DB_PASS={prod['name']}",
        "--",
        sys.executable,
        CHILD,
        str(out),
        "DB_PASS",
        "7",
        stdin=token,
    )
    assert res.code == 7, res.err
    assert "the secret is ***!" in res.out
    assert "split: ***" in res.out
    assert "stderr has *** too" in res.err
    seen = report(out)
    assert "DB_PASS" in seen["keys"]
    assert CANARY_SHA in seen["digests"]  # the child did get the secret
    assert not [k for k in seen["keys"] if k.startswith("AWS_")]
    creds = tokens.parse(token)
    for part in (
        token,
        creds.access_key_id,
        creds.secret_access_key.reveal_text(),
        creds.session_token.reveal_text(),
    ):
        assert sha(part) not in seen["digests"]
    assert CANARY not in seen["cmdline"] and token not in seen["cmdline"]


def test_token_from_env_is_not_passed_on(
    xtok: Callable[..., Result], prod: dict[str, str], tmp_path: Path
) -> None:
    token = mint(xtok, prod)
    out = tmp_path / "report.json"
    res = xtok(
        "run",
        "--token-env",
        "PIPELINE_TOKEN",
        "--secret",
        f"S={prod['name']}",
        "--",
        sys.executable,
        CHILD,
        str(out),
        "",
        "0",
        PIPELINE_TOKEN=token,
        XTOK_TOKEN=token,
    )
    assert res.code == 0, res.err
    keys = report(out)["keys"]
    assert "PIPELINE_TOKEN" not in keys and "XTOK_TOKEN" not in keys and "S" in keys


def test_default_token_source_is_xtok_token(
    xtok: Callable[..., Result], prod: dict[str, str]
) -> None:
    token = mint(xtok, prod)
    assert xtok("run", "--secret", f"S={prod['name']}", "--", "true", XTOK_TOKEN=token).code == 0
    missing = xtok("run", "--secret", f"S={prod['name']}", "--", "true")
    assert missing.code == 200 and "no token given" in missing.err


def test_secret_file_is_private_and_removed(
    xtok: Callable[..., Result], prod: dict[str, str], tmp_path: Path
) -> None:
    token = mint(xtok, prod)
    out = tmp_path / "report.json"
    res = xtok(
        "run",
        "--secret-file",
        f"KEYFILE={prod['name']}",
        "--",
        sys.executable,
        CHILD,
        str(out),
        "",
        "3",
        "KEYFILE",
        XTOK_TOKEN=token,
    )
    assert res.code == 3, res.err
    info = report(out)["files"]["KEYFILE"]
    assert info["mode"] == 0o600 and info["dir_mode"] == 0o700
    assert info["digest"] == CANARY_SHA
    assert not Path(info["path"]).exists() and not Path(info["path"]).parent.exists()
    if os.path.isdir("/dev/shm"):
        assert info["path"].startswith("/dev/shm/")


def test_sigterm_to_xtok_is_forwarded_and_files_removed(
    env: dict[str, str], prod: dict[str, str], tmp_path: Path, xtok: Callable[..., Result]
) -> None:
    token = mint(xtok, prod)
    ready = tmp_path / "ready"
    script = f"import os,time; open({str(ready)!r},'w').write(os.environ['F']); time.sleep(60)"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "xtok",
            "run",
            "--secret-file",
            f"F={prod['name']}",
            "--",
            sys.executable,
            "-c",
            script,
        ],
        env={**env, "XTOK_TOKEN": token},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    for _ in range(300):
        if ready.exists() and ready.read_text():
            break
        time.sleep(0.05)
    secret_file = Path(ready.read_text())
    assert secret_file.exists()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert not secret_file.exists()


def test_child_killed_by_signal_gives_128_plus_n(
    xtok: Callable[..., Result], prod: dict[str, str]
) -> None:
    token = mint(xtok, prod)
    res = xtok(
        "run",
        "--secret",
        f"S={prod['name']}",
        "--",
        sys.executable,
        "-c",
        "import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
        XTOK_TOKEN=token,
    )
    assert res.code == 128 + 9


def test_fail_closed_before_the_command_runs(
    xtok: Callable[..., Result], prod: dict[str, str], tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    cmd = ["--", "touch", str(marker)]
    scoped = mint(xtok, prod, "--prefix", prod["prefix"])
    missing = xtok("run", "--secret", f"S={prod['prefix']}missing", *cmd, XTOK_TOKEN=scoped)
    assert missing.code == 205, missing.err
    assert f"cannot read secret '{prod['prefix']}missing' (for S): not found" in missing.err
    out_of_scope = xtok("run", "--secret", "S=other/secret", *cmd, XTOK_TOKEN=mint(xtok, prod))
    assert out_of_scope.code == 204 and "does not include secret 'other/secret'" in out_of_scope.err
    malformed = xtok("run", "--secret", f"S={prod['name']}", *cmd, XTOK_TOKEN="xtok1.AAAA.BBBB")
    assert malformed.code == 201 and "checksum" in malformed.err
    fake = tokens.Credentials(
        "ASIAIOSFODNN7EXAMPLE",
        Secret("k" * 40),
        Secret("t" * 100),
        expiration=datetime.now(UTC) - timedelta(minutes=1),
    )
    expired = xtok("run", "--secret", f"S={prod['name']}", *cmd, XTOK_TOKEN=tokens.encode(fake))
    assert expired.code == 202 and "token expired at" in expired.err
    soon = tokens.encode(
        tokens.Credentials(
            "ASIAIOSFODNN7EXAMPLE",
            Secret("k" * 40),
            Secret("t" * 100),
            expiration=datetime.now(UTC) + timedelta(seconds=90),
        )
    )
    ttl = xtok("run", "--min-ttl", "5m", "--secret", f"S={prod['name']}", *cmd, XTOK_TOKEN=soon)
    assert ttl.code == 202 and "--min-ttl" in ttl.err
    binary_in_env = xtok(
        "run", "--secret", f"S={prod['name']}#key", *cmd, XTOK_TOKEN=mint(xtok, prod)
    )
    assert binary_in_env.code == 200 and "not a JSON object" in binary_in_env.err
    assert not marker.exists()
    for res in (missing, out_of_scope, malformed, expired, ttl, binary_in_env):
        assert len(res.err.strip().splitlines()) <= 2  # one line plus a tip


def test_json_key_selection(xtok: Callable[..., Result], unique: str, tmp_path: Path) -> None:
    name = f"json-{unique}/db"
    doc = json.dumps({"user": "deploy", "password": CANARY, "port": 5432})
    assert xtok("secret", "put", name, stdin=doc).code == 0
    token = tokens.encode(tokens.parse(xtok("token", "--format", "json").out))
    out = tmp_path / "r.json"
    res = xtok(
        "run",
        "--secret",
        f"P={name}#password",
        "--secret",
        f"PORT={name}#port",
        "--",
        sys.executable,
        CHILD,
        str(out),
        "P",
        "0",
        XTOK_TOKEN=token,
    )
    assert res.code == 0, res.err
    assert CANARY_SHA in report(out)["digests"] and sha("5432") in report(out)["digests"]
    absent = xtok("run", "--secret", f"P={name}#nope", "--", "true", XTOK_TOKEN=token)
    assert absent.code == 200 and "has no JSON key 'nope'" in absent.err


def test_aws_cli_output_and_legacy_form_are_accepted(
    env: dict[str, str], xtok: Callable[..., Result], prod: dict[str, str]
) -> None:
    """The write-up's own token step, through the real `aws` CLI."""
    aws = subprocess.run(
        [sys.executable, "-m", "awscli", "sts", "get-session-token", "--duration-seconds", "900"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    raw_json = aws.stdout
    res = xtok(
        "run",
        "--token-stdin",
        "--secret",
        f"S={prod['name']}",
        "--",
        "sh",
        "-c",
        'echo "got $S"',
        stdin=raw_json,
    )
    assert res.code == 0 and "got ***" in res.out, res.err
    c = json.loads(raw_json)["Credentials"]
    legacy = f"{c['SessionToken']}:{c['AccessKeyId']}:{c['SecretAccessKey']}"
    res = xtok(
        "run", "--secret", f"S={prod['name']}", "--", "sh", "-c", 'echo "got $S"', XTOK_TOKEN=legacy
    )
    assert res.code == 0 and "got ***" in res.out
    assert "carries no expiry" in res.err


def test_token_formats_and_seed_mode_warning(xtok: Callable[..., Result]) -> None:
    res = xtok("token", "--format", "legacy")
    assert res.code == 0 and "ALL of your powers" in res.err
    assert len(res.out.strip().split(":")) == 3
    res = xtok("token", "--format", "json", "--duration", "1h")
    assert json.loads(res.out)["Credentials"]["AccessKeyId"]
    assert "in 1h00m00s" in res.err or "in 59m5" in res.err


def test_token_refusals_happen_before_any_aws_call(env: dict[str, str]) -> None:
    closed = {**env, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}  # nothing listens: would be 206
    role = f"arn:aws:iam::{ACCOUNT}:role/x"
    for args, message in [
        # (Against AWS itself, 5m is refused too: see test_first_hour.py. Against another
        # endpoint the shortest duration is the endpoint's.)
        (["token", "--duration", "0"], "outside what GetSessionToken allows"),
        (["token", "--role", role, "--duration", "13h"], "outside what AssumeRole allows"),
        (["token", "--secret", "a/b"], "GetSessionToken cannot be scoped"),
        (["token", "--role", "not-an-arn"], "not an IAM role ARN"),
        (["token", "--duration", "soon"], "invalid duration"),
        (["token", "--role", role, "--mfa-code", "12ab"], "6 digits"),
    ]:
        res = run_xtok(args, closed)
        assert res.code == 200 and message in res.err, (args, res.err)


def test_network_failure_is_reported(env: dict[str, str]) -> None:
    res = run_xtok(["secret", "ls"], {**env, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert res.code == 206 and "cannot list secrets" in res.err


def test_secret_put_versions_binary_and_listing(
    peer: Callable[[str], Any],
    xtok: Callable[..., Result],
    unique: str,
    tmp_path: Path,
    env: dict[str, str],
) -> None:
    name = f"store-{unique}/api"
    assert xtok("secret", "put", name, stdin=CANARY).code == 0
    again = xtok("secret", "put", name, "--json", stdin=CANARY + "-v2")
    assert json.loads(again.out)["Created"] is False
    meta = json.loads(xtok("secret", "describe", name, "--json").out)
    assert sorted(s for v in meta["VersionIdsToStages"].values() for s in v) == [
        "AWSCURRENT",
        "AWSPREVIOUS",
    ]
    blob = bytes(range(256)) + CANARY.encode()
    (tmp_path / "key.bin").write_bytes(blob)
    assert (
        xtok("secret", "put", f"store-{unique}/bin", "--from-file", str(tmp_path / "key.bin")).code
        == 0
    )
    sm = peer("secretsmanager")
    stored = sm.get_secret_value(SecretId=f"store-{unique}/bin")
    assert "SecretString" not in stored and stored["SecretBinary"] == blob
    listed = xtok("secret", "ls", "--prefix", f"store-{unique}/")
    assert listed.out.split()[::2] == [f"store-{unique}/api", f"store-{unique}/bin"]


def test_secret_value_is_never_taken_from_argv(xtok: Callable[..., Result], unique: str) -> None:
    res = xtok("secret", "put", f"argv-{unique}/x", CANARY)
    assert res.code == 200 and "unexpected extra argument" in res.err
    assert xtok("secret", "describe", f"argv-{unique}/x").code == 205
    assert xtok("secret", "put", f"argv-{unique}/x", stdin="").code == 200


def test_token_on_the_command_line_is_refused_without_echo(
    xtok: Callable[..., Result], prod: dict[str, str]
) -> None:
    token = mint(xtok, prod)
    res = xtok("run", "--secret", f"S={prod['name']}", token, "--", "true")
    assert res.code == 200 and "looks like a token" in res.err
    assert token not in res.both and token[6:30] not in res.both
    for mangled in (token[:-3], "xtoks1." + token[6:40], '{"Credentials": 1}'):
        res = xtok("run", "--secret", f"S={prod['name']}", "--", mangled, XTOK_TOKEN=token)
        assert res.code == 200 and "looks like a token" in res.err and mangled not in res.both


def test_command_not_found(xtok: Callable[..., Result], prod: dict[str, str]) -> None:
    token = mint(xtok, prod)
    res = xtok(
        "run", "--secret", f"S={prod['name']}", "--", "no-such-command-xtok", XTOK_TOKEN=token
    )
    assert res.code == 209 and "command not found: no-such-command-xtok" in res.err


def test_setup_is_idempotent_and_dry_run_changes_nothing(
    peer: Callable[[str], Any], xtok: Callable[..., Result], unique: str, env: dict[str, str]
) -> None:
    # A trust policy may name only principals that exist (AWS, and xtok server, refuse others);
    # moto checks nothing.
    moto = env["AWS_ACCESS_KEY_ID"] == "AKIAIOSFODNN7EXAMPLE"
    approver = APPROVER if moto else f"arn:aws:iam::{ACCOUNT}:user/admin"
    args = [
        "setup",
        "aws",
        "--role-name",
        f"idem-{unique}",
        "--trust",
        approver,
        "--prefix",
        "prod/",
    ]
    dry = xtok(*args, "--dry-run")
    assert dry.code == 0 and dry.out.startswith("aws iam create-role --role-name")
    assert "aws iam put-role-policy" in dry.out
    iam = peer("iam")
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName=f"idem-{unique}")
    first = json.loads(xtok(*args, "--json").out)
    assert first["Applied"] and len(first["Calls"]) == 2
    assert json.loads(xtok(*args, "--json").out)["Calls"] == []
    role = iam.get_role(RoleName=f"idem-{unique}")["Role"]
    trust = role["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Condition"]["Bool"] == {"aws:MultiFactorAuthPresent": "true"}
    changed = json.loads(xtok(*args, "--unsafe-no-mfa", "--json").out)
    assert [c.split()[2] for c in changed["Calls"]] == ["update-assume-role-policy"]


def test_revoke_attaches_aws_revoke_older_sessions(
    peer: Callable[[str], Any],
    xtok: Callable[..., Result],
    prod: dict[str, str],
    env: dict[str, str],
) -> None:
    role = prod["role"].rsplit("/", 1)[1]
    dry = xtok("revoke", "--role", role, "--before", "2026-11-25T14:00:00Z", "--dry-run")
    assert dry.code == 0 and "put-role-policy" in dry.out and "2026-11-25T14:00:00Z" in dry.out
    assert xtok("revoke", "--role", role).code == 0
    iam = peer("iam")
    doc = iam.get_role_policy(RoleName=role, PolicyName="AWSRevokeOlderSessions")
    st = doc["PolicyDocument"]["Statement"][0]
    stamp = st["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
    issued = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert st["Effect"] == "Deny" and abs((datetime.now(UTC) - issued).total_seconds()) < 120
    both = xtok("revoke", "--role", role, "--user", "alice")
    assert both.code == 200 and "exactly one of" in both.err


def test_copy_uses_the_clipboard_tool_via_stdin(
    xtok: Callable[..., Result], tmp_path: Path, env: dict[str, str]
) -> None:
    """No clipboard exists here: a fake `xclip` on PATH stands in for the platform's tool."""
    clip = tmp_path / "xclip"
    clip.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/argv\ncat > {tmp_path}/clip\n')
    clip.chmod(stat.S_IRWXU)
    res = xtok("token", "--copy", PATH=f"{tmp_path}:{env['PATH']}")
    assert res.code == 0 and res.out == "" and "copied to the clipboard (xclip)" in res.err
    assert tokens.parse((tmp_path / "clip").read_text()).kind == "session-token"
    assert (tmp_path / "argv").read_text().split() == ["-selection", "clipboard"]


def test_inspect_never_shows_secret_parts(
    xtok: Callable[..., Result], prod: dict[str, str]
) -> None:
    token = mint(xtok, prod)
    creds = tokens.parse(token)
    res = xtok("inspect", "-", stdin=token)
    assert res.code == 0
    assert f"key id:  …{creds.access_key_id[-4:]}" in res.out
    assert "session: build-7-of-deploy" in res.out and prod["name"] in res.out
    for part in (
        creds.access_key_id,
        creds.secret_access_key.reveal_text(),
        creds.session_token.reveal_text(),
    ):
        assert part not in res.both
    data = json.loads(xtok("inspect", "--json", stdin=token).out)
    assert data["kind"] == "assume-role" and 0 < data["seconds_left"] <= 900
    assert xtok("inspect", "-", stdin="nonsense").code == 201


def _read_until(fd: int, text: bytes, seen: bytearray) -> None:
    import select

    deadline = time.monotonic() + 30
    while text not in seen:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError(f"no {text!r} on the terminal; saw {bytes(seen)!r}")
        try:
            seen += os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            raise AssertionError(f"terminal closed before {text!r}; saw {bytes(seen)!r}") from None


def test_secret_put_prompts_twice_on_a_terminal_without_echo(
    peer: Callable[[str], Any], env: dict[str, str], unique: str
) -> None:
    import pty

    name = f"tty-{unique}/pw"
    pid, fd = pty.fork()
    if pid == 0:  # the child: xtok with the pseudo-terminal as its controlling terminal
        os.execve(sys.executable, [sys.executable, "-m", "xtok", "secret", "put", name], env)
    seen = bytearray()
    _read_until(fd, b"Secret value:", seen)
    os.write(fd, CANARY.encode() + b"\r")
    _read_until(fd, b"Repeat for confirmation:", seen)
    os.write(fd, CANARY.encode() + b"\r")
    _read_until(fd, b"created " + name.encode(), seen)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
    assert CANARY.encode() not in seen  # hidden input: nothing echoed
    sm = peer("secretsmanager")
    assert sha(sm.get_secret_value(SecretId=name)["SecretString"]) == CANARY_SHA


def test_trailing_newline_is_dropped_unless_kept(
    peer: Callable[[str], Any], xtok: Callable[..., Result], unique: str, env: dict[str, str]
) -> None:
    sm = peer("secretsmanager")
    assert xtok("secret", "put", f"nl-{unique}/a", stdin="line one\nline two\n").code == 0
    assert sm.get_secret_value(SecretId=f"nl-{unique}/a")["SecretString"] == "line one\nline two"
    assert xtok("secret", "put", f"nl-{unique}/b", "--keep-newline", stdin="v\n").code == 0
    assert sm.get_secret_value(SecretId=f"nl-{unique}/b")["SecretString"] == "v\n"
