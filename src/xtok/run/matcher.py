"""Multi-literal matchers for the masker, fastest available first.

Each reports every occurrence (overlapping ones too) of a set of byte literals in a buffer, as
(literal index, end offset): the caller knows each literal's length, so no matcher has to track
where a match starts (Hyperscan is faster without it). Where xtok's C extension is built
(`_hsmask`, linked with Hyperscan's C library), it comes first: it finds literals of 12 bytes or
more by sampling (one probe per few bytes, see there), shorter ones with Hyperscan, and runs the
masker's inner loop, where the others leave that to Python. Else Hyperscan's Python binding;
where it has no wheel, the Rust Aho-Corasick automaton (ahocorasick-rs); failing both, a
pure-Python loop.
The choice never changes what is masked, only how fast. The libraries are imported when a matcher
is built, never when this module is.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xtok.run import _hsmask

Hit = tuple[int, int]  # (literal index, end offset)
# Each byte as a Hyperscan expression reads it literally: letters and digits, else \xHH.
_ESCAPED = [chr(b) if chr(b).isascii() and chr(b).isalnum() else f"\\x{b:02x}" for b in range(256)]


class Matcher(ABC):
    name = "abstract"

    def __init__(self, literals: Sequence[bytes]) -> None:
        self.literals = list(literals)

    @abstractmethod
    def hits(self, data: bytes) -> list[Hit]:
        """(index, end) of every occurrence of every literal in `data`."""


class PythonMatcher(Matcher):
    name = "python"

    def hits(self, data: bytes) -> list[Hit]:
        found = []
        for i, literal in enumerate(self.literals):
            start = data.find(literal)
            while start != -1:
                found.append((i, start + len(literal)))
                start = data.find(literal, start + 1)
        return found


class AhoCorasickMatcher(Matcher):
    name = "ahocorasick-rs"

    def __init__(self, literals: Sequence[bytes], *, dfa: bool = True) -> None:
        super().__init__(literals)
        import ahocorasick_rs as ac

        # A DFA scans fastest; a contiguous NFA builds ~10x faster.
        kind = ac.Implementation.DFA if dfa else ac.Implementation.ContiguousNFA
        self._automaton = ac.BytesAhoCorasick(
            self.literals, matchkind=ac.MatchKind.Standard, implementation=kind
        )

    def hits(self, data: bytes) -> list[Hit]:
        found = self._automaton.find_matches_as_indexes(data, overlapping=True)
        return [(i, end) for i, _, end in found]


class NativeMatcher(Matcher):
    """xtok's own C extension (`_hsmask`, built where Hyperscan's headers are): besides `hits`,
    it runs the masker's whole inner loop in C, from the per-key tables that `attach` gives it
    (see `xtok.run.mask`)."""

    name = "native"

    def __init__(self, literals: Sequence[bytes]) -> None:
        super().__init__(literals)
        from xtok.run import _hsmask

        self._hsmask = _hsmask
        self._keys: _hsmask.Keys | None = None

    def attach(
        self,
        exact: list[int],
        longer: list[tuple[bytes, ...]],
        owners: list[tuple[tuple[bytes, int], ...]],
    ) -> None:
        """Compile the keys with, per key, its pattern's length if it is one, the longer
        patterns it starts, and (pattern, offset) of the wrappable patterns it is an anchor of."""
        self._keys = self._hsmask.Keys(self.literals, exact, longer, owners)

    @property
    def keys(self) -> _hsmask.Keys:
        keys = self._keys
        if keys is None:  # used for `hits` alone
            n = len(self.literals)
            keys = self._keys = self._hsmask.Keys(self.literals, [0] * n, [()] * n, [()] * n)
        return keys

    def hits(self, data: bytes) -> list[Hit]:
        return self.keys.hits(data)

    def spans(self, data: bytes) -> tuple[bytes, list[int], int]:
        """(occurrences by start, packed as int64 (start, end) pairs; anchor starts to look
        around; where the tail that may still become an occurrence starts)."""
        return self.keys.scan(data)

    def emit(self, data: bytes, spans: bytes, cut: int, in_mark: bool) -> tuple[bytes, int]:
        """`data[:cut]` masked (as `xtok.run.mask._pieces`, joined, from packed spans), and
        where the masked run reaching furthest ends."""
        return self._hsmask.emit(data, spans, cut, in_mark)

    def write(
        self, fd: int, data: bytes, spans: bytes, cut: int, in_mark: bool
    ) -> tuple[bool, int]:
        """`emit`'s bytes written to `fd`, gathered from `data` where few are masked: whether
        fd's reader took them, and the reach."""
        return self._hsmask.write(fd, data, spans, cut, in_mark)


class HyperscanMatcher(Matcher):
    name = "hyperscan"

    def __init__(self, literals: Sequence[bytes]) -> None:
        super().__init__(literals)
        import hyperscan as hs

        self._db = hs.Database(mode=hs.HS_MODE_BLOCK)
        # The pure-literal compiler is the quicker one, but the binding passes C strings: a
        # literal with a NUL byte needs the escaped form.
        literal = not any(b"\0" in p for p in self.literals)
        expressions = self.literals if literal else [_escaped(p) for p in self.literals]
        self._db.compile(
            expressions=expressions,
            ids=list(range(len(self.literals))),
            elements=len(self.literals),
            flags=0,
            literal=literal,
        )
        self._scratch = hs.Scratch(self._db)

    def hits(self, data: bytes) -> list[Hit]:
        found: list[Hit] = []
        append = found.append

        def hit(i: int, _start: int, end: int, _flags: int, _context: object) -> None:
            append((i, end))

        self._db.scan(data, match_event_handler=hit, scratch=self._scratch)
        return found


def _escaped(literal: bytes) -> bytes:
    return "".join(map(_ESCAPED.__getitem__, literal)).encode()


def best(literals: Sequence[bytes]) -> Matcher:
    """The fastest matcher that imports here (or the pure-Python one)."""
    for cls in (NativeMatcher, HyperscanMatcher, AhoCorasickMatcher):
        try:
            return cls(literals)
        except ImportError:
            continue
    return PythonMatcher(literals)


def small(literals: Sequence[bytes]) -> Matcher:
    """The matcher quickest to build, for sets that scan a few dozen bytes at a time."""
    try:
        return AhoCorasickMatcher(literals, dfa=False)
    except ImportError:
        return PythonMatcher(literals)
