"""`python -m xtok`."""

from xtok.cli import entry

entry()
