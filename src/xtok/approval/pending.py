"""A run's pending requests: one-time private keys at rest, usable only with the run's ticket.

`xtok request` hands the step a *ticket* (`xtokt1.…`: the request id and a random 256-bit key)
and keeps the request's private key in the state directory encrypted under the ticket
(ChaCha20-Poly1305, the id as associated data). So a state directory's keys are useless to
any process without the ticket: to the command `xtok run` starts, which never gets it, and to
another job of the same user, which never sees this step's output.

A key is *claimed* by renaming its record (atomic: one claimant wins); a claim that fails
(a wrong ticket, a tampered token) puts the record back, so nothing but a successful open uses
a key up. Records past their wait (`--purge-after`, default 24 h) are purged whenever a request is
made or opened.
"""

from __future__ import annotations

import binascii
import contextlib
import json
import os
import secrets
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from xtok.approval.request import RequestCode
from xtok.errors import ConfigError, TokenError, UsageError
from xtok.regular_file import NotRegularFile, open_regular, read_regular
from xtok.tokens import armor

KIND = "xtokt"
VERSION = 1
STATE_ENV = "XTOK_STATE_DIR"
TICKET_ENV = "XTOK_TICKET"
DEFAULT_WAIT = 24 * 3600
_TIP_TICKET = f"pass the second line `xtok request` printed, in {TICKET_ENV}"
_TIP_NEW = "start a new request (`xtok request`) and ask for a new approval"


@dataclass(frozen=True)
class Ticket:
    """What lets this run, and only it, use its request's key."""

    request_id: str
    key: bytes = field(repr=False)

    def encode(self) -> str:
        return armor.encode(KIND, VERSION, {"id": self.request_id, "k": armor.b64e(self.key)})

    @classmethod
    def parse(cls, text: str) -> Ticket:
        data = armor.decode(KIND, VERSION, text, what="request ticket", tip=_TIP_TICKET)
        try:
            ticket = cls(str(data["id"]), armor.b64d(str(data["k"])))
        except (KeyError, ValueError, binascii.Error):
            raise TokenError("request ticket content is malformed", tip=_TIP_TICKET) from None
        if len(ticket.key) != 32 or not _valid_id(ticket.request_id):
            raise TokenError("request ticket content is malformed", tip=_TIP_TICKET)
        return ticket


def _valid_id(request_id: str) -> bool:
    return len(request_id) == 16 and all(c in "0123456789abcdef" for c in request_id)


def default_state_dir() -> Path:
    """Per user, on tmpfs where available: private keys should never reach a disk."""
    env = os.environ.get(STATE_ENV)
    if env:
        return Path(env)
    uid = os.getuid()
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):  # noqa: S108 - tmpfs
        return Path(f"/dev/shm/xtok-{uid}")  # noqa: S108
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "xtok"
    return Path.home() / ".cache" / "xtok" / "requests"


def private_dir(path: Path, *, create: bool) -> Path:
    if create:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise ConfigError(
            f"no request state directory {path}",
            tip="run `xtok request` first, on this machine and with the same --state-dir",
        ) from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ConfigError(
            f"state directory {path} is not a private (0700) directory of yours",
            tip=f"remove it, or pass another --state-dir / {STATE_ENV}",
        )
    return path


def keep(request: RequestCode, private_key: bytes, state_dir: Path, wait: int) -> Ticket:
    """Store `private_key` for `request`, encrypted; return the ticket that opens it."""
    directory = private_dir(state_dir, create=True)
    purge(directory)
    ticket = Ticket(request.id, ChaCha20Poly1305.generate_key())
    nonce = secrets.token_bytes(12)
    sealed_key = ChaCha20Poly1305(ticket.key).encrypt(nonce, private_key, request.id.encode())
    record = {
        "request": request.encode(),
        "expires": int(time.time()) + wait,
        "nonce": armor.b64e(nonce),
        "key": armor.b64e(sealed_key),
    }
    # Written under a temporary name, then renamed: a reader never sees half a record.
    partial = directory / f".{request.id}.partial"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(record, f)
    partial.rename(directory / f"{request.id}.json")
    return ticket


@contextlib.contextmanager
def claim(ticket: Ticket, state_dir: Path) -> Iterator[tuple[RequestCode, bytes]]:
    """The request and private key the ticket opens. The record is gone once the block ends
    without an error; an error inside the block puts it back (nothing was used up)."""
    directory = private_dir(state_dir, create=False)
    purge(directory)
    path = directory / f"{ticket.request_id}.json"
    claimed = directory / f"{ticket.request_id}.{os.getpid()}.claimed"
    try:
        # Opened before the rename, so it is the record's content that is read even if
        # something else is swapped in meanwhile; the rename still picks the one claimant.
        fd = open_regular(path, what="request state", follow=False, tip=_TIP_NEW)
        with os.fdopen(fd, "rb") as f:
            path.rename(claimed)
            record = f.read()
    except FileNotFoundError:
        raise TokenError(
            f"no pending request {ticket.request_id} in {directory}: it was already answered "
            "and used, it waited too long, or it was made elsewhere",
            tip=_TIP_NEW,
        ) from None
    try:
        yield _unlock(claimed, record, ticket)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):  # a damaged record is gone for good
            claimed.rename(path)
        raise
    claimed.unlink()


def discard(ticket: Ticket, state_dir: Path) -> None:
    """Remove the key of a request that will never be answered (denied, expired, refused)."""
    (state_dir / f"{ticket.request_id}.json").unlink(missing_ok=True)


def _unlock(path: Path, data: bytes, ticket: Ticket) -> tuple[RequestCode, bytes]:
    try:
        record = json.loads(data)
        request = RequestCode.parse(record["request"])
        nonce, sealed_key = armor.b64d(record["nonce"]), armor.b64d(record["key"])
    except (ValueError, KeyError, TypeError, RecursionError, binascii.Error, TokenError):
        path.unlink(missing_ok=True)
        raise ConfigError(
            f"the state of request {ticket.request_id} is damaged", tip=_TIP_NEW
        ) from None
    try:
        key = ChaCha20Poly1305(ticket.key).decrypt(nonce, sealed_key, request.id.encode())
    except InvalidTag:
        raise TokenError(
            f"the ticket does not open request {request.id}: it is not this run's ticket",
            tip=_TIP_TICKET,
        ) from None
    return request, key


def purge(directory: Path) -> None:
    """Remove records past their wait, and leftovers of runs that died mid-way."""
    now = time.time()
    for entry in directory.iterdir():
        # Anything else a process of the user put there (a FIFO, a link) is left alone.
        with contextlib.suppress(
            OSError, ValueError, TypeError, KeyError, RecursionError, NotRegularFile
        ):
            if _stale(entry, now):
                entry.unlink()


def _stale(entry: Path, now: float) -> bool:
    if entry.name.endswith(".partial"):
        info = entry.lstat()
        return stat.S_ISREG(info.st_mode) and info.st_mtime < now - 3600
    if entry.name.endswith((".json", ".claimed")):
        record = read_regular(entry, what="request state", follow=False)
        return bool(json.loads(record)["expires"] < now)
    return False


def check_wait(seconds: int) -> int:
    if not 60 <= seconds <= 30 * 86400:
        raise UsageError("--purge-after must be between 1m and 30 days")
    return seconds
