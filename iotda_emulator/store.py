"""sqlite3 storage of the emulator: registry, shadow and message trace (one file in the data dir).

:class:`DeviceRegistry` holds the registry rules (default ids, generated secrets, validation); it works on a
bare :class:`Store`, so tools such as the ``iotda-emulator device`` commands use it without any broker.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets as _secrets
import sqlite3
import threading
import time
import uuid
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence

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
CREATE INDEX IF NOT EXISTS trace_kind ON trace(kind);
CREATE INDEX IF NOT EXISTS trace_time ON trace(time);
-- products (iotda_emulator/products.py); seq orders them and is IoTDA's page marker
CREATE TABLE IF NOT EXISTS products (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    body       TEXT NOT NULL,
    topics     TEXT NOT NULL DEFAULT '[]',
    created    REAL NOT NULL
);
"""


class Store:
    """A thread-safe wrapper of one sqlite3 connection (serialised by a lock; rows are ``sqlite3.Row``).

    High-rate writes (the message trace, shadow updates from reports) go through :meth:`deferred` and
    :meth:`batched`: they run at once inside one open transaction that is committed at most
    ``commit_interval`` seconds (or ``commit_rows`` writes) later, instead of a commit per message. Every
    reader of this Store shares its connection and so sees them at once; another process reading the file sees
    them after that commit, and a crash of the emulator loses at most that window. Any other write
    (:meth:`execute`, :meth:`executemany`, :meth:`transaction`) first commits the open batch, so it keeps its
    autocommit meaning.
    """

    def __init__(self, path: str, commit_interval: float = 0.05, commit_rows: int = 2000) -> None:
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self.commit_interval = commit_interval
        self.commit_rows = commit_rows
        self._batch_rows = 0           # deferred writes in the open batch transaction (0: none open)
        self._batch_wake = threading.Event()
        self._committer: Optional[threading.Thread] = None
        self._closed = False
        #: when True, the CPU time each thread spends in this Store is summed (the bench's per-component split)
        self.account_cpu = False
        self._cpu: Dict[int, float] = {}
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=OFF")
            self._conn.executescript(_SCHEMA)
            _add_columns(self._conn)

    # ---- batched writes -------------------------------------------------------------------------------
    def deferred(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """Run one write in the open batch transaction (see the class docstring) and return its cursor."""
        t0 = time.thread_time() if self.account_cpu else 0.0
        with self._lock:
            self._open_batch()
            try:
                return self._conn.execute(sql, params)
            finally:
                self._batch_written()
                if t0:
                    self._account(t0)

    @contextlib.contextmanager
    def batched(self) -> Iterator[sqlite3.Connection]:
        """Context manager: several writes applied together (a savepoint: all or none) in the open batch
        transaction, committed with it (see the class docstring)."""
        t0 = time.thread_time() if self.account_cpu else 0.0
        with self._lock:
            self._open_batch()
            self._conn.execute("SAVEPOINT batched")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK TO batched")
                self._conn.execute("RELEASE batched")
                raise
            else:
                self._conn.execute("RELEASE batched")
            finally:
                self._batch_written()
                if t0:
                    self._account(t0)

    def commit(self) -> None:
        """Commit the open batch now (no-op without one)."""
        with self._lock:
            if self._batch_rows:
                self._conn.execute("COMMIT")   # on failure the batch stays open and is committed later
                self._batch_rows = 0

    def _open_batch(self) -> None:
        if self._batch_rows:
            return
        if self._closed:
            raise sqlite3.ProgrammingError("the store is closed")
        self._conn.execute("BEGIN")
        self._batch_rows = 1  # counts from 1 so that 0 means "no transaction open"
        if self._committer is None:
            self._committer = threading.Thread(target=self._commit_loop, name="emu-store-commit", daemon=True)
            self._committer.start()
        self._batch_wake.set()

    def _batch_written(self) -> None:
        self._batch_rows += 1
        if self._batch_rows > self.commit_rows:
            self.commit()

    def _commit_loop(self) -> None:
        """Commit each batch ``commit_interval`` after it was opened (one wake-up per batch, none when idle)."""
        while not self._closed:
            self._batch_wake.wait()
            self._batch_wake.clear()
            time.sleep(self.commit_interval)
            t0 = time.thread_time() if self.account_cpu else 0.0
            try:
                self.commit()
            except sqlite3.Error:  # e.g. closed meanwhile; the next write reports real problems
                pass
            if t0:
                self._account(t0)

    def _account(self, t0: float) -> None:
        ident = threading.get_ident()
        self._cpu[ident] = self._cpu.get(ident, 0.0) + time.thread_time() - t0

    def cpu_by_thread(self) -> Dict[int, float]:
        """CPU seconds spent in this Store per thread ident, while :attr:`account_cpu` was set."""
        return dict(self._cpu)

    def create_function(self, name: str, nargs: int, fn: Callable[..., Any]) -> None:
        """Make ``fn`` a deterministic SQL function ``name`` for every statement of this Store."""
        with self._lock:
            self._conn.create_function(name, nargs, fn, deterministic=True)

    # ---- plain statements -----------------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """Run one statement (autocommit) and return its cursor (``lastrowid``, ``rowcount``)."""
        t0 = time.thread_time() if self.account_cpu else 0.0
        with self._lock:
            self.commit()
            try:
                return self._conn.execute(sql, params)
            finally:
                if t0:
                    self._account(t0)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement for many parameter rows, in one transaction."""
        with self._lock:
            self.commit()
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany(sql, rows)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] = ()) -> List[sqlite3.Row]:
        """Run a SELECT and return all rows (including those of the open batch: same connection)."""
        t0 = time.thread_time() if self.account_cpu else 0.0
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            finally:
                if t0:
                    self._account(t0)

    def transaction(self):
        """Context manager holding the lock for several statements in one transaction."""
        return _Tx(self)

    def close(self) -> None:
        """Commit the open batch and close the connection (later calls fail)."""
        with self._lock:
            self._closed = True
            self._batch_wake.set()
            try:
                self.commit()
            except sqlite3.Error:
                pass
            try:
                self._conn.close()
            except sqlite3.Error:
                pass


#: devices columns added after the first release: (name, type); added to older files at open
_ADDED_DEVICE_COLUMNS = (
    ("active_time", "REAL"),   # first time the device came online (IoTDA's active_time); NULL = never
    ("status_time", "REAL"),   # last online/offline change (IoTDA's connection_status_update_time)
    ("description", "TEXT"),   # AddDevice/UpdateDevice description
    ("extension_info", "TEXT"),  # AddDevice/UpdateDevice extension_info, a JSON object
    ("secure_access", "INTEGER"),  # auth_info.secure_access; NULL = not given (IoTDA's default: true)
)


def _add_columns(conn: sqlite3.Connection) -> None:
    have = {row[1] for row in conn.execute("PRAGMA table_info(devices)")}
    for name, sql_type in _ADDED_DEVICE_COLUMNS:
        if name not in have:
            try:
                conn.execute(f"ALTER TABLE devices ADD COLUMN {name} {sql_type}")
            except sqlite3.OperationalError:
                pass  # another process sharing the file added it first


class _Tx:
    def __init__(self, store: Store) -> None:
        self.store = store

    def __enter__(self) -> sqlite3.Connection:
        self.store._lock.acquire()
        try:
            self.store.commit()
            self.store._conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.store._lock.release()
            raise
        return self.store._conn

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.store._conn.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.store._lock.release()


# ---- device registry ---------------------------------------------------------------------------------

_UPDATABLE = frozenset({"name", "secret", "fingerprint", "product_id", "gateway_id", "auth_type", "node_id",
                        "description", "extension_info", "secure_access"})


def row_to_device(row: sqlite3.Row) -> dict:
    """A ``devices`` row as the record dict the API returns (``frozen``/``online``/``secure_access`` as bools,
    ``extension_info`` decoded)."""
    d = dict(row)
    d["frozen"] = bool(d["frozen"])
    d["online"] = bool(d["online"])
    d["secure_access"] = d.get("secure_access") is None or bool(d["secure_access"])
    raw = d.get("extension_info")
    try:
        d["extension_info"] = json.loads(raw) if raw else None
    except ValueError:
        d["extension_info"] = None
    return d


class DeviceRegistry:
    """The device registry rules on a :class:`Store`, with no broker, no network and no side effects.

    ``PlatformCore`` adds the live effects (closing a deleted/frozen device's connection, dropping its
    cached messages); this class only reads and writes the database, so several processes (a running
    emulator and the ``iotda-emulator device`` command) can share one data directory.
    """

    def __init__(self, db: Store) -> None:
        self.db = db

    def create_device(self, device_id: Optional[str] = None, secret: Optional[str] = None, *,
                      product_id: str = "emu_product", node_id: Optional[str] = None,
                      fingerprint: Optional[str] = None, gateway_id: Optional[str] = None,
                      name: Optional[str] = None, auth_type: Optional[str] = None,
                      description: Optional[str] = None, extension_info: Optional[dict] = None,
                      secure_access: Optional[bool] = None) -> dict:
        """Register a device and return its record (with the secret).

        Without ``device_id`` it is ``{product_id}_{node_id}`` (node id random when absent). Without
        ``secret`` a random one is made, unless the device authenticates by certificate
        (``fingerprint`` given or ``auth_type="CERTIFICATES"``; with no fingerprint the first certificate
        presented is bound). Raises ``ValueError`` for an invalid id/auth type and ``EmulatorError`` when
        the id is taken.
        """
        from iotda_emulator.protocol import topics
        from iotda_emulator.broker import SERVICE_ACCOUNT
        from iotda_emulator.certs import normalize_fingerprint
        from iotda_emulator.errors import EmulatorError

        if node_id is None:
            node_id = device_id if device_id else uuid.uuid4().hex[:12]
        if device_id is None:
            device_id = f"{product_id}_{node_id}"
        if not topics.is_valid_device_id(device_id) or device_id == SERVICE_ACCOUNT:
            raise ValueError(f"invalid device id {device_id!r}")
        if auth_type is None:
            auth_type = "CERTIFICATES" if fingerprint and not secret else "SECRET"
        if auth_type not in ("SECRET", "CERTIFICATES"):
            raise ValueError("auth_type must be SECRET or CERTIFICATES")
        if secret is None and auth_type == "SECRET":
            secret = _secrets.token_hex(16)
        try:
            self.db.execute(
                "INSERT INTO devices(device_id, secret, product_id, node_id, fingerprint, auth_type, gateway_id, name, "
                "frozen, online, created, description, extension_info, secure_access) "
                "VALUES (?,?,?,?,?,?,?,?,0,0,?,?,?,?)",
                (device_id, secret, product_id, node_id, normalize_fingerprint(fingerprint), auth_type,
                 gateway_id, name or device_id, time.time(), description,
                 None if extension_info is None else json.dumps(extension_info),
                 None if secure_access is None else int(bool(secure_access))))
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc):
                raise EmulatorError(f"device {device_id} already exists") from None
            raise
        return self.get_device(device_id)

    def get_device(self, device_id: str) -> Optional[dict]:
        """The registry record of ``device_id`` (a dict) or None."""
        rows = self.db.query("SELECT * FROM devices WHERE device_id=?", (device_id,))
        return row_to_device(rows[0]) if rows else None

    def require(self, device_id: str) -> dict:
        """The record of ``device_id``; raises ``DeviceNotFound`` when there is none."""
        from iotda_emulator.errors import DeviceNotFound

        rec = self.get_device(device_id)
        if rec is None:
            raise DeviceNotFound(f"device {device_id} not found")
        return rec

    def list_devices(self) -> List[dict]:
        """Every registered device, oldest first."""
        return [row_to_device(r) for r in self.db.query("SELECT * FROM devices ORDER BY created, device_id")]

    def clear_shadow(self, device_id: str) -> int:
        """Delete every shadow entry of ``device_id`` (DeleteDeviceShadow); returns how many there were."""
        self.require(device_id)
        with self.db.transaction() as conn:
            return conn.execute("DELETE FROM shadow WHERE device_id=?", (device_id,)).rowcount

    def children(self, gateway_id: str) -> List[dict]:
        """The sub-devices whose gateway is ``gateway_id``."""
        return [row_to_device(r) for r in self.db.query(
            "SELECT * FROM devices WHERE gateway_id=? ORDER BY created, device_id", (gateway_id,))]

    def update_device(self, device_id: str, **fields: Any) -> dict:
        """Change registry fields (name, secret, fingerprint, product_id, gateway_id, auth_type, node_id).

        Returns the new record; raises ``ValueError`` for other fields, ``DeviceNotFound``.
        """
        bad = set(fields) - _UPDATABLE
        if bad:
            raise ValueError(f"cannot update {sorted(bad)}")
        if "auth_type" in fields and fields["auth_type"] not in ("SECRET", "CERTIFICATES"):
            raise ValueError("auth_type must be SECRET or CERTIFICATES")
        if "fingerprint" in fields:
            from iotda_emulator.certs import normalize_fingerprint
            fields["fingerprint"] = normalize_fingerprint(fields["fingerprint"])
        if "extension_info" in fields and fields["extension_info"] is not None:
            fields["extension_info"] = json.dumps(fields["extension_info"])
        if "secure_access" in fields:
            fields["secure_access"] = 1 if fields["secure_access"] else 0
        self.require(device_id)
        if fields:
            cols = sorted(fields)  # names come from _UPDATABLE only: safe to format into the SQL
            self.db.execute(f"UPDATE devices SET {', '.join(c + '=?' for c in cols)} WHERE device_id=?",
                            [fields[c] for c in cols] + [device_id])
        return self.get_device(device_id)

    def bind_fingerprint(self, device_id: str, fingerprint: str) -> None:
        """Store the certificate fingerprint of a certificate device unless one is bound already."""
        self.db.execute("UPDATE devices SET fingerprint=? WHERE device_id=? AND (fingerprint IS NULL OR fingerprint='')",
                        (fingerprint, device_id))

    def delete_device(self, device_id: str) -> bool:
        """Remove a device and its shadow; True when it existed."""
        with self.db.transaction() as conn:
            cur = conn.execute("DELETE FROM devices WHERE device_id=?", (device_id,))
            conn.execute("DELETE FROM shadow WHERE device_id=?", (device_id,))
            return bool(cur.rowcount)

    def set_frozen(self, device_id: str, frozen: bool = True) -> None:
        """Record a device as frozen or not; raises ``DeviceNotFound``."""
        self.require(device_id)
        self.db.execute("UPDATE devices SET frozen=? WHERE device_id=?", (1 if frozen else 0, device_id))

    def set_connection(self, device_id: str, online: bool) -> bool:
        """Record ``device_id`` online/offline; returns the previous flag (False for an unknown device).

        A change stamps ``status_time`` (IoTDA's ``connection_status_update_time``); the first time a device
        comes online stamps ``active_time`` (IoTDA's ``active_time``, kept for good).
        """
        now = time.time()
        with self.db.transaction() as conn:
            rows = conn.execute("SELECT online FROM devices WHERE device_id=?", (device_id,)).fetchall()
            if not rows:
                return False
            was = bool(rows[0]["online"])
            if was != bool(online):
                conn.execute("UPDATE devices SET online=?, status_time=?, "
                             "active_time=CASE WHEN ?=1 THEN COALESCE(active_time, ?) ELSE active_time END "
                             "WHERE device_id=?", (1 if online else 0, now, 1 if online else 0, now, device_id))
            return was

    def reset_connections(self) -> None:
        """Mark every device offline (a platform start: nothing is connected yet), stamping the changed ones."""
        self.db.execute("UPDATE devices SET online=0, status_time=? WHERE online=1", (time.time(),))

    def is_online(self, device_id: str) -> bool:
        """The recorded online flag (False for an unknown device)."""
        rows = self.db.query("SELECT online FROM devices WHERE device_id=?", (device_id,))
        return bool(rows and rows[0]["online"])
