"""Who holds each access key, remembered between requests.

Finding a key's holder costs three SQLite lookups, an AES-GCM decryption and JSON parsing on
every request; the answer only changes when IAM or STS state does. So it is kept per key id,
under a generation number stored in the database: every IAM or STS request that writes bumps
it in its own transaction (`invalidate`), and every worker process compares it on each request
(one indexed read), so a change made through any worker applies to the next request in all.
The request itself is still verified every time (`auth.identify`) and expiry is checked
against the clock; only the stored facts are reused. (A change written to the database behind
the endpoint's back is seen after a restart.)
"""

from __future__ import annotations

import sqlite3

from xtok.server.auth import KeyHolder, key_holder
from xtok.server.crypto import Sealer
from xtok.server.db import Database

GENERATION = "identity_generation"  # its row in the meta table
MAX_ENTRIES = 4096  # then start over: bounded memory whatever keys callers send


class KeyHolders:
    def __init__(self, db: Database, sealer: Sealer, account: str) -> None:
        self._db, self._sealer, self._account = db, sealer, account
        self._entries: dict[str, KeyHolder] = {}
        self._generation: str | None = None

    def get(self, key_id: str) -> KeyHolder:
        """`auth.key_holder` for `key_id`; unknown keys are not remembered (a new session must
        work at once)."""
        generation = self._db.meta(GENERATION)
        if generation != self._generation:
            self._entries.clear()
            self._generation = generation
        holder = self._entries.get(key_id)
        if holder is None:
            holder = key_holder(self._db, self._sealer, self._account, key_id)
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key_id] = holder
        return holder

    @staticmethod
    def invalidate(conn: sqlite3.Connection) -> None:
        """Make every worker forget every holder once `conn`'s transaction commits: call it in
        any transaction that may change users, keys, roles or sessions."""
        conn.execute(
            "INSERT INTO meta VALUES (?, '1') ON CONFLICT (key) DO UPDATE SET value = value + 1",
            (GENERATION,),
        )
