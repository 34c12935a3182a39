"""`Secret`: a value that must never be shown by accident.

Its `repr` and `str` never contain the value, so an f-string, a log line or a traceback that
touches a `Secret` shows only a placeholder. The value is read explicitly with `reveal()`.
"""

from __future__ import annotations

import hmac
from typing import Final

_PLACEHOLDER: Final = "Secret('**********')"


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: bytes | str) -> None:
        self._value = value.encode() if isinstance(value, str) else bytes(value)

    def reveal(self) -> bytes:
        return self._value

    def reveal_text(self) -> str:
        """The value as text; raises `UnicodeDecodeError` (without the value) for binary data."""
        return self._value.decode("utf-8")

    def __len__(self) -> int:
        return len(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(("xtok.Secret", len(self._value)))

    def __repr__(self) -> str:
        return _PLACEHOLDER

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")
