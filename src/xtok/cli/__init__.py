"""The `xtok` command line: thin commands that parse, call one module, print one result.

Every failure is an `xtok.errors.Error`, printed as one line plus a tip, with its exit code.
Each command's module registers it on the `cli` group and is imported only when that command
runs (`xtok.cli.app.COMMAND_MODULES`): a CI step starts every build, so start-up time counts.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not typing's: importing typing costs `xtok --version` a tenth
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import NoReturn

    import click

__all__ = ["cli", "entry", "main"]

_UNWRITABLE_STDOUT = 120  # Python's own exit status when it cannot flush stdout


def main(argv: Sequence[str] | None = None) -> int:
    """Run xtok; return its exit status. Never lets a traceback reach the user."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args == ["--version"]:  # answered without loading click
        from xtok import VERSION_MESSAGE, __version__

        if sys.stdout is None:  # started with its stdout closed
            return _UNWRITABLE_STDOUT
        try:
            sys.stdout.write(VERSION_MESSAGE % {"prog": "xtok", "version": __version__} + "\n")
        except OSError:
            return _UNWRITABLE_STDOUT
        return 0
    from xtok.cli.app import main as run

    return run(args)


def entry() -> NoReturn:
    """The `xtok` executable: `main()`, then exit without tearing the interpreter down.

    Teardown (freeing every module) costs more than some commands; what must happen at exit
    still does: atexit handlers run and the standard streams are flushed. When threads are
    left or SQLite was used, the ordinary exit joins them and closes its databases instead.
    """
    code = main()
    threading = sys.modules.get("threading")
    if "sqlite3" in sys.modules or (threading is not None and threading.active_count() > 1):
        sys.exit(code)  # open databases (the local endpoint's) are closed by the teardown
    import atexit
    import contextlib

    atexit._run_exitfuncs()
    try:
        if sys.stdout is not None:  # None where xtok started with its stdout closed
            sys.stdout.flush()
    except (OSError, ValueError):
        code = code or _UNWRITABLE_STDOUT
    with contextlib.suppress(OSError, ValueError):
        if sys.stderr is not None:
            sys.stderr.flush()
    os._exit(code)


def __getattr__(name: str) -> click.Group:
    if name == "cli":  # for callers that walk every command: load them all
        from xtok.cli.app import load_all

        return load_all()
    raise AttributeError(name)
