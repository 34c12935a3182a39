"""The endpoint's files on disk, as an unprivileged user would get them: names, policies and the
audit log are not encrypted, so the data directory is 0700 and the database with its -wal and
-shm files 0600 whatever the umask, and a directory another user owns is refused."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from conftest import base_env

NOBODY = 65534
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="running as another user needs root (CI runs as root)"
)


@pytest.fixture
def home() -> Iterator[Path]:
    """A directory of the unprivileged user (pytest's tmp_path is not reachable for it)."""
    path = Path(tempfile.mkdtemp(prefix="xtok-files-"))
    path.chmod(0o755)
    os.chown(path, NOBODY, NOBODY)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def as_nobody(*args: str) -> list[str]:
    """`xtok ARGS` as user 65534 (run it with umask=0o022, the common default)."""
    user = [f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    return ["setpriv", *user, sys.executable, "-m", "xtok", *args]


def env_for(home: Path) -> dict[str, str]:
    return {**base_env(), "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}


def mode(path: Path) -> str:
    return oct(path.stat().st_mode & 0o777)


def test_database_files_are_private_whatever_the_umask(home: Path) -> None:
    data, key = home / "data", home / "master.key"
    mkdir = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "mkdir"]
    subprocess.run([*mkdir, "-m", "755", str(data)], check=True)
    init = subprocess.run(
        as_nobody("server", "init", "--data", str(data), "--master-key-file", str(key)),
        capture_output=True,
        text=True,
        env=env_for(home),
        umask=0o022,
        check=False,
    )
    assert init.returncode == 0, init.stderr
    exports = dict(word.split("=", 1) for word in init.stdout.split()[1:])
    assert mode(data) == "0o700"
    server = subprocess.Popen(
        as_nobody(
            "server",
            "--data",
            str(data),
            "--master-key-file",
            str(key),
            "--listen",
            "127.0.0.1:0",
        ),
        stderr=subprocess.PIPE,
        text=True,
        env=env_for(home),
        umask=0o022,
    )
    try:
        assert server.stderr is not None
        url = server.stderr.readline().rsplit(" on ", 1)[1].strip()
        sm = boto3.client(
            "secretsmanager",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
        )
        sm.create_secret(Name="files/s", SecretString="v")
        files = sorted(p.name for p in data.iterdir())
        assert files == ["xtok.db", "xtok.db-shm", "xtok.db-wal", "xtok.db.lock"]
        for name in files:
            assert mode(data / name) == "0o600", name
            assert (data / name).stat().st_uid == NOBODY
        assert mode(data) == "0o700"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_data_directory_of_another_user_is_refused(home: Path) -> None:
    data = home / "data"
    data.mkdir(mode=0o777)  # root's, and writable by anyone
    data.chmod(0o777)
    res = subprocess.run(
        as_nobody("server", "init", "--data", str(data), "--master-key-file", str(home / "k")),
        capture_output=True,
        text=True,
        env=env_for(home),
        umask=0o022,
        check=False,
    )
    assert res.returncode == 208, res.stderr
    assert "belongs to another user" in res.stderr and "Traceback" not in res.stderr
    assert list(data.iterdir()) == []


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_a_master_key_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    """The master key file is read as the webhooks file is: refused, with the chmod to run,
    while its group or others have any access to it."""
    from xtok.errors import ConfigError
    from xtok.server.crypto import encode_key, load_master_key, new_key

    key = tmp_path / "master.key"
    key.write_text(encode_key(new_key()) + "\n")
    key.chmod(mode)
    with pytest.raises(ConfigError, match="readable by others") as refused:
        load_master_key(key)
    assert refused.value.tip == f"chmod 600 {key}"
    key.chmod(0o600)
    assert len(load_master_key(key)) == 32
