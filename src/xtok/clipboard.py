"""Copying a token to the clipboard through the platform's own tool, via stdin (never argv)."""

from __future__ import annotations

import shutil
import subprocess

from xtok.errors import ConfigError

_TOOLS = (
    ("pbcopy",),
    ("wl-copy",),
    ("xclip", "-selection", "clipboard"),
    ("xsel", "--clipboard", "--input"),
    ("clip.exe",),
)


def copy(text: str) -> str:
    """Copy `text`; return the tool's name. Raises ConfigError when no tool works."""
    for argv in _TOOLS:
        exe = shutil.which(argv[0])
        if exe is None:
            continue
        result = subprocess.run(
            [exe, *argv[1:]], input=text.encode(), capture_output=True, timeout=10, check=False
        )
        if result.returncode == 0:
            return argv[0]
    raise ConfigError(
        "no working clipboard tool (pbcopy, wl-copy, xclip, xsel, clip.exe)",
        tip="drop --copy and take the token from stdout",
    )
