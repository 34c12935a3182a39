"""SQLite storage (WAL): one connection per thread, short transactions.

Secret values, secret access keys and MFA seeds are stored sealed (see crypto); session tokens
only as SHA-256 digests. Names, policies and the audit log are not encrypted: the data directory
is kept 0700 and the database files 0600.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from xtok.errors import ConfigError
from xtok.regular_file import open_regular

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, user_id TEXT NOT NULL, path TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS access_keys (
    key_id TEXT PRIMARY KEY, user_name TEXT NOT NULL, secret BLOB NOT NULL,
    status TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS roles (
    name TEXT PRIMARY KEY, role_id TEXT NOT NULL, path TEXT NOT NULL, trust TEXT NOT NULL,
    max_session INTEGER NOT NULL, description TEXT, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS inline_policies (
    kind TEXT NOT NULL, owner TEXT NOT NULL, name TEXT NOT NULL, document TEXT NOT NULL,
    PRIMARY KEY (kind, owner, name));
CREATE TABLE IF NOT EXISTS mfa_devices (
    serial TEXT PRIMARY KEY, name TEXT NOT NULL, seed BLOB NOT NULL, user_name TEXT,
    enabled REAL, last_step INTEGER, created REAL NOT NULL);
-- Sessions belong to a user's or role's unique id (`owner`), looked up on every request.
CREATE INDEX IF NOT EXISTS users_id ON users (user_id);
CREATE INDEX IF NOT EXISTS roles_id ON roles (role_id);
CREATE TABLE IF NOT EXISTS sessions (
    key_id TEXT PRIMARY KEY, secret BLOB NOT NULL, token_digest BLOB NOT NULL,
    kind TEXT NOT NULL, owner TEXT NOT NULL, session_name TEXT, source_identity TEXT,
    tags TEXT NOT NULL, policy TEXT, issued REAL NOT NULL, expires REAL NOT NULL, mfa REAL);
CREATE TABLE IF NOT EXISTS secrets (
    name TEXT PRIMARY KEY, arn TEXT UNIQUE NOT NULL, description TEXT, created REAL NOT NULL,
    changed REAL NOT NULL, accessed REAL, deleted REAL, purge_after REAL);
-- Every Secrets Manager request looks for secrets due to be purged: keep that an index probe.
CREATE INDEX IF NOT EXISTS secrets_purge ON secrets (purge_after) WHERE purge_after IS NOT NULL;
CREATE TABLE IF NOT EXISTS secret_versions (
    arn TEXT NOT NULL, version_id TEXT NOT NULL, value BLOB NOT NULL, binary INTEGER NOT NULL,
    stages TEXT NOT NULL, created REAL NOT NULL, PRIMARY KEY (arn, version_id));
CREATE TABLE IF NOT EXISTS tags (
    kind TEXT NOT NULL, owner TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (kind, owner, key));
CREATE TABLE IF NOT EXISTS groups (
    name TEXT PRIMARY KEY, group_id TEXT NOT NULL, path TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS group_members (
    group_name TEXT NOT NULL, user_name TEXT NOT NULL, PRIMARY KEY (group_name, user_name));
CREATE INDEX IF NOT EXISTS group_members_user ON group_members (user_name);
CREATE TABLE IF NOT EXISTS managed_policies (
    arn TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL, policy_id TEXT NOT NULL, path TEXT NOT NULL,
    description TEXT, default_version TEXT NOT NULL, next_version INTEGER NOT NULL,
    created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS policy_versions (
    arn TEXT NOT NULL, version_id TEXT NOT NULL, document TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (arn, version_id));
-- Managed policies attached to users, roles and groups (kind, owner name).
CREATE TABLE IF NOT EXISTS attachments (
    kind TEXT NOT NULL, owner TEXT NOT NULL, policy_arn TEXT NOT NULL,
    PRIMARY KEY (kind, owner, policy_arn));
CREATE INDEX IF NOT EXISTS attachments_policy ON attachments (policy_arn);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY, time TEXT NOT NULL, principal TEXT, session_name TEXT,
    source_identity TEXT, action TEXT NOT NULL, resource TEXT, decision TEXT NOT NULL,
    error TEXT, prev TEXT NOT NULL, digest TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS audit_append_only_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_append_only_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""


def make_private(path: Path) -> None:
    """Tighten the data directory to 0700 (refusing one another user owns) and create the
    database 0600 before SQLite opens it: SQLite gives its -wal and -shm files the database
    file's mode, whatever the umask. Refuses a FIFO or link in the place of any of its files
    (SQLite would block reading a FIFO)."""
    directory = path.parent
    try:
        info = directory.stat()
        if info.st_uid != os.geteuid():
            raise ConfigError(
                f"the data directory {directory} belongs to another user",
                tip="use a directory of your own (xtok server init --data DIR)",
            )
        if stat.S_IMODE(info.st_mode) != 0o700:
            directory.chmod(0o700)
        for suffix in ("", "-wal", "-shm", "-journal", ".lock"):
            flags = os.O_RDWR | (os.O_CREAT if suffix == "" else 0)
            with contextlib.suppress(FileNotFoundError):
                fd = open_regular(
                    path.with_name(path.name + suffix), flags, what="data file", follow=False
                )
                try:
                    os.fchmod(fd, 0o600)
                finally:
                    os.close(fd)
    except OSError as exc:
        raise ConfigError(
            f"cannot make the data directory {directory} private: {exc.strerror}",
            tip="give the directory and its files to the user running xtok",
        ) from None


class Database:
    def __init__(self, path: Path) -> None:
        make_private(path)
        self.path = path
        self._local = threading.local()
        # Writers queue here rather than in SQLite's busy handler, whose sleep-and-retry
        # backoff makes tail latency under concurrency far worse than a lock hand-over: the
        # thread lock for this process's threads, an flock for other processes (workers).
        self._write_lock = threading.Lock()
        self._lock_fd = open_regular(
            path.with_name(path.name + ".lock"),
            os.O_RDWR | os.O_CREAT,
            what="data file",
            follow=False,
        )
        self._conn().executescript(SCHEMA)  # runs in its own transaction
        self._upgrade()

    def _upgrade(self) -> None:
        """Bring a database written by an earlier version up to SCHEMA."""
        conn = self._conn()
        columns = {row["name"] for row in conn.execute("PRAGMA table_info(mfa_devices)")}
        if "last_step" not in columns:  # it kept the last code, not its time step
            conn.execute("ALTER TABLE mfa_devices ADD COLUMN last_step INTEGER")

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, isolation_level=None, timeout=30, check_same_thread=False
            )
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives the process being killed (not power loss).
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    @contextmanager
    def write(
        self, *, keep_on: tuple[type[BaseException], ...] = ()
    ) -> Iterator[sqlite3.Connection]:
        """A write transaction, taken at once (BEGIN IMMEDIATE) so writers queue, not fail.

        Nested inside another on the same thread, it joins the outer one. An exception of a
        `keep_on` type still commits what was written (then propagates); any other rolls back.
        """
        conn = self._conn()
        if getattr(self._local, "in_write", False):
            yield conn
            return
        with self._write_lock, self._process_lock():
            conn.execute("BEGIN IMMEDIATE")
            self._local.in_write = True
            try:
                yield conn
            except keep_on:
                conn.execute("COMMIT")
                raise
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")
            finally:
                self._local.in_write = False

    @contextmanager
    def _process_lock(self) -> Iterator[None]:
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._conn().execute(sql, args).fetchone()
        return row

    def all(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        return list(self._conn().execute(sql, args).fetchall())

    def meta(self, key: str) -> str | None:
        row = self.one("SELECT value FROM meta WHERE key = ?", key)
        return None if row is None else str(row["value"])
