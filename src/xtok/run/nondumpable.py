"""Keep this process's memory from other processes of the same user (Linux).

`prctl(PR_SET_DUMPABLE, 0)` makes /proc/PID/mem, /environ and ptrace unavailable to same-user
processes (the approved command included; execve gives the child its own dumpable flag) and
disables core dumps. Used where xtok holds a private key or credentials in memory only.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

PR_SET_DUMPABLE = 4


def make_non_dumpable() -> bool:
    """True if the kernel accepted it; False where there is no prctl (not Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    return bool(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0)
