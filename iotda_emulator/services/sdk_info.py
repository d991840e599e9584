"""``$sdk_info`` (and the older ``$device_info``) on the platform side: stores each device's SDK info.

Accepts ``sdk_info_report`` and ``device_info_report`` with ``device_sdk_version``, ``sw_version``,
``fw_version`` (and ``device_ip``; other string fields are kept too).

Python API (``emu.service("$sdk_info")``): ``info(device_id)``, ``history(device_id)``, ``wait_info``.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Dict, List, Optional

from iotda_emulator.services.base import PlatformService

log = logging.getLogger(__name__)


class SdkInfoService(PlatformService):
    """The ``$sdk_info`` / ``$device_info`` platform service."""

    service_ids = ("$sdk_info", "$device_info")

    def __init__(self, core: Any) -> None:
        super().__init__(core)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._history: Dict[str, List[dict]] = {}

    def on_event(self, device_id: str, object_device_id: Optional[str], event: dict) -> None:
        target = object_device_id or device_id
        if event.get("event_type") not in ("sdk_info_report", "device_info_report"):
            log.warning("unknown %s event type %r from %s; ignored", event.get("service_id"),
                        event.get("event_type"), target)
            return
        paras = event.get("paras")
        if not isinstance(paras, dict):
            log.warning("%s from %s without a paras object; ignored", event.get("event_type"), target)
            return
        record = {k: v for k, v in paras.items() if isinstance(k, str) and (v is None or isinstance(v, str))}
        record["service_id"] = event.get("service_id")
        record["time"] = time.time()
        with self._changed:
            lst = self._history.setdefault(target, [])
            lst.append(record)
            del lst[:-50]
            self._changed.notify_all()

    def info(self, device_id: str) -> Optional[dict]:
        """The latest report of ``device_id`` (``device_sdk_version``, ``sw_version``, ``fw_version``...) or None."""
        with self._lock:
            lst = self._history.get(device_id)
            return dict(lst[-1]) if lst else None

    def history(self, device_id: str) -> List[dict]:
        """Every stored report of ``device_id``, oldest first (the last 50)."""
        with self._lock:
            return [dict(r) for r in self._history.get(device_id, [])]

    def wait_info(self, device_id: str, timeout: float = 10.0) -> dict:
        """Wait for a report from ``device_id``; returns the latest (``TimeoutError`` otherwise)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not self._history.get(device_id):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no sdk info from {device_id}")
                self._changed.wait(remaining)
            return dict(self._history[device_id][-1])

    def describe(self) -> Any:
        """device id → latest report."""
        with self._lock:
            return {d: dict(lst[-1]) for d, lst in self._history.items() if lst}
