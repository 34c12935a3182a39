"""Shared by the benchmarks: a dev endpoint with secrets stored and a token minted."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from xtok.server.bootstrap import clean_environment, spawn_dev


@contextmanager
def endpoint(secrets: dict[str, bytes]) -> Iterator[dict[str, str]]:
    """Start `xtok server --dev`, store `secrets` (name -> value), and yield an environment
    with the endpoint, its admin keys and an `XTOK_TOKEN`."""
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
