"""Serving from several processes, and stopping cleanly on SIGTERM or SIGINT at any moment.

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

import uvicorn

from xtok.errors import Error

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


@contextlib.contextmanager
def stop_signals_held() -> Iterator[None]:
    """Within, SIGTERM and SIGINT wait (blocked) except while uvicorn's own handlers are in
    place (`bootstrap.serve_app` lets them in there): uvicorn then shuts down and raises the
    signal again, which waits too. On leaving, a waiting SIGTERM is consumed, so the block's
    clean-ups (e.g. removing --dev's throw-away data) have run and the process ends normally;
    a waiting SIGINT then raises KeyboardInterrupt as usual.

    Why not a Python handler that raises: it runs wherever the main thread happens to be, and
    an exception raised inside a finalizer or weakref callback (importlib runs one per module
    imported) or an event-loop callback is only printed ("Exception ignored"). A SIGTERM in
    the first instants of start-up was lost that way and the server served on for ever."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        while signal.sigtimedwait([signal.SIGTERM], 0) is not None:
            pass
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class Server(uvicorn.Server):
    """uvicorn's server, letting held stop signals in only while its own handlers are there to
    take them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            previous = signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
            try:
                yield
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _fork(work: Callable[[], None]) -> int:
    pid = os.fork()
    if pid == 0:  # the worker: never return into the caller's code (and its clean-ups)
        code = 0
        try:
            work()  # stop signals stay held until uvicorn's handlers are in place
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
    with stop_signals_held():
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

    previous = {s: signal.signal(s, stop) for s in STOP_SIGNALS}
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    failed = False
    try:
        while running:
            pid, status = os.wait()
            running.discard(pid)
            failed |= os.waitstatus_to_exitcode(status) != 0
            stop()
    finally:
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        for s, handler in previous.items():
            signal.signal(s, handler)
    if failed:
        raise Error("a server worker stopped unexpectedly", tip="see the messages above")
