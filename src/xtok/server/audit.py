"""The append-only, hash-chained audit log: one row per request, never a value.

Each row's digest is an HMAC (keyed from the master key) over the previous row's digest and the
row's fields, so changing, removing or inserting a row breaks the chain from there on, and the
chain cannot be recomputed without the master key. SQLite triggers refuse UPDATE and DELETE.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass

from xtok.server.db import Database

GENESIS = "0" * 64
FIELDS = (
    "time",
    "principal",
    "session_name",
    "source_identity",
    "action",
    "resource",
    "decision",
    "error",
)


def audit_key(master_key: bytes) -> bytes:
    return hmac.new(master_key, b"xtok audit chain v1", hashlib.sha256).digest()


@dataclass(frozen=True)
class Record:
    time: str
    principal: str | None
    session_name: str | None
    source_identity: str | None
    action: str
    resource: str | None
    decision: str  # allow | deny | error
    error: str | None

    def values(self) -> tuple[str | None, ...]:
        return tuple(getattr(self, f) for f in FIELDS)


def _digest(key: bytes, prev: str, values: tuple[object, ...]) -> str:
    payload = prev.encode() + json.dumps(values, separators=(",", ":")).encode()
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


class AuditLog:
    def __init__(self, db: Database, key: bytes) -> None:
        self._db = db
        self._key = key

    def append(self, record: Record) -> None:
        with self._db.write() as conn:
            last = conn.execute("SELECT digest FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            prev = last["digest"] if last else GENESIS
            values = record.values()
            conn.execute(
                f"INSERT INTO audit ({', '.join(FIELDS)}, prev, digest) "  # noqa: S608 - fixed names
                f"VALUES ({', '.join('?' * len(FIELDS))}, ?, ?)",
                (*values, prev, _digest(self._key, prev, values)),
            )

    def rows(self) -> Iterator[tuple[int, Record]]:
        for row in self._db.all("SELECT * FROM audit ORDER BY seq"):
            yield row["seq"], Record(*(row[f] for f in FIELDS))

    def verify(self) -> list[str]:
        """Problems found walking the chain; empty when every row is intact."""
        problems = []
        prev = GENESIS
        expected_seq = 1
        for row in self._db.all("SELECT * FROM audit ORDER BY seq"):
            values = tuple(row[f] for f in FIELDS)
            if row["seq"] != expected_seq:
                problems.append(f"row {expected_seq}: missing (next row is {row['seq']})")
            if row["prev"] != prev:
                problems.append(f"row {row['seq']}: does not follow the previous row")
            if not hmac.compare_digest(row["digest"], _digest(self._key, row["prev"], values)):
                problems.append(f"row {row['seq']}: altered (digest does not match)")
            prev = row["digest"]
            expected_seq = row["seq"] + 1
        return problems
