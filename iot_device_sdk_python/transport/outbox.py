"""The outbox: the one owner of a device's outgoing messages between ``publish`` and the broker's answer.

What it holds, and where:

* the **offline buffer** (messages published while offline, and QoS 1 messages whose link died before the
  PUBACK), in publish order, bounded, oldest dropped first (``max_buffer_message`` in memory, or
  ``offline_queue_max`` with a durable queue);
* with a **durable queue** (``ConnectAuthInfo.offline_queue_path``), the sqlite3 file: every QoS 1 message is
  committed there *before* it is handed to the network (write-ahead, on the publishing thread, so that
  once ``publish()`` returned the message survives a crash of the process), and its row is deleted only
  once the broker acknowledged it (PUBACK) or the message was given up (dropped as the oldest, invalid). A
  process that starts with the same file sends every surviving row again, first and in order: at least
  once, never lost to a crash of the process;
* the buffer metrics.

Batching: the deletes of acknowledged rows are collected and committed by one writer thread, one
transaction per burst of PUBACKs, or together with the next write-ahead commit, whichever comes first (a
delete that a crash loses only means one more duplicate). Each write-ahead is its own commit: batching
those would return from ``publish()`` before the message is on disk (doc/reliability.md has the figures).

The connection keeps the per-link part: the map from MQTT message id to message while a QoS 1 message is
in flight (the lock-free claims of ``MqttConnection._track``/``_on_publish``). Every outbox method that
touches the buffer runs under the connection's lock, which the outbox is given (one lock, so a buffer
decision and the link state it depends on are always seen together).
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, Callable, Deque, List, Optional

from iot_device_sdk_python.transport.action_listener import ActionListener
from iot_device_sdk_python.transport.offline_queue import DEFAULT_MAX, BufferMetrics, DurableOfflineQueue
from iot_device_sdk_python.transport.publish_handle import PublishHandle

_logger = logging.getLogger(__name__)


class OutgoingMessage(PublishHandle):
    """One outgoing message: the :class:`PublishHandle` given to the caller, which also carries what is
    needed to send, buffer and report it.

    One slotted object per publish instead of a RawMessage, a BufferMessage and a handle (fewer allocations
    and fewer objects for the garbage collector to track while messages are in flight; doc/performance.md).
    ``_o_topic``/``_o_payload``/``_o_qos`` are taken when the message is published (and validated then);
    ``_o_rowid`` is its row in the durable queue, ``_o_counted`` whether the buffer metrics counted it.
    """

    # ``_o_props``: MQTT 5 properties (MqttV5Data), set only when given; read with getattr(..., None)
    __slots__ = ("_o_topic", "_o_payload", "_o_qos", "_o_listener", "_o_seq", "_o_rowid", "_o_counted", "_o_props")

    _o_props: Any  # unset unless the message has MQTT 5 properties

    # one lock shared by every message instead of a new Lock per publish (a class attribute shadows
    # PublishHandle's slot): it only guards a handle's own few fields for a few instructions, nothing
    # is called while it is held, and no other lock is taken under it, so sharing it cannot deadlock
    _lock = threading.Lock()

    def __init__(self, topic: Any, payload: Any, qos: Any, listener: Optional[ActionListener], seq: int,
                 callback_runner: Optional[Callable[..., object]]) -> None:
        # PublishHandle's fields, set here rather than through super().__init__() (hot path)
        self._topic = topic if topic.__class__ is str or isinstance(topic, str) else ""
        self._done = False
        self._event = None
        self._exception = None
        self._mid = None
        self._callbacks = None
        self._callback_runner = callback_runner
        self._o_topic = topic
        self._o_payload = payload
        self._o_qos = qos
        self._o_listener = listener
        self._o_seq = seq
        self._o_rowid: Optional[int] = None
        self._o_counted = False


class Outbox:
    """Offline buffer, durable queue and write-ahead of one connection (see the module docstring).

    ``lock`` is the connection's (re-entrant) lock. ``fail_overflow(message, text)`` fails a message dropped
    as the oldest of a full buffer.
    """

    #: seconds the writer waits after the first delete of a burst before it commits them all
    DELETE_COALESCE = 0.005

    def __init__(self, lock: "threading.RLock", path: Optional[str], queue_max: Optional[int],
                 memory_max: Callable[[], int], fail_overflow: Callable[[OutgoingMessage, str], None],
                 name: str) -> None:
        self._lock = lock
        self.path = path or None
        self._queue_max = DEFAULT_MAX if queue_max is None else queue_max
        self._memory_max = memory_max
        self._fail_overflow = fail_overflow
        self._name = name
        #: the offline buffer, in publish order (read by the connection under the lock; never replaced)
        self.buffer: Deque[OutgoingMessage] = collections.deque()
        self.metrics = BufferMetrics()
        self.store: Optional[DurableOfflineQueue] = None
        # rows of acknowledged messages waiting for their (batched) delete; own condition: paho's thread
        # hands a row over without waiting for the connection's lock or for sqlite
        self._wal = threading.Condition(threading.Lock())
        self._to_delete: List[int] = []
        self._writer: Optional[threading.Thread] = None
        self._stopping = False

    # ---- buffer (caller holds the connection lock) --------------------------------------------------

    @property
    def durable(self) -> bool:
        """True when backed by a sqlite file (open)."""
        return self.store is not None

    def limit(self) -> int:
        """Bound of the offline buffer (0 = buffering off)."""
        if self.path:
            return self._queue_max
        return self._memory_max() or 0

    def insert(self, bm: OutgoingMessage) -> None:
        """Put ``bm`` in the buffer at its place by sequence number (persisting it once); drop the oldest
        when full. Caller holds the lock and checked ``limit() > 0``."""
        limit = self.limit()
        buf = self.buffer
        self._persist(bm)
        if not buf or buf[-1]._o_seq < bm._o_seq:
            buf.append(bm)
        else:
            idx = next(i for i, b in enumerate(buf) if b._o_seq > bm._o_seq)
            buf.insert(idx, bm)
        while len(buf) > limit:
            oldest = buf.popleft()
            self.metrics.dropped += 1
            self._fail_overflow(oldest, f"offline buffer full ({limit}); oldest message dropped")

    def _persist(self, bm: OutgoingMessage) -> None:
        """Count ``bm`` as queued (once) and write it to the durable queue (once)."""
        if not bm._o_counted:
            bm._o_counted = True
            self.metrics.queued += 1
        store = self.store
        if store is not None and bm._o_rowid is None:
            bm._o_rowid = store.add(bm._o_seq, bm._o_topic, bm._o_payload, bm._o_qos)

    def forget(self, bm: OutgoingMessage, sent: bool) -> None:
        """``bm`` is done (acknowledged when ``sent``, else given up): count it and delete its row (batched)."""
        counted, row = bm._o_counted, bm._o_rowid
        if not counted and row is None:
            return
        with self._lock:
            if sent and counted:
                self.metrics.sent += 1
            row = bm._o_rowid
            bm._o_rowid = None
        if row is not None:
            with self._wal:
                self._to_delete.append(row)
                if sent and self._writer is not None:
                    self._wal.notify()  # acknowledged: batched with the burst
                    return
            # given up (its handle failed): gone from the file before anyone hears of it, so that a restart
            # never sends a message reported as failed; also the path when no writer runs (closing)
            self._write_now()

    def snapshot(self) -> BufferMetrics:
        """The metrics with ``size`` and ``durable`` filled in."""
        with self._lock:
            values = self.metrics.to_dict()
            values.update(size=len(self.buffer), durable=self.store is not None)
        return BufferMetrics(**values)

    # ---- the durable file ---------------------------------------------------------------------------

    def open(self, next_seq: int) -> int:
        """Open the file (when configured and not open), put what an earlier process left in front of the
        buffer, start the writer. Returns the next free sequence number (>= ``next_seq``)."""
        if not self.path or self.store is not None:
            return next_seq
        store = DurableOfflineQueue(self.path)
        rows = store.load()
        with self._lock:
            self.store = store
            next_seq = max(store.max_seq() + 1, next_seq)
            known = {b._o_rowid for b in self.buffer}
            restored = []
            for row_id, seq, topic, payload, qos in rows:
                if row_id in known:
                    continue
                bm = OutgoingMessage(topic, payload, qos, None, seq, None)  # nobody holds this handle
                bm._o_rowid, bm._o_counted = row_id, True
                restored.append(bm)
            self.metrics.restored += len(restored)
            merged = sorted(list(self.buffer) + restored, key=lambda b: b._o_seq)
            self.buffer.clear()
            self.buffer.extend(merged)
            while len(self.buffer) > self._queue_max:
                oldest = self.buffer.popleft()
                self.metrics.dropped += 1
                self._fail_overflow(oldest, f"offline queue full ({self._queue_max}); oldest message dropped")
        with self._wal:
            self._stopping = False
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_loop, daemon=True, name=f"iot-outbox-{self._name}")
                self._writer.start()
        if restored:
            _logger.info("%s: %d message(s) restored from the offline queue file", self._name, len(restored))
        return next_seq

    def close(self) -> None:
        """Stop the writer, apply the deletes still waiting, close the file (the rows stay for the next
        process)."""
        with self._wal:
            self._stopping = True
            self._wal.notify_all()
            writer, self._writer = self._writer, None
        if writer is not None and writer is not threading.current_thread():
            writer.join(10)
        self._write_now()
        with self._lock:
            store, self.store = self.store, None
        if store is not None:
            store.close()

    # ---- write-ahead ----------------------------------------------------------------------------------

    def write_ahead(self, bm: OutgoingMessage) -> None:
        """Commit ``bm`` to the file before it is sent (publishing thread), with the deletes waiting."""
        store = self.store
        if store is None or bm._o_rowid is not None:
            return
        with self._wal:
            deletes, self._to_delete = self._to_delete, []
        bm._o_rowid = store.write_batch([(bm._o_seq, bm._o_topic, bm._o_payload, bm._o_qos)], deletes)[0]

    def _write_loop(self) -> None:
        wal = self._wal
        while True:
            with wal:
                while not self._to_delete and not self._stopping:
                    wal.wait()
                if self._stopping:
                    return  # close() applies what is left
            time.sleep(self.DELETE_COALESCE)  # let a burst of PUBACKs gather: one transaction for all
            try:
                self._write_now()
            except Exception:  # a bug must not stop the outbox; the rows are only sent again after a restart
                _logger.exception("%s: deleting acknowledged rows failed", self._name)

    def _write_now(self) -> None:
        with self._wal:
            deletes, self._to_delete = self._to_delete, []
        store = self.store
        if deletes and store is not None:
            store.write_batch([], deletes)
