"""Keeping the command away from xtok, and xtok's leftovers away from everyone.

- `make_undumpable`: after `prctl(PR_SET_DUMPABLE, 0)` a process of the same user (the command
  xtok runs, another job on the agent) can no longer read xtok's `/proc/PID/environ`, `mem`,
  `maps`, `fd/` or attach a debugger; only world-readable entries such as `cmdline` and `status`
  stay. It does not hold against root (CAP_SYS_PTRACE).
- `die_with_parent`: the child gets SIGKILL when xtok dies, even of SIGKILL.
- `Janitor`: a forked watcher removes the secret files' directory when xtok dies of SIGKILL.
  (memfd_create would leave no file at all, but a `/dev/fd/N` path works only while every
  program between xtok and the reader keeps the descriptor open; many close them.)
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import sys
from collections.abc import Callable

from xtok.errors import ConfigError

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


def make_undumpable() -> None:
    """Make this process's memory and environment unreadable to other processes of its user."""
    if not sys.platform.startswith("linux"):
        return  # no /proc to protect
    try:
        _prctl(_PR_SET_DUMPABLE, 0)
    except OSError as exc:
        raise ConfigError(
            f"cannot protect xtok's memory from the command (prctl: {exc.strerror})",
            tip="run xtok on Linux with prctl available",
        ) from None


def die_with_parent() -> Callable[[], None]:
    """A `preexec_fn` that makes the child die with this process (PR_SET_PDEATHSIG)."""
    parent = os.getpid()

    def preexec() -> None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the prctl took effect
            os._exit(1)

    return preexec


class Janitor:
    """A forked process that removes `path` when xtok dies without doing it itself.

    It runs in its own session, so signals for the job's process group never reach it, and
    learns of xtok's death by PR_SET_PDEATHSIG (SIGTERM)."""

    def __init__(self, path: str) -> None:
        parent = os.getpid()
        self.pid = os.fork()
        if self.pid == 0:  # pragma: no cover - runs in the forked process
            self._watch(path, parent)

    @staticmethod
    def _watch(path: str, parent: int) -> None:
        try:
            os.setsid()
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):  # hold none of xtok's pipes: readers see EOF when xtok ends
                os.dup2(null, fd)
            for sig in signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}:
                with contextlib.suppress(OSError, ValueError):
                    signal.signal(sig, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
            _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() == parent:  # else xtok is already gone
                signal.sigwait({signal.SIGTERM})
        finally:
            shutil.rmtree(path, ignore_errors=True)
            os._exit(0)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
