"""Files at paths another process of the same user could have filled first: a FIFO there must
make xtok fail at once, with its one-line reason and a tip, never block (a FIFO opened or read
waits for a writer for ever). The real CLI in a subprocess; run_xtok's timeout only detects a
hang. The run's own request state is tested with the sealed flow (test_sealed.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Result, aws_env, base_env, run_xtok

from xtok.regular_file import NotRegularFile, open_regular, read_regular


def _fifo(path: Path) -> Path:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.mkfifo(path, 0o600)
    return path


def _refused(res: Result, what: str, path: Path) -> None:
    assert res.code == 208, res.err
    assert f"xtok: error: {what} {path} is a FIFO, not a regular file" in res.err
    assert "\n  tip: " in res.err and len(res.err.strip().splitlines()) == 2, res.err


def test_token_file(tmp_path: Path) -> None:
    fifo = _fifo(tmp_path / "token")
    res = run_xtok(
        ["run", "--token-file", str(fifo), "--secret", "A=a/b", "--", "echo", "ran"], base_env()
    )
    _refused(res, "token file", fifo)
    assert "--token-stdin" in res.err and "ran" not in res.out


def test_master_key_file(tmp_path: Path) -> None:
    fifo = _fifo(tmp_path / "master.key")
    args = ["server", "--dev", "--listen", "127.0.0.1:0", "--master-key-file", str(fifo)]
    _refused(run_xtok(args, {**base_env(), "TMPDIR": str(tmp_path)}), "master key file", fifo)
    assert [p.name for p in tmp_path.iterdir()] == ["master.key"]  # no data left behind


@pytest.mark.parametrize("name", ["xtok.db", "xtok.db-wal", "xtok.db.lock"])
def test_data_files(
    tmp_path: Path, initialised: tuple[Path, Path, dict[str, str]], name: str
) -> None:
    data, key_file, _ = initialised
    (data / name).unlink(missing_ok=True)
    fifo = _fifo(data / name)
    res = run_xtok(["audit", "--data", str(data), "--master-key-file", str(key_file)], base_env())
    _refused(res, "data file", fifo)


def test_tls_files(tmp_path: Path) -> None:
    fifo = _fifo(tmp_path / "cert.pem")
    args = ["server", "--dev", "--listen", "127.0.0.1:0", "--tls-cert", str(fifo)]
    res = run_xtok([*args, "--tls-key", str(fifo)], {**base_env(), "TMPDIR": str(tmp_path)})
    _refused(res, "TLS certificate", fifo)


def test_approval_history(tmp_path: Path) -> None:
    env = {**base_env(), "XTOK_STATE_DIR": str(tmp_path / "s"), "XDG_STATE_HOME": str(tmp_path)}
    role = "arn:aws:iam::123456789012:role/deploy"
    res = run_xtok(["request", "--secret", "A=a/b", "--role", role], env)
    assert res.code == 0, res.err
    fifo = _fifo(tmp_path / "xtok" / "approved.json")
    _refused(run_xtok(["approve", res.out.split()[0], "--yes"], env), "approval history", fifo)


def test_approver_config(tmp_path: Path) -> None:
    fifo = _fifo(tmp_path / "xtok" / "approver.toml")
    env = {**aws_env("http://127.0.0.1:9"), "XDG_CONFIG_HOME": str(tmp_path)}
    res = run_xtok(["inbox", "--relay", "http://127.0.0.1:9", "--no-browser"], env)
    _refused(res, "approver config", fifo)


@pytest.mark.parametrize(
    ("option", "what"), [("--webhooks", "webhooks file"), ("--run-keys", "run keys file")]
)
def test_relay_files(tmp_path: Path, option: str, what: str) -> None:
    fifo = _fifo(tmp_path / "file")
    args = ["relay", "--listen", "127.0.0.1:0", "--approver", "*", "--data", str(tmp_path / "d")]
    _refused(run_xtok([*args, option, str(fifo)], base_env()), what, fifo)


def test_a_memory_is_never_rewritten_through_a_fifo(tmp_path: Path) -> None:
    """The approver's memories (approved.json, oidc-seen.json) are rewritten through a
    temporary file: a FIFO there, with no reader, blocked the open for writing."""
    _fifo(tmp_path / "oidc-seen.tmp")
    code = (
        "import sys; from pathlib import Path; from xtok.approval.oidc import FileSeen\n"
        "FileSeen(Path(sys.argv[1])).claim('token-hash', 'key-digest', 2**31)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "oidc-seen.json")],
        capture_output=True,
        text=True,
        timeout=60,  # only detects a hang
        check=False,
    )
    assert "NotRegularFile: OIDC proof memory" in proc.stderr, proc.stderr
    assert "oidc-seen.tmp is a FIFO" in proc.stderr
    assert not (tmp_path / "oidc-seen.json").exists()


def test_every_other_kind_is_refused(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "sock"))
        (tmp_path / "dev").symlink_to(os.devnull)
        (tmp_path / "file").write_text("content")
        (tmp_path / "link").symlink_to(tmp_path / "file")
        kinds = {
            "dir": "a directory",
            "sock": "a socket",
            "dev": "a device",  # through a link, where links are followed
        }
        for name, kind in kinds.items():
            for flags in (os.O_RDONLY, os.O_WRONLY, os.O_RDWR | os.O_CREAT):
                with pytest.raises(NotRegularFile, match=f"is {kind}, not a regular file"):
                    open_regular(tmp_path / name, flags, what="file")
        with pytest.raises(NotRegularFile, match="is a symbolic link"):
            read_regular(tmp_path / "link", what="state", follow=False)
        assert read_regular(tmp_path / "link", what="config") == b"content"
        with pytest.raises(FileNotFoundError):
            read_regular(tmp_path / "missing", what="config")
