"""xtok: exploding tokens for CI."""

__version__ = "0.1.0"
