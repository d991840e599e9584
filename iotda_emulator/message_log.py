"""What happened to each message the platform sent a device: IoTDA's message status
(ListDeviceMessages, ShowDeviceMessage, DeleteDeviceMessage), and the cache of messages for offline devices.

IoTDA keeps at most 20 messages per device; a 21st replaces the oldest, and a replaced message that was still
cached is not delivered any more. Statuses: ``PENDING`` (device offline, cached until it connects),
``DELIVERED`` (published to the connected device), ``FAILED`` (could not be handed to the broker), ``TIMEOUT``
(still cached when its ttl ran out: 1 day by default). A message is cached for the device that carries it
(a sub-device's for its gateway) and flushed, oldest first, when that device connects.

Choices where IoTDA's documentation is silent (doc/emulator.md): the log lives in memory (an emulator restart
forgets it), and DeleteDeviceMessage of a cached message also removes it from the cache.
"""
from __future__ import annotations

import collections
import itertools
import threading
import time
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

KEEP_PER_DEVICE = 20   # messages kept per device, cached ones included (protocol §2.3)

PENDING, DELIVERED, FAILED, TIMEOUT = "PENDING", "DELIVERED", "FAILED", "TIMEOUT"

#: The fields of a record the REST API shows (IoTDA's DeviceMessage); the rest is internal.
PUBLIC_FIELDS = ("message_id", "name", "message", "encoding", "payload_format", "topic", "properties",
                 "status", "error_info", "created_time", "finished_time")


class MessageLog:
    """Per-device message records, newest kept, and the pending ones in send order. Thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 stamp: Callable[[], str] = lambda: time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())) -> None:
        self._clock = clock
        self._stamp = stamp
        self._lock = threading.Lock()
        self._by_device: Dict[str, Deque[dict]] = {}
        self._seq = itertools.count()   # global send order: a gateway's flush interleaves its children's

    def add(self, device_id: str, carrier: str, message_id: str, status: str, *, topic: str, data: bytes,
            qos: int, expires: Optional[float], details: Optional[Dict[str, Any]] = None) -> dict:
        """Record a message for ``device_id`` (carried by ``carrier``: itself or its gateway); returns a copy.

        ``expires`` is a monotonic deadline for a PENDING message (None: never). ``details`` are the fields the
        application gave (name, message, encoding, payload_format, topic, properties). An existing record with
        the same id is replaced.
        """
        rec: Dict[str, Any] = {"message_id": message_id, "name": None, "message": None, "encoding": "none",
                               "payload_format": "standard", "topic": topic, "properties": None, "status": status,
                               "error_info": None, "created_time": self._stamp(),
                               "finished_time": None if status == PENDING else self._stamp()}
        rec.update({k: v for k, v in (details or {}).items() if k in PUBLIC_FIELDS})
        rec.update(_carrier=carrier, _topic=topic, _data=data, _qos=qos, _expires=expires)
        with self._lock:
            rec["_seq"] = next(self._seq)
            records = self._by_device.setdefault(device_id, collections.deque())
            for old in list(records):
                if old["message_id"] == message_id:
                    records.remove(old)
            records.append(rec)
            while len(records) > KEEP_PER_DEVICE:
                records.popleft()   # replaced: no longer listed, and no longer delivered if still cached
            return _public(rec)

    def take_pending(self, carrier: str) -> List[Tuple[str, str, str, bytes, int]]:
        """The cached messages ``carrier`` must now receive, oldest first, as (device id, message id, topic,
        data, qos); each is marked DELIVERED, and those past their ttl TIMEOUT instead (and left out)."""
        out: List[Tuple[int, str, str, str, bytes, int]] = []
        with self._lock:
            for device_id, records in self._by_device.items():
                self._expire_locked(records)
                for rec in records:
                    if rec["status"] != PENDING or rec["_carrier"] != carrier:
                        continue
                    self._finish(rec, DELIVERED)
                    out.append((rec["_seq"], device_id, rec["message_id"], rec["_topic"], rec["_data"], rec["_qos"]))
        out.sort(key=lambda item: item[0])
        return [item[1:] for item in out]

    def mark(self, device_id: str, message_id: str, status: str, error: Optional[str] = None) -> None:
        """Set the final status of a message (FAILED with ``error`` when a cached send failed)."""
        with self._lock:
            for rec in self._by_device.get(device_id, ()):
                if rec["message_id"] == message_id:
                    self._finish(rec, status, error)

    def _finish(self, rec: dict, status: str, error: Optional[str] = None) -> None:
        rec["status"] = status
        rec["finished_time"] = self._stamp()
        if error:
            rec["error_info"] = {"error_code": status, "error_msg": error}   # IoTDA's codes here are not public

    def _expire_locked(self, records: Deque[dict]) -> None:
        now = self._clock()
        for rec in records:
            if rec["status"] == PENDING and rec["_expires"] is not None and rec["_expires"] <= now:
                self._finish(rec, TIMEOUT, "message ttl expired before the device connected")

    def list(self, device_id: str) -> List[dict]:
        """The device's messages, newest first (at most 20)."""
        with self._lock:
            records = self._by_device.get(device_id, collections.deque())
            self._expire_locked(records)
            return [_public(r) for r in reversed(records)]

    def get(self, device_id: str, message_id: str) -> Optional[dict]:
        """One message of the device, or None."""
        with self._lock:
            records = self._by_device.get(device_id, collections.deque())
            self._expire_locked(records)
            for rec in records:
                if rec["message_id"] == message_id:
                    return _public(rec)
        return None

    def delete(self, device_id: str, message_id: str) -> bool:
        """Forget a message (a cached one is then never delivered); True when it existed."""
        with self._lock:
            records = self._by_device.get(device_id)
            for rec in list(records or ()):
                if rec["message_id"] == message_id:
                    records.remove(rec)   # type: ignore[union-attr]
                    return True
        return False

    def forget_device(self, device_id: str) -> None:
        """Drop every record of a deleted device."""
        with self._lock:
            self._by_device.pop(device_id, None)


def _public(rec: dict) -> dict:
    return {k: rec.get(k) for k in PUBLIC_FIELDS}
