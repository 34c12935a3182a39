"""Who holds each access key, remembered between requests.

Finding a key's holder costs three SQLite lookups, an AES-GCM decryption and JSON parsing on
every request; the answer only changes when IAM or STS state does. So it is kept per key id
until a change: the endpoint calls `invalidate()` after every IAM or STS request that writes,
and a commit by any other connection to the database (another process) empties it too. The
request itself is still verified every time (`auth.identify`), and expiry is checked against
the clock; only the stored facts are reused.
"""

from __future__ import annotations

from xtok.server.auth import KeyHolder, key_holder
from xtok.server.crypto import Sealer
from xtok.server.db import Database

MAX_ENTRIES = 4096  # then start over: bounded memory whatever keys callers send


class KeyHolders:
    def __init__(self, db: Database, sealer: Sealer, account: str) -> None:
        self._db, self._sealer, self._account = db, sealer, account
        self._entries: dict[str, KeyHolder] = {}
        self._version = db.data_version()

    def get(self, key_id: str) -> KeyHolder:
        """`auth.key_holder` for `key_id`; unknown keys are not remembered (a new session must
        work at once)."""
        version = self._db.data_version()
        if version != self._version:
            self._entries.clear()
            self._version = version
        holder = self._entries.get(key_id)
        if holder is None:
            holder = key_holder(self._db, self._sealer, self._account, key_id)
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key_id] = holder
        return holder

    def invalidate(self) -> None:
        """Forget every holder: call after any change to users, keys, roles or sessions."""
        self._entries.clear()
