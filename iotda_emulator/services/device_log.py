"""``$log`` on the platform side: stores ``log_report`` / ``security_log_report`` entries and pushes
``log_config`` (``switch`` on/off, ``end_time`` UTC ``yyyyMMdd'T'HHmmss'Z'``) to devices.

Python API (``emu.service("$log")``): ``logs(device_id)``, ``wait_logs``, ``set_log_config``,
``configs(device_id)``.
"""
from __future__ import annotations

import datetime as _dt
import logging
import threading
import time
from typing import Any, Dict, List, Optional, Union

from iotda_emulator.protocol import codec
from iotda_emulator.services.base import PlatformService

log = logging.getLogger(__name__)

_MAX_PER_DEVICE = 1000
_MAX_CONTENT = 1024 * 1024


class DeviceLogService(PlatformService):
    """The ``$log`` platform service."""

    service_ids = ("$log",)

    def __init__(self, core: Any) -> None:
        super().__init__(core)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._logs: Dict[str, List[dict]] = {}
        self._configs: Dict[str, List[dict]] = {}

    def on_event(self, device_id: str, object_device_id: Optional[str], event: dict) -> None:
        target = object_device_id or device_id
        event_type = event.get("event_type")
        if event_type not in ("log_report", "security_log_report"):
            log.warning("unknown $log event type %r from %s; ignored", event_type, target)
            return
        paras = event.get("paras")
        if not isinstance(paras, dict) or not isinstance(paras.get("type"), str) or "content" not in paras:
            log.warning("$log %s from %s without type/content; ignored", event_type, target)
            return
        content = paras.get("content")
        if isinstance(content, str) and len(content) > _MAX_CONTENT:
            log.warning("$log %s from %s: content over 1 MB; ignored", event_type, target)
            return
        ts = paras.get("timestamp")
        entry = {"event_type": event_type, "type": paras["type"], "content": content,
                 "timestamp": ts if isinstance(ts, (str, int)) and not isinstance(ts, bool) else None,
                 "time": time.time()}
        with self._changed:
            lst = self._logs.setdefault(target, [])
            lst.append(entry)
            del lst[:-_MAX_PER_DEVICE]
            self._changed.notify_all()

    def logs(self, device_id: str, log_type: Optional[str] = None) -> List[dict]:
        """Stored entries of ``device_id`` (``event_type``, ``type``, ``content``, ``timestamp``, ``time``)."""
        with self._lock:
            return [dict(e) for e in self._logs.get(device_id, []) if log_type is None or e["type"] == log_type]

    def wait_logs(self, device_id: str, count: int = 1, timeout: float = 10.0, log_type: Optional[str] = None) -> List[dict]:
        """Wait until ``device_id`` has at least ``count`` entries (of ``log_type``); returns them."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [e for e in self._logs.get(device_id, []) if log_type is None or e["type"] == log_type]
                if len(found) >= count:
                    return [dict(e) for e in found]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(found)} of {count} log entries from {device_id}")
                self._changed.wait(remaining)

    def set_log_config(self, device_id: str, switch: Union[str, bool] = "on",
                       end_time: Union[str, float, _dt.datetime, None] = None) -> str:
        """Send ``log_config`` to ``device_id``: ``switch`` "on"/"off" (or a bool), ``end_time`` as IoTDA text,
        an epoch time in seconds or an aware datetime. Returns the event id (raises DeviceOffline...)."""
        if isinstance(switch, bool):
            switch = "on" if switch else "off"
        if switch not in ("on", "off"):
            raise ValueError("switch must be 'on' or 'off'")
        paras: Dict[str, Any] = {"switch": switch}
        if end_time is not None:
            if isinstance(end_time, _dt.datetime):
                end_time = end_time.timestamp()
            if isinstance(end_time, (int, float)):
                end_time = codec.event_time(float(end_time))
            codec.parse_event_time(end_time)   # validates the text form
            paras["end_time"] = end_time
        event_id = self.core.send_event(device_id, "$log", "log_config", paras)
        with self._lock:
            self._configs.setdefault(device_id, []).append(dict(paras, time=time.time(), event_id=event_id))
        return event_id

    def configs(self, device_id: str) -> List[dict]:
        """The ``log_config`` paras sent to ``device_id``, oldest first."""
        with self._lock:
            return [dict(c) for c in self._configs.get(device_id, [])]

    def describe(self) -> Any:
        """device id → entry count."""
        with self._lock:
            return {d: len(lst) for d, lst in self._logs.items()}
