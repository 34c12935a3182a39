"""xtok: exploding tokens for CI."""

__version__ = "0.1.0"
VERSION_MESSAGE = "%(prog)s, version %(version)s"  # click's default, also printed without click
