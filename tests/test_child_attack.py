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
from dataclasses import dataclass
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


@dataclass(frozen=True)
class User:
    argv: list[str]  # runs a python with xtok as the unprivileged user
    pythonpath: str


@pytest.fixture(scope="module")
def user(home: Path) -> User:
    """An interpreter the unprivileged user may execute (also from its own processes), with
    this venv's packages; if it cannot read them where they are, with a copy it can read."""
    if os.getuid() != 0:
        return User([sys.executable], _venv_path())  # already unprivileged
    prefix = ["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups"]
    nested = (
        "import subprocess, sys; "
        "subprocess.run([sys.executable, '-c', 'import xtok.cli'], check=True)"
    )
    for path in (_venv_path, lambda: _readable_copy(home / "lib")):
        pythonpath = path()
        for python in (sys.executable, getattr(sys, "_base_executable", ""), "/usr/bin/python3"):
            probe = subprocess.run(
                [*prefix, python, "-c", nested],
                capture_output=True,
                env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": pythonpath},
                check=False,
            )
            if python and probe.returncode == 0:
                return User([*prefix, python], pythonpath)
    raise AssertionError(f"uid {NOBODY} can execute no python here")


def _venv_path() -> str:
    import xtok

    paths = [str(Path(xtok.__file__).parent.parent), *(p for p in sys.path if "site-packages" in p)]
    return os.pathsep.join(paths)


def _readable_copy(dest: Path) -> str:
    """xtok and the distributions it needs at run time, copied to `dest` (world-readable)."""
    import importlib.metadata as md

    from packaging.requirements import Requirement

    import xtok

    shutil.copytree(Path(xtok.__file__).parent, dest / "xtok", dirs_exist_ok=True)
    todo, done = ["xtok"], set()
    while todo:
        dist = md.distribution(todo.pop())
        if dist.metadata["Name"].lower() in done:
            continue
        done.add(dist.metadata["Name"].lower())
        for text in dist.requires or []:
            req = Requirement(text)
            if not req.marker or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
        if dist.metadata["Name"].lower() == "xtok":
            continue
        for file in dist.files or []:
            source = Path(str(dist.locate_file(file)))
            if source.is_file() and ".." not in file.parts:
                (dest / file).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(source, dest / file)
    dest.chmod(0o755)
    return str(dest)


@pytest.fixture(scope="module")
def admin(xtok_server: DevServer, user: User) -> dict[str, str]:
    return {
        **aws_env(xtok_server.url, xtok_server.access_key_id, xtok_server.secret_access_key),
        "PYTHONPATH": user.pythonpath,
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
    user: User, args: list[str], env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*user.argv, "-m", "xtok", *args],
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
    user: User,
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
        user,
        [
            "run",
            *xtok_args,
            "--",
            user.argv[-1],
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
    user: User, home: Path, admin: dict[str, str], role: str
) -> None:
    token = mint(admin, role)
    creds = tokens.parse(token)
    env = {**admin, "XTOK_STATE_DIR": str(home / "state"), "HOME": str(home)}
    (home / "state").mkdir(mode=0o700, exist_ok=True)
    if os.getuid() == 0:
        os.chown(home / "state", NOBODY, NOBODY)
    report = attack(
        user,
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
    user: User, home: Path, admin: dict[str, str], role: str
) -> None:
    """Two pending requests of the same user on the agent: the run's own, and another job's
    whose answer the attacker holds. Neither opens for the command."""
    state = home / "sealed-state"
    env = {**admin, "XTOK_STATE_DIR": str(state), "HOME": str(home)}
    pending = []
    for _ in range(2):
        res = as_nobody(user, ["request", "--secret", "DB=attack/db", "--role", role], env)
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
        user,
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
        user,
        ["run", "--sealed", "--", "true"],
        {**env, "XTOK_TICKET": theirs, "XTOK_TOKEN": their_sealed},
    )
    assert res.returncode == 0, res.stderr
