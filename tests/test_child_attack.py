"""The command that `xtok run` starts is hostile, and runs as the same (unprivileged) user.

It reads every `/proc` entry it may (xtok's environ, mem, fds and command line, its janitor,
any other process), the files xtok's command line names and the state directory, and then
tries every sealed token and ticket it found against every pending request. It must find no
token, no ticket, no AWS credential, and open nothing.

Run as uid 65534 through `setpriv`: root reads any process (CAP_SYS_PTRACE), which no
protection of xtok's own can stop.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ACCOUNT, CANARY, ROOT, DevServer, aws_env, run_xtok

from xtok.approval import seal
from xtok.approval.pending import Ticket
from xtok.approval.request import RequestCode
from xtok.tokens import token as tokens

NOBODY = 65534


@pytest.fixture(scope="module")
def home() -> Iterator[Path]:
    """A private (0700) directory of the unprivileged user."""
    path = Path(tempfile.mkdtemp(prefix="xtok-attack-"))
    if os.getuid() == 0:
        os.chown(path, NOBODY, NOBODY)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def as_user(home: Path) -> list[str]:
    """The argv prefix that runs a python with xtok as the unprivileged user: an interpreter
    that user may execute (also from within its own processes), with this venv's packages."""
    if os.getuid() != 0:
        return [sys.executable]  # already unprivileged
    prefix = ["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups"]
    nested = (
        "import subprocess, sys; "
        "subprocess.run([sys.executable, '-c', 'import xtok.cli'], check=True)"
    )
    for python in (sys.executable, getattr(sys, "_base_executable", ""), "/usr/bin/python3"):
        probe = subprocess.run(
            [*prefix, python, "-c", nested],
            capture_output=True,
            env=_unprivileged_env(),
            check=False,
        )
        if python and probe.returncode == 0:
            return [*prefix, python]
    raise AssertionError(
        f"uid {NOBODY} cannot run a python with xtok: make the checkout and its .venv "
        "readable (o+rX) for the unprivileged tests"
    )


def _unprivileged_env() -> dict[str, str]:
    """This venv's packages and xtok's source on the path, for whichever interpreter runs."""
    import xtok

    paths = [str(Path(xtok.__file__).parent.parent), *(p for p in sys.path if "site-packages" in p)]
    return {**aws_env("http://127.0.0.1:9"), "PYTHONPATH": os.pathsep.join(paths)}


@pytest.fixture(scope="module")
def admin(xtok_server: DevServer) -> dict[str, str]:
    return {
        **aws_env(xtok_server.url, xtok_server.access_key_id, xtok_server.secret_access_key),
        "PYTHONPATH": _unprivileged_env()["PYTHONPATH"],
    }


@pytest.fixture(scope="module")
def role(admin: dict[str, str]) -> str:
    assert run_xtok(["secret", "put", "attack/db"], admin, stdin=CANARY).code == 0
    res = run_xtok(
        [
            "setup",
            "aws",
            "--role-name",
            "attack",
            "--trust",
            f"arn:aws:iam::{ACCOUNT}:user/admin",
            "--unsafe-no-mfa",
            "--prefix",
            "attack/",
        ],
        admin,
    )
    assert res.code == 0, res.err
    return f"arn:aws:iam::{ACCOUNT}:role/attack"


def mint(admin: dict[str, str], role: str) -> str:
    res = run_xtok(["token", "--role", role, "--secret", "attack/db"], admin)
    assert res.code == 0, res.err
    return res.out.strip()


def as_nobody(
    as_user: list[str], args: list[str], env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*as_user, "-m", "xtok", *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        cwd=tempfile.gettempdir(),
        timeout=300,
        check=False,
    )


def needles(**values: str | bytes) -> dict[str, str]:
    return {k: (v.encode() if isinstance(v, str) else v).hex() for k, v in values.items()}


