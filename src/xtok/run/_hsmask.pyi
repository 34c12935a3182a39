"""Types of the optional C extension `_hsmask.c` (see there)."""

class Keys:
    def __init__(
        self,
        keys: list[bytes],
        exact: list[int],
        longer: list[tuple[bytes, ...]],
        owners: list[tuple[tuple[bytes, int], ...]],
    ) -> None: ...
    def scan(self, buf: bytes, /) -> tuple[bytes, list[int], int]: ...
    def hits(self, buf: bytes, /) -> list[tuple[int, int]]: ...

def emit(buf: bytes, runs: bytes, cut: int, in_mark: bool, /) -> tuple[bytes, int]: ...
