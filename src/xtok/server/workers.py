"""Serving from several processes, and stopping cleanly on SIGTERM.

Workers are forked after the listening socket is bound, so the kernel spreads connections
over them; each opens the database anew (SQLite connections must not cross a fork). The
supervisor passes SIGTERM and SIGINT on, and stops all workers when one ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator

from xtok.errors import Error

_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


class _Stopped(Exception):
    """SIGTERM arrived."""


def _raise_stopped(*_: object) -> None:
    raise _Stopped


@contextlib.contextmanager
def until_sigterm() -> Iterator[None]:
    """Within, SIGTERM ends the block, running its clean-ups (e.g. removing --dev's throw-away
    data), rather than the process. uvicorn handles SIGTERM itself while it serves, then
    raises it again once it has shut down: that lands here too."""
    previous = signal.signal(signal.SIGTERM, _raise_stopped)
    try:
        with contextlib.suppress(_Stopped):
            yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _fork(work: Callable[[], None]) -> int:
    pid = os.fork()
    if pid == 0:  # the worker: never return into the caller's code (and its clean-ups)
        code = 0
        try:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
            work()
        except _Stopped:
            pass
        except BaseException as exc:
            reason = exc.diagnostics() if isinstance(exc, Error) else type(exc).__name__
            print(f"xtok server: worker {os.getpid()} failed: {reason}", file=sys.stderr)
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return pid


def run_workers(count: int, work: Callable[[], None]) -> None:
    """Run `work` in `count` forked processes until they end; see `_supervise`."""
    # A stop signal waits until every worker exists and the supervisor can pass it on.
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    _supervise([_fork(work) for _ in range(count)])


def _supervise(workers: list[int]) -> None:
    """Wait for the workers; SIGTERM or SIGINT here, or any worker ending, stops them all
    (a half-served endpoint would fail some requests and not others)."""
    running = set(workers)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        if not stopping:  # once: a second signal makes uvicorn skip its graceful shutdown
            stopping = True
            for pid in running:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    failed = False
    while running:
        pid, status = os.wait()
        running.discard(pid)
        failed |= os.waitstatus_to_exitcode(status) != 0
        stop()
    if failed:
        raise Error("a server worker stopped unexpectedly", tip="see the messages above")
