"""The relay's mailbox in SQLite: requests, their answers, change events, approver sessions and
the fixed-audience JWTs already used. Holds no secret: request codes are public, sealed tokens
open only for their run, and the bearer values (wait secrets, sessions) are stored hashed."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from xtok.server.db import make_private

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id TEXT PRIMARY KEY, code TEXT NOT NULL, proof TEXT, digest TEXT NOT NULL,
    poster TEXT NOT NULL, poster_kind TEXT NOT NULL, poster_issuer TEXT, poster_subject TEXT,
    created INTEGER NOT NULL, expires INTEGER NOT NULL, state TEXT NOT NULL,
    sealed TEXT, reason TEXT, approver TEXT, answered INTEGER, wait_hash TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS requests_state ON requests (state, expires);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, state TEXT NOT NULL,
    time INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS seen (
    token_hash TEXT PRIMARY KEY, digest TEXT NOT NULL, expires INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    hash TEXT PRIMARY KEY, arn TEXT NOT NULL, expires INTEGER NOT NULL);
"""


def digest_of(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Store:
    """One SQLite connection behind a lock: every operation is a few indexed statements."""

    def __init__(self, path: Path | str, keep: int = 3600) -> None:
        self.keep = keep
        self._lock = threading.Lock()
        make_private(Path(path))
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _event(self, db: sqlite3.Connection, rid: str, state: str, now: int) -> None:
        db.execute("INSERT INTO events (id, state, time) VALUES (?,?,?)", (rid, state, now))

    def add(self, row: dict[str, Any]) -> bool:
        """Insert a pending request; False if its id is taken."""
        with self._tx() as db:
            if db.execute("SELECT 1 FROM requests WHERE id = ?", (row["id"],)).fetchone():
                return False
            cols = ", ".join(row)
            db.execute(
                f"INSERT INTO requests ({cols}) VALUES ({', '.join('?' * len(row))})",  # noqa: S608 - fixed column names
                tuple(row.values()),
            )
            self._event(db, row["id"], "pending", row["created"])
        return True

    def get(self, rid: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM requests WHERE id = ?", (rid,)).fetchone()
        return dict(row) if row else None

    def listing(self, pending_only: bool) -> list[dict[str, Any]]:
        where = "WHERE state = 'pending'" if pending_only else ""
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM requests {where} ORDER BY created DESC, id"  # noqa: S608 - fixed
            ).fetchall()
        return [dict(r) for r in rows]

    def pending_count(self, poster: str) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM requests WHERE poster = ? AND state = 'pending'", (poster,)
            ).fetchone()
        return int(row[0])

    def finish(self, rid: str, state: str, now: int, **fields: Any) -> bool:
        """Move a pending request to a final state; False if it was not pending."""
        sets = ", ".join(f"{k} = ?" for k in ("state", "answered", *fields))
        with self._tx() as db:
            changed = db.execute(
                f"UPDATE requests SET {sets} WHERE id = ? AND state = 'pending'",  # noqa: S608 - fixed
                (state, now, *fields.values(), rid),
            ).rowcount
            if changed:
                self._event(db, rid, state, now)
        return bool(changed)

    def set_proof(self, rid: str, proof: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE requests SET proof = ? WHERE id = ?", (proof, rid))

    def take_sealed(self, rid: str) -> None:
        """The run received its sealed token: the relay keeps no copy."""
        with self._tx() as db:
            db.execute("UPDATE requests SET sealed = NULL WHERE id = ?", (rid,))

    def sweep(self, now: int) -> bool:
        """Expire pending requests past their lifetime, purge old answered ones; True if any."""
        with self._tx() as db:
            expired = db.execute(
                "SELECT id FROM requests WHERE state = 'pending' AND expires <= ?", (now,)
            ).fetchall()
            for (rid,) in expired:
                db.execute(
                    "UPDATE requests SET state = 'expired', answered = ? WHERE id = ?", (now, rid)
                )
                self._event(db, rid, "expired", now)
            old = db.execute(
                "SELECT id FROM requests WHERE state != 'pending' AND answered <= ?",
                (now - self.keep,),
            ).fetchall()
            for (rid,) in old:
                db.execute("DELETE FROM requests WHERE id = ?", (rid,))
                self._event(db, rid, "purged", now)
            db.execute("DELETE FROM seen WHERE expires <= ?", (now,))
            db.execute("DELETE FROM sessions WHERE expires <= ?", (now,))
            db.execute("DELETE FROM events WHERE time <= ?", (now - self.keep,))
        return bool(expired or old)

    def events(self, after: int) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, id, state, time FROM events WHERE seq > ? ORDER BY seq LIMIT 500",
                (after,),
            ).fetchall()
        return [dict(r) for r in rows]

    def claim(self, token_hash: str, digest: str, expires: int) -> bool:
        """`SeenStore` for fixed-audience JWTs: the first key a JWT proves is the only one."""
        with self._tx() as db:
            row = db.execute("SELECT digest FROM seen WHERE token_hash = ?", (token_hash,))
            found = row.fetchone()
            if found is None:
                db.execute("INSERT INTO seen VALUES (?,?,?)", (token_hash, digest, expires))
                return True
        return bool(found[0] == digest)

    def add_session(self, secret: str, arn: str, expires: int) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO sessions VALUES (?,?,?)", (digest_of(secret), arn, expires))

    def session_arn(self, secret: str, now: int) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT arn FROM sessions WHERE hash = ? AND expires > ?", (digest_of(secret), now)
            ).fetchone()
        return str(row[0]) if row else None
