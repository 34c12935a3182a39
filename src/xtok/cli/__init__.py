"""The `xtok` command line: thin commands that parse, call one module, print one result.

Every failure is an `xtok.errors.Error`, printed as one line plus a tip, with its exit code.
Each module below registers its commands on the `cli` group.
"""

from xtok.cli import (  # noqa: F401 - register commands
    inbox,
    policy,
    relay,
    run,
    secret,
    server,
    tokens,
)
from xtok.cli.app import cli, main

__all__ = ["cli", "main"]
