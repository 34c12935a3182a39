"""The edges a newcomer hits in the first hour (issue 13), each against the real CLI and, where
an endpoint is involved, the real `xtok server` on loopback (or a closed loopback port)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from conftest import CANARY, ROOT, DevServer, aws_env, base_env, run_xtok
from test_e2e_cli import _read_until

from xtok.sensitive import Secret
from xtok.tokens import token as tokens

README = (ROOT / "README.md").read_text()


def _dev(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """`xtok server --dev` with its temporary directory under tmp_path, once serving; with the
    variables of the export line it printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "xtok", "server", "--dev", "--listen", "127.0.0.1:0", *extra],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**base_env(), "TMPDIR": str(tmp_path)},
    )
    assert proc.stdout is not None and proc.stderr is not None
    line = proc.stdout.readline()
    assert line.startswith("export ") and "dev endpoint on" in proc.stderr.readline()
    return proc, dict(word.split("=", 1) for word in line.split()[1:])


def test_dev_server_removes_its_throw_away_data_on_sigterm_as_on_ctrl_c(tmp_path: Path) -> None:
    """Signalled right after its export line, in the middle of start-up, again and again."""
    for sig in [signal.SIGTERM] * 15 + [signal.SIGINT] * 3:
        proc, _ = _dev(tmp_path)
        assert [p.name[:9] for p in tmp_path.iterdir()] == ["xtok-dev-"]
        proc.send_signal(sig)
        try:
            _, err = proc.communicate(timeout=60)  # only detects a hang: no time is asserted
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            pytest.fail(f"the dev server did not stop on {sig.name}")
        assert list(tmp_path.iterdir()) == [], f"data left behind after {sig.name}"
        assert "Traceback" not in err and "Exception ignored" not in err, err
        assert proc.returncode == (0 if sig == signal.SIGTERM else 210), err


# The signal lands while a finalizer runs, as it does whenever importlib drops a module's lock
# (all through start-up's imports). Only the moment is arranged: the server is the real one.
_SIGTERM_IN_A_FINALIZER = """
import os, signal, sys
import xtok.cli.server as server

class Finalized:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)

exports = server._exports
def signalled(*args):
    Finalized()
    return exports(*args)

server._exports = signalled
from xtok.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_dev_server_stops_on_a_sigterm_that_lands_in_a_finalizer(tmp_path: Path) -> None:
    """A Python handler that raised there only got its exception printed ("Exception
    ignored"): the SIGTERM was lost and the server served on for ever."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _SIGTERM_IN_A_FINALIZER,
            "server",
            "--dev",
            "--listen",
            "127.0.0.1:0",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**base_env(), "TMPDIR": str(tmp_path)},
    )
    try:
        out, err = proc.communicate(timeout=60)  # only detects a hang: no time is asserted
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"the dev server did not stop: {err[-500:]}")
    assert out.startswith("export ") and proc.returncode == 0, err
    assert "Exception ignored" not in err, err
    assert list(tmp_path.iterdir()) == [], "throw-away data left behind"


def test_dev_server_keeps_data_and_key_for_xtok_audit(tmp_path: Path) -> None:
    data, key = tmp_path / "dev-data", tmp_path / "dev.key"
    proc, _ = _dev(tmp_path, "--data", str(data), "--master-key-file", str(key))
    assert oct(key.stat().st_mode & 0o777) == "0o600"  # created when missing
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    res = run_xtok(["audit", "--data", str(data), "--master-key-file", str(key)], base_env())
    assert res.code == 0, res.err
    assert res.out.splitlines()[0].split()[:3] == ["#", "time", "(UTC)"]
    # --data without a key would keep data nothing can read: refused, saying what to add.
    lost = run_xtok(["server", "--dev", "--data", str(tmp_path / "d2")], base_env())
    assert lost.code == 200 and "--master-key-file" in lost.err


def test_master_key_file_help_says_the_variable_holds_the_key_itself() -> None:
    res = run_xtok(["server", "--help"], base_env())
    assert "XTOK_SERVER_MASTER_KEY may hold the key itself (base64" in " ".join(res.out.split())
    assert "--master-key-file" in README and "xtok audit --data dev-data" in README


