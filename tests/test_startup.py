"""Start-up: commands load lazily, `--version` needs no click, and xtok exits without the
interpreter's teardown while still running atexit handlers and flushing its output.

(How fast that is lives in bench/run_overhead.py: tests never time anything.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import click.testing

from xtok.cli import app


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_version_prints_what_click_would_without_loading_click() -> None:
    proc = python(
        "import sys; from xtok.cli import main; main(['--version']); "
        "print(sorted(m for m in sys.modules if m == 'click' or m.startswith('xtok.cli.')))"
    )
    assert proc.returncode == 0, proc.stderr
    version, loaded = proc.stdout.splitlines()
    assert loaded == "[]"
    clicked = click.testing.CliRunner().invoke(app.cli, ["--version"], prog_name="xtok")
    assert version + "\n" == clicked.output


def test_one_command_loads_only_its_own_module() -> None:
    proc = python(
        "import sys; from xtok.cli import main; main(['policy', 'session', '--secret', 'a']); "
        "print(sorted(m for m in sys.modules if m.startswith('xtok.cli.')), file=sys.stderr)"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "['xtok.cli.app', 'xtok.cli.policy']"


def test_every_command_is_mapped_to_the_module_that_registers_it() -> None:
    group = app.load_all()
    assert set(group.commands) == {*app.COMMAND_MODULES, "completion"}
    for name, module in app.COMMAND_MODULES.items():
        callback = group.commands[name].callback
        assert callback is not None
        assert callback.__module__ == f"xtok.cli.{module}", name


def test_help_lists_every_command(capsys: object) -> None:
    proc = python("from xtok.cli import main; main(['--help'])")
    listed = {line.split()[0] for line in proc.stdout.split("Commands:")[1].splitlines() if line}
    assert listed == {*app.COMMAND_MODULES, "completion"}


def test_exit_runs_atexit_handlers_and_flushes_piped_output() -> None:
    proc = python(
        "import atexit, sys; atexit.register(lambda: print('atexit ran', file=sys.stderr)); "
        "sys.argv = ['xtok', 'policy', 'session', '--secret', 'a']; "
        "from xtok.cli import entry; entry()"
    )
    assert proc.returncode == 0
    assert '"Version": "2012-10-17"' in proc.stdout  # block-buffered (a pipe), yet all there
    assert proc.stderr == "atexit ran\n"


def test_exit_status_is_kept_and_an_unwritable_stdout_fails_without_traceback() -> None:
    usage = subprocess.run(
        [sys.executable, "-m", "xtok", "run"], capture_output=True, timeout=60, check=False
    )
    assert usage.returncode == 200  # ExitCode.USAGE
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "xtok", "--version"],
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    assert proc.returncode == 120
    assert b"Traceback" not in proc.stderr


def test_an_open_sqlite_database_is_closed_at_exit(tmp_path: Path) -> None:
    """A WAL database left open (as the local endpoint leaves its own) is checkpointed and
    its -wal file removed by the ordinary exit, which xtok then does not skip."""
    db = tmp_path / "x.db"
    proc = python(
        "import sqlite3, sys; "
        f"conn = sqlite3.connect({str(db)!r}, isolation_level=None); "
        "conn.execute('PRAGMA journal_mode=WAL'); conn.execute('CREATE TABLE t (x)'); "
        "sys.argv = ['xtok', '--version']; from xtok.cli import entry; entry()"
    )
    assert proc.returncode == 0, proc.stderr
    assert db.exists()
    assert not (tmp_path / "x.db-wal").exists()
