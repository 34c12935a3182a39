"""Shared by the benchmarks: a dev endpoint with secrets stored and a token minted."""

from __future__ import annotations

import compileall
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import xtok
from xtok.server.bootstrap import clean_environment, spawn_dev


@contextmanager
def endpoint(secrets: dict[str, bytes]) -> Iterator[dict[str, str]]:
    """Start `xtok server --dev`, store `secrets` (name -> value), and yield an environment
    with the endpoint, its admin keys and an `XTOK_TOKEN`."""
    # Timed commands must not compile xtok's sources on every start, as they would where
    # PYTHONDONTWRITEBYTECODE is set (an editable install compiles nothing; `pip install`
    # compiles at install time, as it did the aws CLI's).
    compileall.compile_dir(Path(xtok.__file__).parent, quiet=1)
    proc, exports = spawn_dev()
    try:
        env = {**clean_environment(), **exports}
        for name, value in secrets.items():
            subprocess.run(
                [sys.executable, "-m", "xtok", "secret", "put", name],
                input=value,
                env=env,
                check=True,
                capture_output=True,
            )
        token = subprocess.run(
            [sys.executable, "-m", "xtok", "token"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        yield {**env, "XTOK_TOKEN": token}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