def test_audit_table_says_when_a_session_has_no_source_identity(tmp_path: Path) -> None:
    """A role session started without SourceIdentity (the aws CLI's default) names no person
    behind it: its rows say so, where xtok's sessions name the approver."""
    data, key = tmp_path / "d", tmp_path / "k"
    proc, exports = _dev(tmp_path, "--data", str(data), "--master-key-file", str(key))
    try:
        endpoint = {"endpoint_url": exports["AWS_ENDPOINT_URL"], "region_name": "us-east-1"}
        admin = {
            "aws_access_key_id": exports["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": exports["AWS_SECRET_ACCESS_KEY"],
        }
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::123456789012:user/admin"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        iam = boto3.client("iam", **admin, **endpoint)  # type: ignore[call-overload]
        role = iam.create_role(RoleName="plain", AssumeRolePolicyDocument=json.dumps(trust))
        sts = boto3.client("sts", **admin, **endpoint)  # type: ignore[call-overload]
        c = sts.assume_role(RoleArn=role["Role"]["Arn"], RoleSessionName="nobody-said")
        boto3.client(  # type: ignore[call-overload]
            "sts",
            aws_access_key_id=c["Credentials"]["AccessKeyId"],
            aws_secret_access_key=c["Credentials"]["SecretAccessKey"],
            aws_session_token=c["Credentials"]["SessionToken"],
            **endpoint,
        ).get_caller_identity()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    res = run_xtok(["audit", "--data", str(data), "--master-key-file", str(key)], base_env())
    header, *rows = res.out.splitlines()
    col = header.index("approved by")
    (row,) = [row for row in rows if "assumed-role/plain/nobody-said" in row]
    assert row[col:].startswith("(no SourceIdentity)")
    (row,) = [row for row in rows if "iam:CreateRole" in row]
    assert row[col:].startswith("-  ")  # a user's own call: the user is the person


def test_short_token_against_a_min_duration_dev_endpoint(xtok_server: DevServer) -> None:
    env = aws_env(xtok_server.url, xtok_server.access_key_id, xtok_server.secret_access_key)
    res = run_xtok(["token", "--duration", "5s"], env)
    assert res.code == 0, res.err
    assert re.search(r"explodes at .*, in [1-5]s", res.err)
    assert 0 < tokens.parse(res.out).seconds_left(datetime.now(UTC)) <= 5  # type: ignore[operator]
    # Against AWS itself (no endpoint URL) AWS's minimum applies before any call, and the tip
    # names the way to shorter tokens.
    aws = {k: v for k, v in env.items() if k != "AWS_ENDPOINT_URL"}
    refused = run_xtok(["token", "--duration", "5s"], aws)
    assert refused.code == 200 and "--min-duration" in refused.err


def test_readme_aws_cli_way_to_a_short_session(xtok_server: DevServer, tmp_path: Path) -> None:
    config = tmp_path / "dev.config"
    config.write_text("[default]\nparameter_validation = false\n")
    assert "parameter_validation = false" in README
    env = aws_env(xtok_server.url, xtok_server.access_key_id, xtok_server.secret_access_key)
    aws = [str(Path(sys.executable).parent / "aws"), "sts", "get-session-token"]
    args = [*aws, "--duration-seconds", "5", "--query", "Credentials.Expiration"]
    res = subprocess.run(
        args, env={**env, "AWS_CONFIG_FILE": str(config)}, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    expires = datetime.fromisoformat(res.stdout.strip().strip('"').replace("Z", "+00:00"))
    assert expires - datetime.now(UTC) <= timedelta(seconds=6)


def _token() -> str:
    now = datetime.now(UTC)
    return tokens.encode(
        tokens.Credentials(
            access_key_id="ASIAIOSFODNN7EXAMPLE",
            secret_access_key=Secret(CANARY),
            session_token=Secret(CANARY),
            expiration=now + timedelta(minutes=15),
            issued=now,
            kind="assume-role",
            session_name="deploy-42",
        )
    )


def test_inspect_without_argument_reads_xtok_token_when_stdin_is_empty() -> None:
    res = run_xtok(["inspect"], {**base_env(), "XTOK_TOKEN": _token()})
    assert res.code == 0, res.err
    assert "deploy-42" in res.out and "assume-role" in res.out
    missing = run_xtok(["inspect"], base_env())
    assert missing.code == 200
    assert "xtok inspect -" in missing.err and "$XTOK_TOKEN" in missing.err


def test_readme_names_the_variables_jenkins_is_detected_by() -> None:
    from xtok.approval.ci import detect

    for var in ("JENKINS_URL", "JENKINS_HOME"):
        assert detect({var: "x"}).ci == "jenkins"
        assert f"`{var}`" in README


def test_an_operation_not_served_says_so_and_names_what_is(xtok_server: DevServer) -> None:
    env = aws_env(xtok_server.url, xtok_server.access_key_id, xtok_server.secret_access_key)
    aws = str(Path(sys.executable).parent / "aws")
    res = subprocess.run(
        [aws, "iam", "list-saml-providers"], env=env, capture_output=True, text=True
    )
    assert res.returncode != 0
    assert "(InvalidAction)" in res.stderr  # still AWS's shape: the CLI parsed it
    assert (
        "ListSAMLProviders is not served by xtok server" in res.stderr
        and "CreateUser" in res.stderr
    )
    assert "version" not in res.stderr
    sm = boto3.client(
        "secretsmanager",
        endpoint_url=xtok_server.url,
        region_name="us-east-1",
        aws_access_key_id=xtok_server.access_key_id,
        aws_secret_access_key=xtok_server.secret_access_key,
    )
    with pytest.raises(ClientError) as info:
        sm.rotate_secret(SecretId="x")
    error = info.value.response["Error"]
    assert error["Code"] == "UnknownOperationException"
    assert "not served by xtok server" in error["Message"]
    assert "GetSecretValue" in error["Message"]
    sns = boto3.client(
        "sns",
        endpoint_url=xtok_server.url,
        region_name="us-east-1",
        aws_access_key_id=xtok_server.access_key_id,
        aws_secret_access_key=xtok_server.secret_access_key,
    )
    with pytest.raises(ClientError) as info:
        sns.list_topics()
    assert "service sns is not served by xtok server" in info.value.response["Error"]["Message"]


def test_a_connection_error_names_the_url_it_tried() -> None:
    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    res = run_xtok(["secret", "ls"], aws_env(url))
    assert res.code == 206
    assert f"no answer from {url}/" in res.err
    # The fetch step of `xtok run` (its own signed request) says the same.
    run = run_xtok(
        ["run", "--secret", "A=x", "--", "true"], {**aws_env(url), "XTOK_TOKEN": _token()}
    )
    assert run.code == 206
    assert f"no answer from {url}/" in run.err


@contextmanager
def _terminal(args: list[str], env: dict[str, str]) -> Iterator[tuple[int, int, bytearray]]:
    """`xtok ARGS` on a pseudo-terminal: (pid, terminal fd, what it wrote so far). A child
    still running at the end (waiting for input the test did not give) is killed."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # the child: xtok with the pseudo-terminal as its controlling terminal
        os.execve(sys.executable, [sys.executable, "-m", "xtok", *args], env)
    try:
        yield pid, fd, bytearray()
    finally:
        with suppress(ChildProcessError):  # already reaped: it exited
            if os.waitpid(pid, os.WNOHANG)[0] == 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        os.close(fd)


def _exit_code(pid: int, fd: int, seen: bytearray) -> int:
    """Read the terminal to its end (at most 30 s), then the child's exit status."""
    import select

    deadline = time.monotonic() + 30
    while select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    while time.monotonic() < deadline:  # it may close the terminal just before it exits
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    raise AssertionError(f"xtok is still waiting for input; it wrote {bytes(seen)!r}")


def test_secret_put_mismatch_speaks_in_xtoks_voice() -> None:
    with _terminal(["secret", "put", "tty/mismatch"], aws_env("http://127.0.0.1:1")) as (
        pid,
        fd,
        seen,
    ):
        for attempt in range(3):
            for prompt, answer in ((b"Secret value:", "first"), (b"Repeat for", "second")):
                asked = bytearray()  # this prompt, not an earlier one (typing ahead is lost)
                _read_until(fd, prompt, asked)
                seen += asked
                os.write(fd, f"{answer}-{attempt}\r".encode())
        code = _exit_code(pid, fd, seen)
    text = seen.decode(errors="replace")
    assert code == 200
    assert "xtok: the two values differ" in text
    assert "xtok: error: the two values differed 3 times: nothing was stored" in text
    assert "Error:" not in text.replace("xtok: error:", "")


def test_approve_confirmation_speaks_in_xtoks_voice(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    env = {**base_env(), "XTOK_STATE_DIR": str(state)}
    request = run_xtok(
        ["request", "--secret", "DB=/prod/db", "--role", "arn:aws:iam::123456789012:role/r"], env
    )
    assert request.code == 0, request.err
    with _terminal(["approve", request.out.splitlines()[0]], env) as (pid, fd, seen):
        _read_until(fd, b"Approve? [y/N]", seen)
        os.write(fd, b"maybe\r")
        _read_until(fd, b"please answer y or n", seen)
        os.write(fd, b"n\r")
        code = _exit_code(pid, fd, seen)
    assert code == 210 and "not approved" in seen.decode()
    assert "Error:" not in seen.decode()


def test_a_token_pasted_in_the_commands_place_is_not_echoed() -> None:
    token = _token()
    res = run_xtok([token], base_env())
    assert res.code == 200 and "no such command" in res.err
    assert token[:12] not in res.both
    typo = run_xtok(["secre"], base_env())  # a mistyped command is named, with suggestions
    assert typo.code == 200 and "'secre'" in typo.err and "'secret'" in typo.err
