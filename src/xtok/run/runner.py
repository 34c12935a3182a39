"""Running the command: secrets in, masked output out, nothing left behind.

The child gets the secrets (in its environment, or as 0600 files in a private 0700 directory on
tmpfs where available) and never the token, any AWS credential or any `XTOK_*` setting (which
could point at the token or the request state). Its stdout and stderr are each relayed through
their own `Masker`. Every catchable signal that would end xtok is forwarded to the child, so xtok
outlives it and removes the secret files; if xtok is killed outright (SIGKILL), the child dies
with it and a janitor process removes the files (see `isolation`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import FrameType

from xtok.errors import Interrupted, LaunchError, UsageError
from xtok.refs import SecretRef
from xtok.run.isolation import Janitor, die_with_parent
from xtok.run.mask import Masker, Patterns, warn_short
from xtok.run.variants import patterns_for
from xtok.sensitive import Secret

# Every signal whose default action ends xtok and that a handler can catch.
_FORWARDED = "INT TERM HUP QUIT USR1 USR2 ALRM VTALRM PROF XCPU XFSZ IO PWR STKFLT"
FORWARDED_SIGNALS = tuple(
    getattr(signal, f"SIG{n}") for n in _FORWARDED.split() if hasattr(signal, f"SIG{n}")
)
# Bigger pipes and reads than the default 64 KiB: fewer trips through the masker's per-read cost
# (bench/mask_throughput.py). Pipes may grow to /proc/sys/fs/pipe-max-size (1 MiB by default).
_PIPE_SIZE = 1 << 20
_READ_SIZE = 1 << 18
# What the child must not inherit: xtok's own AWS identity, the token, and xtok's settings
# (XTOK_TOKEN_FILE, XTOK_STATE_DIR, XTOK_TICKET … point at the token or the request state).
_DROPPED_PREFIXES = ("AWS_", "XTOK_")


def child_environment(
    base: dict[str, str], secrets: dict[str, str], drop: Iterable[str] = ()
) -> dict[str, str]:
    dropped = set(drop)
    env = {
        k: v for k, v in base.items() if not k.startswith(_DROPPED_PREFIXES) and k not in dropped
    }
    env.update(secrets)
    return env


def private_dir() -> str:
    """A new 0700 directory, on tmpfs (/dev/shm, $XDG_RUNTIME_DIR) when one is writable."""
    for candidate in ("/dev/shm", os.environ.get("XDG_RUNTIME_DIR")):  # noqa: S108
        if candidate and os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
            return tempfile.mkdtemp(prefix="xtok-", dir=candidate)
    return tempfile.mkdtemp(prefix="xtok-")


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def check_outputs() -> None:
    """Refuse to run with xtok's stdout or stderr closed: the command's output would go to
    whatever descriptor took that number since (one of xtok's own pipes, sockets or files)."""
    for name, stream in (("stdout", sys.__stdout__), ("stderr", sys.__stderr__)):
        if stream is None:  # Python found the descriptor closed at start-up
            raise UsageError(
                f"xtok's {name} is closed: the command's output would have nowhere to go",
                tip="open it: redirect it to a file, or to /dev/null to discard the output",
            )


class _Forwarder:
    """Forwards signals to the child; remembers one that came before the child existed."""

    def __init__(self) -> None:
        self.child: subprocess.Popen[bytes] | None = None
        self.pending: int | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.child is not None and self.child.returncode is None:
            self.child.send_signal(signum)
        else:
            self.pending = signum

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        previous = {s: signal.signal(s, self) for s in FORWARDED_SIGNALS}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


def run(
    command: Sequence[str],
    secrets: Sequence[tuple[SecretRef, Secret]],
    *,
    drop_env: Iterable[str] = (),
    stdin_devnull: bool = False,
) -> int:
    """Run `command` with `secrets`; return its exit status (128+N if killed by signal N)."""
    patterns: list[bytes] = []
    for ref, value in secrets:
        warn_short(ref.env, value.reveal())
        patterns += patterns_for(value.reveal())
    forwarder = _Forwarder()
    with forwarder.installed():
        tmp: str | None = None
        janitor: Janitor | None = None
        try:
            values: dict[str, str] = {}
            files = [(ref, value) for ref, value in secrets if ref.as_file]
            if files:
                tmp = private_dir()
                janitor = Janitor(tmp)
                for ref, value in files:
                    path = Path(tmp) / ref.env
                    _write_private(path, value.reveal())
                    values[ref.env] = str(path)
            values.update(
                (ref.env, value.reveal_text()) for ref, value in secrets if not ref.as_file
            )
            if forwarder.pending is not None:
                raise Interrupted(f"received signal {forwarder.pending} before the command started")
            env = child_environment(dict(os.environ), values, drop_env)
            try:
                child = subprocess.Popen(
                    list(command),
                    env=env,
                    stdin=subprocess.DEVNULL if stdin_devnull else None,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    preexec_fn=die_with_parent(),  # xtok runs no other thread: fork is safe
                )
            except FileNotFoundError:
                raise LaunchError(
                    f"command not found: {command[0]}", tip="check the command after --, and PATH"
                ) from None
            except PermissionError:
                raise LaunchError(f"command not executable: {command[0]}") from None
            forwarder.child = child
            if forwarder.pending is not None:
                child.send_signal(forwarder.pending)
            _relay(child, patterns)
            status = child.wait()
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            if janitor is not None:
                janitor.stop()
    return 128 - status if status < 0 else status


def _relay(child: subprocess.Popen[bytes], patterns: list[bytes]) -> None:
    """Copy the child's stdout/stderr to ours through a masker each, until both close.

    When our side of a stream is closed (`xtok run … | head`), the child's pipe is closed too,
    so the child meets a broken pipe exactly as it would without xtok in between; so it is
    when our side fails otherwise (a full disk), with a warning.
    """
    if child.stdout is None or child.stderr is None:
        raise RuntimeError("the child was started without pipes")
    with contextlib.suppress(ImportError):  # where the masker's C extension is built
        from xtok.run._hsmask import keep_heap

        keep_heap()
    sel = selectors.DefaultSelector()
    compiled = Patterns(patterns)  # one compiled set; a masker (and its held tail) per stream
    for pipe, out_fd in ((child.stdout, 1), (child.stderr, 2)):
        with contextlib.suppress(OSError, AttributeError):  # Linux only
            fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
        sel.register(pipe.fileno(), selectors.EVENT_READ, (Masker(compiled), out_fd, pipe))

    while sel.get_map():
        for key, _ in sel.select():
            masker, out_fd, pipe = key.data
            data = os.read(key.fd, _READ_SIZE)
            try:
                delivered = masker.write(out_fd, data, end=not data)
            except OSError as exc:  # ENOSPC, EIO …: no bug of xtok's; as if the reader had gone
                _warn_unwritable(out_fd, exc)
                delivered = False
            if not data or not delivered:
                sel.unregister(key.fd)
                pipe.close()
    sel.close()


def _warn_unwritable(fd: int, exc: OSError) -> None:
    name = "stdout" if fd == 1 else "stderr"
    reason = exc.strerror or type(exc).__name__
    with contextlib.suppress(OSError):  # stderr may be the output that fails
        print(
            f"xtok: warning: cannot write the command's {name} ({reason}): closing it, as if "
            "its reader had gone",
            file=sys.stderr,
            flush=True,
        )
