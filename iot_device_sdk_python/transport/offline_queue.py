"""A durable offline queue (sqlite3 file) and the buffer metrics of a connection.

Why: memory dies with the process. With ``ConnectAuthInfo.offline_queue_path`` set, every QoS 1 message
is written to this file before it is sent (``transport.outbox``), as is every message that enters the
offline buffer, and removed only when the broker acknowledged it (PUBACK for QoS 1, written for QoS 0) or
when it is dropped as the oldest of a full queue. A new process opening the same file sends the survivors
first, in their original order. Delivery is at least once: a message acknowledged just before a crash may
be sent again.

Durability: WAL journal with ``synchronous=NORMAL``: a commit is in the WAL file (the OS page cache) when
it returns, so it survives a crash or SIGKILL of the process; after a power loss or OS crash the last
commits may be missing (``synchronous=FULL`` would be needed for that, at an fsync per commit).
"""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Tuple, Union

_logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS offline_queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    seq INTEGER NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB,
    qos INTEGER NOT NULL
)"""

#: default bound of the durable queue when ``offline_queue_max`` is not set
DEFAULT_MAX = 10000


@dataclass
class BufferMetrics:
    """Counters of one connection's offline buffer (since the connection object was created).

    * ``queued``: messages that entered the offline buffer (each counted once, however often re-queued)
    * ``sent``: buffered messages later acknowledged by the broker (QoS 1) or written (QoS 0)
    * ``dropped``: buffered messages dropped as the oldest of a full buffer (their handle/listener failed)
    * ``restored``: messages loaded from the durable queue file at start (left by an earlier process)
    * ``size``: messages waiting in the buffer now
    * ``durable``: True when the buffer is kept in a sqlite file (``offline_queue_path``)
    """

    queued: int = 0
    sent: int = 0
    dropped: int = 0
    restored: int = 0
    size: int = 0
    durable: bool = False

    def to_dict(self) -> Dict[str, Any]:
        """The counters as a plain dict (for JSON)."""
        return asdict(self)


def _as_bytes(payload: Union[str, bytes, bytearray, None, int, float]) -> bytes:
    if isinstance(payload, str):
        return payload.encode("utf-8")
    if payload is None:
        return b""
    if isinstance(payload, (int, float)):
        return str(payload).encode("ascii")
    return bytes(payload)


class DurableOfflineQueue:
    """The sqlite3 file behind a durable offline buffer. Thread-safe; every call commits at once."""

    def __init__(self, path: str) -> None:
        if not isinstance(path, (str, os.PathLike)) or not str(path):
            raise ValueError("offline_queue_path: must be a non-empty file path")
        self.path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db: Optional[sqlite3.Connection] = sqlite3.connect(self.path, check_same_thread=False,
                                                                     isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        except sqlite3.Error as exc:
            raise ValueError(f"offline_queue_path: cannot open {self.path!r} as a sqlite3 queue: {exc}") from exc
        try:  # the queue holds device payloads: keep it private to the user
            os.chmod(self.path, 0o600)
        except OSError:
            pass

    def load(self) -> List[Tuple[int, int, str, bytes, int]]:
        """Every stored message as ``(row_id, seq, topic, payload, qos)``, oldest first."""
        with self._lock:
            if self._db is None:
                return []
            rows = self._db.execute("SELECT id, seq, topic, payload, qos FROM offline_queue ORDER BY seq, id").fetchall()
        return [(r[0], r[1], r[2], bytes(r[3]) if r[3] is not None else b"", r[4]) for r in rows]

    def add(self, seq: int, topic: str, payload: Union[str, bytes, bytearray, None], qos: int) -> Optional[int]:
        """Store one message; returns its row id (None when the file cannot be written: logged)."""
        data = _as_bytes(payload)
        with self._lock:
            if self._db is None:
                return None
            try:
                cur = self._db.execute("INSERT INTO offline_queue (seq, topic, payload, qos) VALUES (?, ?, ?, ?)",
                                       (int(seq), topic, sqlite3.Binary(data), int(qos)))
                return cur.lastrowid
            except sqlite3.Error as exc:  # disk full, file removed: keep the message in memory only
                _logger.error("offline queue %s: cannot store a message (%s); it is kept in memory only",
                              self.path, exc)
                return None

    def write_batch(self, rows: List[Tuple[int, str, Union[str, bytes, bytearray, None], int]],
                    deletes: List[int]) -> List[Optional[int]]:
        """Store ``rows`` (``(seq, topic, payload, qos)``) and delete the rows ``deletes`` in ONE transaction;
        returns the new row ids in order (all None when the file cannot be written: logged, the messages are
        then kept in memory only)."""
        data = [(int(seq), topic, sqlite3.Binary(_as_bytes(payload)), int(qos)) for seq, topic, payload, qos in rows]
        with self._lock:
            if self._db is None:
                return [None] * len(data)
            db = self._db
            try:
                db.execute("BEGIN")
                ids = [db.execute("INSERT INTO offline_queue (seq, topic, payload, qos) VALUES (?, ?, ?, ?)",
                                  row).lastrowid for row in data]
                if deletes:
                    db.executemany("DELETE FROM offline_queue WHERE id = ?", [(r,) for r in deletes])
                db.execute("COMMIT")
                return ids
            except sqlite3.Error as exc:  # disk full, file removed
                try:
                    db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                _logger.error("offline queue %s: cannot write %d message(s) / delete %d row(s) (%s); those "
                              "messages are kept in memory only", self.path, len(data), len(deletes), exc)
                return [None] * len(data)

    def remove(self, row_id: Optional[int]) -> None:
        """Forget one stored message (sent or dropped)."""
        if row_id is None:
            return
        with self._lock:
            if self._db is None:
                return
            try:
                self._db.execute("DELETE FROM offline_queue WHERE id = ?", (row_id,))
            except sqlite3.Error as exc:
                _logger.error("offline queue %s: cannot remove a message (%s); it may be sent again",
                              self.path, exc)

    def count(self) -> int:
        """Messages stored now."""
        with self._lock:
            if self._db is None:
                return 0
            return int(self._db.execute("SELECT COUNT(*) FROM offline_queue").fetchone()[0])

    def max_seq(self) -> int:
        """The largest stored sequence number (-1 when empty)."""
        with self._lock:
            if self._db is None:
                return -1
            value = self._db.execute("SELECT MAX(seq) FROM offline_queue").fetchone()[0]
        return -1 if value is None else int(value)

    def close(self) -> None:
        """Close the file (the stored messages stay for the next process)."""
        with self._lock:
            db, self._db = self._db, None
        if db is not None:
            try:
                db.close()
            except sqlite3.Error:
                pass
