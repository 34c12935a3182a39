"""The hardened runner, through the real `xtok run` against `xtok server --dev`: secret files
gone on every exit path, signals forwarded, nothing in any command line, exit statuses, and
output that stays interactive."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CANARY, DevServer, aws_env, run_xtok


@pytest.fixture(scope="module")
def env(xtok_server: DevServer) -> dict[str, str]:
    base = aws_env(xtok_server.url, xtok_server.access_key_id, xtok_server.secret_access_key)
    assert run_xtok(["secret", "put", "runner/canary"], base, stdin=CANARY).code == 0
    token = run_xtok(["token"], base).out.strip()
    return {**base, "XTOK_TOKEN": token}


def start(env: dict[str, str], script: str, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "xtok",
            "run",
            "--secret-file",
            "F=runner/canary",
            "--secret",
            "S=runner/canary",
            *extra,
            "--",
            sys.executable,
            "-c",
            script,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_for(path: Path) -> str:
    for _ in range(600):
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


@pytest.mark.parametrize(
    "sig",
    [
        signal.SIGTERM,
        signal.SIGINT,
        signal.SIGHUP,
        signal.SIGQUIT,
        signal.SIGUSR1,
        signal.SIGUSR2,
        signal.SIGALRM,
    ],
)
def test_signal_to_xtok_is_forwarded_and_files_removed(
    env: dict[str, str], tmp_path: Path, sig: signal.Signals
) -> None:
    ready, got = tmp_path / "ready", tmp_path / "got"
    script = (
        "import os, signal, sys, time\n"
        f"def handler(n, f):\n    open({str(got)!r}, 'w').write(str(n)); sys.exit(5)\n"
        f"signal.signal({int(sig)}, handler)\n"
        f"open({str(ready)!r}, 'w').write(os.environ['F'])\n"
        "time.sleep(60)\n"
    )
    proc = start(env, script)
    secret_file = Path(wait_for(ready))
    assert secret_file.exists()
    proc.send_signal(sig)
    proc.communicate(timeout=30)
    assert got.read_text() == str(int(sig))  # the child received the same signal
    assert proc.returncode == 5  # and its own exit status came back
    assert not secret_file.exists() and not secret_file.parent.exists()


def command_child(xtok: int) -> int:
    """The command xtok started (not its janitor, which runs in a session of its own)."""
    children = subprocess.run(
        ["pgrep", "-P", str(xtok)], capture_output=True, text=True, check=True
    ).stdout.split()
    (child,) = (int(c) for c in children if os.getsid(int(c)) == os.getsid(xtok))
    return child


def test_files_removed_when_the_child_is_killed(env: dict[str, str], tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    script = f"import os, time; open({str(ready)!r}, 'w').write(os.environ['F']); time.sleep(60)"
    proc = start(env, script)
    secret_file = Path(wait_for(ready))
    os.kill(command_child(proc.pid), signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGKILL
    assert not secret_file.exists()


def test_sigkill_to_xtok_kills_the_child_and_leaves_no_file(
    env: dict[str, str], tmp_path: Path
) -> None:
    ready = tmp_path / "ready"
    script = f"import os, time; open({str(ready)!r}, 'w').write(os.environ['F']); time.sleep(60)"
    proc = start(env, script)
    secret_file = Path(wait_for(ready))
    child = command_child(proc.pid)
    proc.kill()
    proc.communicate(timeout=30)
    for _ in range(600):  # the child and the file go asynchronously: wait, bounded
        gone = not Path(f"/proc/{child}").exists() or _is_zombie(child)
        if gone and not secret_file.parent.exists():
            break
        time.sleep(0.05)
    assert not Path(f"/proc/{child}").exists() or _is_zombie(child), "the child outlived xtok"
    assert not secret_file.exists() and not secret_file.parent.exists()


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_no_secret_in_any_command_line(env: dict[str, str], tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    script = f"import time; open({str(ready)!r}, 'w').write('x'); time.sleep(60)"
    proc = start(env, script)
    wait_for(ready)
    for pid in (proc.pid, command_child(proc.pid)):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        assert CANARY.encode() not in cmdline
        assert env["XTOK_TOKEN"].encode() not in cmdline
        if pid != proc.pid:  # the child: the secret, but no token, no AWS credentials
            assert CANARY.encode() in environ
            assert env["XTOK_TOKEN"].encode() not in environ
            assert b"\0AWS_" not in b"\0" + environ
    proc.terminate()
    proc.communicate(timeout=30)


def test_a_prompt_without_newline_reaches_the_terminal_before_input(env: dict[str, str]) -> None:
    script = (
        "import sys; sys.stdout.write('Password: '); sys.stdout.flush(); "
        "line = sys.stdin.readline(); print('got', len(line.strip()))"
    )
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(
            sys.executable,
            [
                sys.executable,
                "-m",
                "xtok",
                "run",
                "--secret",
                "S=runner/canary",
                "--",
                sys.executable,
                "-c",
                script,
            ],
            env,
        )
    seen = b""
    deadline = time.monotonic() + 30
    while b"Password: " not in seen and time.monotonic() < deadline:
        if select.select([fd], [], [], 1)[0]:
            seen += os.read(fd, 1024)
    assert b"Password: " in seen  # shown while the child still waits for its input
    os.write(fd, b"hello\r")
    while b"got 5" not in seen and time.monotonic() < deadline:
        if select.select([fd], [], [], 1)[0]:
            try:
                seen += os.read(fd, 1024)
            except OSError:
                break
    os.waitpid(pid, 0)
    os.close(fd)
    assert b"got 5" in seen


def test_exit_codes_are_listed_and_distinct(env: dict[str, str]) -> None:
    res = run_xtok(["run", "--help"], env)
    for code in ("200", "201", "202", "205", "209", "215"):
        assert f"  {code}  " in res.out
    assert (
        run_xtok(["run", "--secret", "S=runner/canary", "--", "sh", "-c", "exit 3"], env).code == 3
    )
    assert (
        run_xtok(
            ["run", "--secret", "S=runner/canary", "--", "sh", "-c", "kill -TERM $$"], env
        ).code
        == 128 + 15
    )


def test_short_secret_is_not_masked_and_says_so(env: dict[str, str]) -> None:
    assert run_xtok(["secret", "put", "runner/short"], env, stdin="ab3").code == 0
    res = run_xtok(["run", "--secret", "S=runner/short", "--", "sh", "-c", 'echo "v=$S"'], env)
    assert res.code == 0 and "v=ab3" in res.out
    assert "secret S is shorter than 4 bytes and is not masked" in res.err


# `xtok run` of `yes`, printing the masked canary for ever.
YES_WITH_SECRET = [
    *(sys.executable, "-m", "xtok", "run", "--secret", "S=runner/canary"),
    *("--", "sh", "-c", 'yes "line with $S"'),
]


def test_closed_output_ends_the_child_like_a_plain_pipe(env: dict[str, str]) -> None:
    """`xtok run -- yes | head -3` must end: the child meets the broken pipe."""
    xtok = subprocess.Popen(
        YES_WITH_SECRET,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert xtok.stdout is not None
    lines = [xtok.stdout.readline() for _ in range(3)]
    xtok.stdout.close()  # what `head -3` does after three lines
    assert xtok.wait(timeout=30) == 128 + signal.SIGPIPE
    assert lines == [b"line with ***\n"] * 3


@pytest.mark.parametrize("count", [3, 40, 5000])
def test_output_is_masked_whole_however_many_secrets_a_read_holds(
    env: dict[str, str], count: int
) -> None:
    """A few occurrences in a read go out as views of it (writev), many as one masked copy: the
    output is the same text with each secret masked, byte for byte, either way."""
    script = (
        "import os, sys\n"
        f"count = {count}\n"
        "filler = b'x' * ((3 << 20) // count)\n"
        "for i in range(count):\n"
        "    sys.stdout.buffer.write(b'%d ' % i + filler + b' ' + os.environb[b'S'] + b'\\n')\n"
    )
    proc = start(env, script)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    filler = b"x" * ((3 << 20) // count)
    assert out == b"".join(b"%d " % i + filler + b" ***\n" for i in range(count))


def run_with_closed(fd: int, env: dict[str, str], tmp_path: Path) -> tuple[int, bytes]:
    """`xtok run` started with descriptor `fd` (1 or 2) closed: its status and the other
    stream's bytes."""
    started = tmp_path / "started"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "xtok",
            "run",
            "--secret",
            "S=runner/canary",
            "--",
            "sh",
            "-c",
            f'touch {started}; echo "out $S"; echo "err $S" >&2',
        ],
        env=env,
        stdout=subprocess.PIPE if fd == 2 else None,
        stderr=subprocess.PIPE if fd == 1 else None,
        preexec_fn=lambda: os.close(fd),
    )
    out, err = proc.communicate(timeout=60)
    assert not started.exists()  # refused before the command started
    return proc.returncode, out if fd == 2 else err


