"""Multi-pattern matchers for the masker, fastest available first.

Each finds every occurrence (overlapping ones too) of a set of byte patterns in a buffer.
Hyperscan (C, SIMD) is preferred; where it has no wheel, the Rust Aho-Corasick automaton
(ahocorasick-rs); failing both, a pure-Python loop. The choice never changes what is masked,
only how fast.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

Span = tuple[int, int]
# Each byte as Hyperscan reads it literally: letters and digits as themselves, the rest as \xHH.
_ESCAPED = [chr(b) if chr(b).isascii() and chr(b).isalnum() else f"\\x{b:02x}" for b in range(256)]


class Matcher(ABC):
    name = "abstract"

    def __init__(self, patterns: Sequence[bytes]) -> None:
        self.patterns = list(patterns)

    @abstractmethod
    def spans(self, data: bytes, limit: int) -> list[Span]:
        """(start, end) of every occurrence in `data` that starts before `limit`."""


class PythonMatcher(Matcher):
    name = "python"

    def spans(self, data: bytes, limit: int) -> list[Span]:
        found = []
        for p in self.patterns:
            end = limit + len(p) - 1  # occurrences that start before `limit`
            start = data.find(p, 0, end)
            while start != -1:
                found.append((start, start + len(p)))
                start = data.find(p, start + 1, end)
        return found


class AhoCorasickMatcher(Matcher):
    name = "ahocorasick-rs"

    def __init__(self, patterns: Sequence[bytes]) -> None:
        super().__init__(patterns)
        import ahocorasick_rs as ac

        self._lengths = [len(p) for p in self.patterns]
        self._automaton = ac.BytesAhoCorasick(
            self.patterns, matchkind=ac.MatchKind.Standard, implementation=ac.Implementation.DFA
        )

    def spans(self, data: bytes, limit: int) -> list[Span]:
        hits = self._automaton.find_matches_as_indexes(data, overlapping=True)
        return [(start, end) for _, start, end in hits if start < limit]


class HyperscanMatcher(Matcher):
    name = "hyperscan"

    def __init__(self, patterns: Sequence[bytes]) -> None:
        super().__init__(patterns)
        import hyperscan as hs

        self._db = hs.Database(mode=hs.HS_MODE_BLOCK)
        # Escaped, not literal: the binding passes patterns as C strings, so a NUL byte would
        # cut a literal short (_ESCAPED keeps letters and digits, \xHH for the rest).
        expressions = ["".join(map(_ESCAPED.__getitem__, p)).encode() for p in self.patterns]
        self._db.compile(
            expressions=expressions,
            ids=list(range(len(self.patterns))),
            elements=len(self.patterns),
            flags=hs.HS_FLAG_SOM_LEFTMOST,
        )
        self._scratch = hs.Scratch(self._db)

    def spans(self, data: bytes, limit: int) -> list[Span]:
        found: list[Span] = []

        def hit(_: int, start: int, end: int, flags: int, context: object) -> None:
            if start < limit:
                found.append((start, end))

        self._db.scan(data, match_event_handler=hit, scratch=self._scratch)
        return found


def best(patterns: Sequence[bytes]) -> Matcher:
    """The fastest matcher that imports here (or the pure-Python one)."""
    for cls in (HyperscanMatcher, AhoCorasickMatcher):
        try:
            return cls(patterns)
        except ImportError:
            continue
    return PythonMatcher(patterns)
