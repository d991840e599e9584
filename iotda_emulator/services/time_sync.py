"""``$time_sync`` on the platform side: answers ``time_sync_request`` with the platform's clock.

``device_send_time`` is accepted as an integer or a string of digits (upstream Python SDKs send a
string) and echoed as an integer with ``server_recv_time`` / ``server_send_time`` (ms since the epoch).

Python API (``emu.service("$time_sync")``): ``clock_offset_ms`` (settable: shifts the platform clock,
to test the device's correction), ``requests(device_id)``.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, List, Optional

from iotda_emulator.protocol import codec
from iotda_emulator.services.base import PlatformService

log = logging.getLogger(__name__)




class TimeSyncService(PlatformService):
    """The ``$time_sync`` platform service."""

    service_ids = ("$time_sync",)

    def __init__(self, core: Any) -> None:
        super().__init__(core)
        #: milliseconds added to the platform clock in responses
        self.clock_offset_ms = 0
        self._lock = threading.Lock()
        self._requests: List[dict] = []

    def on_event(self, device_id: str, object_device_id: Optional[str], event: dict) -> None:
        server_recv_time = codec.now_ms() + self.clock_offset_ms
        target = object_device_id or device_id
        if event.get("event_type") != "time_sync_request":
            log.warning("unknown $time_sync event type %r from %s; ignored", event.get("event_type"), target)
            return
        paras = event.get("paras")
        device_send_time = codec.as_int(paras.get("device_send_time")) if isinstance(paras, dict) else None
        if device_send_time is None:
            log.warning("time_sync_request from %s without a valid device_send_time; ignored", target)
            return
        with self._lock:
            self._requests.append({"device_id": target, "device_send_time": device_send_time,
                                   "raw": paras.get("device_send_time"), "server_recv_time": server_recv_time})
            del self._requests[:-1000]
        try:
            self.core.send_event(target, "$time_sync", "time_sync_response", {
                "device_send_time": device_send_time,
                "server_recv_time": server_recv_time,
                "server_send_time": codec.now_ms() + self.clock_offset_ms,
            })
        except Exception as exc:
            log.warning("time_sync_response for %s not sent: %s", target, exc)

    def requests(self, device_id: Optional[str] = None) -> List[dict]:
        """Recorded requests (``device_id``, ``device_send_time`` as int, ``raw`` as received)."""
        with self._lock:
            return [dict(r) for r in self._requests if device_id is None or r["device_id"] == device_id]

    def describe(self) -> Any:
        """Request count and the clock offset."""
        with self._lock:
            return {"requests": len(self._requests), "clock_offset_ms": self.clock_offset_ms}
