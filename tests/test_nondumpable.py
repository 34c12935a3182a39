"""A process holding a key in memory (`xtok run --relay`) is closed to its own child, as an
unprivileged user: the child cannot read the parent's /proc/PID/environ (nor mem, nor ptrace)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

PYTHON = shutil.which("python3", path="/usr/bin:/bin") or sys.executable

SCRIPT = """
import os, subprocess, sys
from xtok.run.nondumpable import make_non_dumpable
if sys.argv[1] == "protect":
    assert make_non_dumpable()
child = "import os,sys; open('/proc/%d/environ' % os.getppid(),'rb').read(); print('READ')"
sys.exit(subprocess.run([sys.executable, "-c", child], capture_output=True).stdout != b"READ\\n")
"""


def as_nobody(mode: str) -> int:
    """Exit status 0 when the child read its parent's environment. The system Python: the
    virtualenv's interpreter may live where nobody cannot reach (e.g. under /root)."""
    prefix = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]
    if os.getuid() != 0:
        prefix = []
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([*prefix, PYTHON, "-c", SCRIPT, mode], env=env, check=False).returncode


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv")
def test_child_cannot_read_a_non_dumpable_parent() -> None:
    assert as_nobody("open") == 0  # the check can see a readable parent
    assert as_nobody("protect") == 1
