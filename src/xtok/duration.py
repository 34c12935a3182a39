"""Human durations (`15m`, `1h30m`, `900s`, `900`) and their display (`15m00s`)."""

from __future__ import annotations

import re

from xtok.errors import UsageError

_PART = re.compile(r"(\d+)([hms])")
_UNIT = {"h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> int:
    """Seconds in `text`: a bare number of seconds or parts like `1h30m`, `15m`, `45s`."""
    s = text.strip().lower()
    if s.isdigit():
        return int(s)
    parts = _PART.findall(s)
    if not s or not parts or "".join(n + u for n, u in parts) != s:
        raise UsageError(
            f"invalid duration {text!r}", tip="use seconds (900) or units: 15m, 1h, 1h30m, 45s"
        )
    return sum(int(n) * _UNIT[u] for n, u in parts)


def format_duration(seconds: float) -> str:
    """`15m00s`, `1h02m03s` or `42s`; negative values are shown as their magnitude."""
    total = int(abs(seconds))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h{m:02d}m{s:02d}s"
    if m:
        return f"{m}m{s:02d}s"
    return f"{s}s"