def test_a_closed_stdout_or_stderr_is_refused_before_the_command_starts(
    env: dict[str, str], tmp_path: Path
) -> None:
    """Started with its stdout (or stderr) closed, xtok would relay the command's output to
    whatever descriptor took that number since (one of its own pipes, sockets or files; a
    plain command would meet EBADF): it refuses, with one line and a tip, and no traceback."""
    code, err = run_with_closed(1, env, tmp_path)
    assert code == 200
    assert err.decode().splitlines() == [
        "xtok: error: xtok's stdout is closed: the command's output would have nowhere to go",
        "  tip: open it: redirect it to a file, or to /dev/null to discard the output",
    ]
    code, out = run_with_closed(2, env, tmp_path)
    assert code == 200 and out == b""


def test_an_output_that_fails_is_closed_like_a_gone_reader(env: dict[str, str]) -> None:
    """A write to xtok's stdout that fails (here ENOSPC: /dev/full) is no internal error: as
    with a reader gone, xtok closes the command's pipe, so the command meets a broken pipe, and
    says why in one line on stderr."""
    with open("/dev/full", "wb") as full:
        proc = subprocess.run(
            YES_WITH_SECRET,
            env=env,
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=60,
        )
    assert proc.returncode == 128 + signal.SIGPIPE
    assert proc.stderr.decode().splitlines() == [
        "xtok: warning: cannot write the command's stdout (No space left on device): "
        "closing it, as if its reader had gone"
    ]


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["run", "--help"]])
def test_no_traceback_where_xtok_starts_with_its_stdout_closed(args: list[str]) -> None:
    """Python then has no sys.stdout (None): xtok says nothing on it, exits, and shows no
    traceback on stderr."""
    proc = subprocess.run(
        [sys.executable, "-m", "xtok", *args],
        stderr=subprocess.PIPE,
        preexec_fn=lambda: os.close(1),
        timeout=60,
    )
    assert proc.stderr == b""
    # 120: Python's own status where stdout cannot be written
    assert proc.returncode == (120 if args == ["--version"] else 0)