def attack(
    as_user: list[str],
    home: Path,
    env: dict[str, str],
    xtok_args: list[str],
    secrets: dict[str, str],
    foreign: str,
    stdin: str | None = None,
) -> dict[str, Any]:
    """Run the hostile command under `xtok run`, as the unprivileged user; return its report."""
    child = home / "hostile_child.py"
    shutil.copy(ROOT / "tests" / "hostile_child.py", child)
    (home / "needles.json").write_text(json.dumps(secrets))
    (home / "foreign").write_text(foreign)
    report = home / "report.json"
    report.unlink(missing_ok=True)
    for path in (child, home / "needles.json", home / "foreign"):
        path.chmod(0o644)
    res = as_nobody(
        as_user,
        [
            "run",
            *xtok_args,
            "--",
            as_user[-1],
            str(child),
            str(home / "needles.json"),
            str(report),
            env["XTOK_STATE_DIR"],
            str(home / "foreign"),
            env["AWS_ENDPOINT_URL"],
        ],
        env,
        stdin,
    )
    assert res.returncode == 0, res.stderr
    return dict(json.loads(report.read_text()))


def test_plain_run_hides_token_and_credentials(
    as_user: list[str], home: Path, admin: dict[str, str], role: str
) -> None:
    token = mint(admin, role)
    creds = tokens.parse(token)
    env = {**admin, "XTOK_STATE_DIR": str(home / "state"), "HOME": str(home)}
    (home / "state").mkdir(mode=0o700, exist_ok=True)
    if os.getuid() == 0:
        os.chown(home / "state", NOBODY, NOBODY)
    report = attack(
        as_user,
        home,
        env,
        ["--token-stdin", "--secret", "DB=attack/db", "--secret-file", "F=attack/db"],
        needles(
            token=token,
            token_secret_key=creds.secret_access_key.reveal(),
            token_session=creds.session_token.reveal(),
            admin_secret_key=admin["AWS_SECRET_ACCESS_KEY"],
            admin_key_id=admin["AWS_ACCESS_KEY_ID"],
        ),
        foreign="",
        stdin=token,
    )
    assert report["found"] == []
    for what in ("environ", "mem", "fds"):
        assert report["denied"].get(f"parent {what}") == "PermissionError", report["denied"]


def test_sealed_run_hides_ticket_keys_and_credentials(
    as_user: list[str], home: Path, admin: dict[str, str], role: str
) -> None:
    """Two pending requests of the same user on the agent: the run's own, and another job's
    whose answer the attacker holds. Neither opens for the command."""
    state = home / "sealed-state"
    env = {**admin, "XTOK_STATE_DIR": str(state), "HOME": str(home)}
    pending = []
    for _ in range(2):
        res = as_nobody(as_user, ["request", "--secret", "DB=attack/db", "--role", role], env)
        assert res.returncode == 0, res.stderr
        code, ticket = res.stdout.split()
        plain = mint(admin, role)  # what an approver seals: known here, to search for
        sealed = seal.seal(RequestCode.parse(code), tokens.parse(plain)).encode()
        pending.append((ticket, plain, sealed))
    (mine, my_plain, my_sealed), (theirs, their_plain, their_sealed) = pending
    token_file = home / "approval.txt"
    token_file.write_text(my_sealed)
    token_file.chmod(0o644)
    creds = tokens.parse(my_plain)
    report = attack(
        as_user,
        home,
        {**env, "XTOK_TICKET": mine},
        ["--sealed", "--token-file", str(token_file)],
        needles(
            my_ticket=mine,
            my_ticket_key=Ticket.parse(mine).key,
            their_ticket=theirs,
            their_ticket_key=Ticket.parse(theirs).key,
            my_secret_key=creds.secret_access_key.reveal(),
            my_session=creds.session_token.reveal(),
            my_plain=my_plain,
            their_plain=their_plain,
            admin_secret_key=admin["AWS_SECRET_ACCESS_KEY"],
        ),
        foreign=their_sealed,
    )
    assert report["found"] == []
    assert report["opened"] == []
    assert report["tried"][0] >= 2  # its own (used) token from the file, and the other job's
    # The other job is unharmed: its own ticket still opens its answer.
    res = as_nobody(
        as_user,
        ["run", "--sealed", "--", "true"],
        {**env, "XTOK_TICKET": theirs, "XTOK_TOKEN": their_sealed},
    )
    assert res.returncode == 0, res.stderr
