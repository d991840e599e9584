"""sqlite3 storage of the emulator: registry, shadow and message trace (one file in the data dir)."""
from __future__ import annotations

import os
import sqlite3
import threading
from typing import Any, Iterable, List, Sequence

_SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    device_id   TEXT PRIMARY KEY,
    secret      TEXT,
    product_id  TEXT NOT NULL,
    node_id     TEXT NOT NULL,
    fingerprint TEXT,
    auth_type   TEXT NOT NULL DEFAULT 'SECRET',
    gateway_id  TEXT,
    name        TEXT,
    frozen      INTEGER NOT NULL DEFAULT 0,
    online      INTEGER NOT NULL DEFAULT 0,
    created     REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS devices_gateway ON devices(gateway_id);
CREATE TABLE IF NOT EXISTS shadow (
    device_id     TEXT NOT NULL,
    service_id    TEXT NOT NULL,
    desired       TEXT NOT NULL DEFAULT '{}',
    reported      TEXT NOT NULL DEFAULT '{}',
    desired_time  TEXT,
    reported_time TEXT,
    version       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (device_id, service_id)
);
CREATE TABLE IF NOT EXISTS trace (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    time      REAL NOT NULL,
    device_id TEXT,
    direction TEXT NOT NULL,
    kind      TEXT NOT NULL,
    topic     TEXT NOT NULL,
    payload   BLOB
);
CREATE INDEX IF NOT EXISTS trace_device ON trace(device_id);
"""


class Store:
    """A thread-safe wrapper of one sqlite3 connection (serialised by a lock; rows are ``sqlite3.Row``)."""

    def __init__(self, path: str) -> None:
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=OFF")
            self._conn.executescript(_SCHEMA)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """Run one statement (autocommit) and return its cursor (``lastrowid``, ``rowcount``)."""
        with self._lock:
            return self._conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement for many parameter rows, in one transaction."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany(sql, rows)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] = ()) -> List[sqlite3.Row]:
        """Run a SELECT and return all rows."""
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def transaction(self):
        """Context manager holding the lock for several statements in one transaction."""
        return _Tx(self)

    def close(self) -> None:
        """Close the connection (later calls fail)."""
        with self._lock:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass


class _Tx:
    def __init__(self, store: Store) -> None:
        self.store = store

    def __enter__(self) -> sqlite3.Connection:
        self.store._lock.acquire()
        self.store._conn.execute("BEGIN IMMEDIATE")
        return self.store._conn

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.store._conn.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.store._lock.release()
