"""Opening a file at a path where another process of the same user could have put something.

A FIFO there blocks `open()` or `read()` for ever; a device reads without end; a directory or
socket fails in obscure ways. So xtok opens such paths only through `open_regular`: without
blocking (O_NONBLOCK; O_NOFOLLOW too for the files xtok names itself, where a link can only be
planted), then keeps the file only if `fstat` says it is a regular file.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from xtok.display import shown
from xtok.errors import ConfigError

_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFDIR: "a directory",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a device",
    stat.S_IFBLK: "a device",
    stat.S_IFLNK: "a symbolic link",
}
# What open() says, without blocking, of a FIFO without a reader (for writing), a socket, a
# directory (for writing) and a link (with O_NOFOLLOW).
_REFUSALS = (errno.ENXIO, errno.EISDIR, errno.ELOOP, errno.EOPNOTSUPP)


class NotRegularFile(ConfigError):
    def __init__(self, what: str, path: str | Path, mode: int, tip: str | None) -> None:
        kind = _KINDS.get(stat.S_IFMT(mode), "a special file")
        super().__init__(
            f"{what} {shown(path)} is {kind}, not a regular file",
            tip=tip or "remove it: something other than xtok put it there",
        )


def open_regular(
    path: str | Path,
    flags: int = os.O_RDONLY,
    *,
    what: str,
    follow: bool = True,
    tip: str | None = None,
) -> int:
    """A file descriptor of the regular file at `path` (created with mode 0600 when `flags`
    has O_CREAT), or `NotRegularFile` at once; OSError as `os.open` raises it otherwise.
    `what` names the file in the message, e.g. "token file"."""
    flags |= os.O_NONBLOCK | os.O_NOCTTY | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno in _REFUSALS:
            try:
                mode = os.stat(path, follow_symlinks=follow).st_mode
            except OSError:
                raise exc from None
            if not stat.S_ISREG(mode):
                raise NotRegularFile(what, path, mode, tip) from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(what, path, mode, tip)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(
    path: str | Path, *, what: str, follow: bool = True, tip: str | None = None
) -> bytes:
    """The content of the regular file at `path` (see `open_regular`)."""
    with os.fdopen(open_regular(path, what=what, follow=follow, tip=tip), "rb") as f:
        return f.read()


def read_private(path: str | Path, *, what: str, tip: str | None = None) -> bytes:
    """The content of the regular file at `path` (see `open_regular`), refused if its group or
    others have any access to it: it holds keys."""
    with os.fdopen(open_regular(path, what=what, tip=tip), "rb") as f:
        if os.fstat(f.fileno()).st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"{what} {shown(path)} is readable by others: it holds keys",
                tip=f"chmod 600 {shown(path)}",
            )
        return f.read()


def replace_regular(path: Path, data: bytes, *, what: str) -> None:
    """Write `data` to `path` (0600, its directory made 0700 when missing) through a temporary
    file renamed over it: a reader sees the old content or the new one, never half."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    with os.fdopen(open_regular(tmp, flags, what=what, follow=False), "wb") as f:
        f.write(data)
    os.replace(tmp, path)
