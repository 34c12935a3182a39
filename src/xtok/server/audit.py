"""The append-only, hash-chained audit log: one row per request, never a value.

Each row's digest is an HMAC (keyed from the master key) over the previous row's digest and the
row's fields, so changing, removing or inserting a row breaks the chain from there on, and the
chain cannot be recomputed without the master key. SQLite triggers refuse UPDATE and DELETE.

Removing the last rows (or all) leaves an intact but shorter chain, so the log also keeps a
head: the last row's number and an HMAC over it and its digest, rewritten with every row and
created with the database (never re-created: a missing head is itself reported). What this
cannot see is the whole file rolled back to an older copy.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass

from xtok.server.db import Database

GENESIS = "0" * 64
HEAD = "audit_head"  # its row in the meta table
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


def _head(key: bytes, seq: int, digest: str) -> str:
    mac = hmac.new(key, f"head:{seq}:{digest}".encode(), hashlib.sha256).hexdigest()
    return f"{seq}:{mac}"


def begin(conn: sqlite3.Connection, key: bytes) -> None:
    """Give a new database its empty log's head (in the transaction that creates it)."""
    conn.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (HEAD, _head(key, 0, GENESIS)))


class AuditLog:
    def __init__(self, db: Database, key: bytes) -> None:
        self._db = db
        self._key = key

    def append(self, record: Record) -> None:
        with self._db.write() as conn:
            last = conn.execute("SELECT digest FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            prev = last["digest"] if last else GENESIS
            values = record.values()
            digest = _digest(self._key, prev, values)
            row = conn.execute(
                f"INSERT INTO audit ({', '.join(FIELDS)}, prev, digest) "  # noqa: S608 - fixed names
                f"VALUES ({', '.join('?' * len(FIELDS))}, ?, ?)",
                (*values, prev, digest),
            )
            head = _head(self._key, row.lastrowid or 0, digest)
            conn.execute("UPDATE meta SET value = ? WHERE key = ?", (head, HEAD))

    def rows(self) -> Iterator[tuple[int, Record]]:
        for row in self._db.all("SELECT * FROM audit ORDER BY seq"):
            yield row["seq"], Record(*(row[f] for f in FIELDS))

    def verify(self) -> list[str]:
        """Problems found walking the chain; empty when every row is intact."""
        problems = []
        prev = GENESIS
        expected_seq = 1
        last_seq = 0
        for row in self._db.all("SELECT * FROM audit ORDER BY seq"):
            values = tuple(row[f] for f in FIELDS)
            if row["seq"] != expected_seq:
                problems.append(f"row {expected_seq}: missing (next row is {row['seq']})")
            if row["prev"] != prev:
                problems.append(f"row {row['seq']}: does not follow the previous row")
            if not hmac.compare_digest(row["digest"], _digest(self._key, row["prev"], values)):
                problems.append(f"row {row['seq']}: altered (digest does not match)")
            prev = row["digest"]
            last_seq = row["seq"]
            expected_seq = last_seq + 1
        head = self._db.meta(HEAD)
        if head is None:
            problems.append("the log's head is missing (its last rows may have been removed)")
        elif not hmac.compare_digest(head, _head(self._key, last_seq, prev)):
            named = head.partition(":")[0]
            problems.append(
                f"the log ends at row {last_seq} but its head names row {named}: "
                "rows were removed from the end (or the head was altered)"
            )
        return problems
