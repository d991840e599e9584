"""Device log collection, ``$log`` (upstream ``devicelog.device_log_service``).

The platform switches collection on/off and sets an end time (UTC ``yyyyMMdd'T'HHmmss'Z'``) with
``log_config`` events; both are checked on every report, not only at connect.
"""
from __future__ import annotations

import datetime as _dt
import logging
import threading
from typing import Dict, Optional

from iot_device_sdk_python.client.request.device_event import DeviceEvent
from iot_device_sdk_python.protocol import codec
from iot_device_sdk_python.service.abstract_service import AbstractService
from iot_device_sdk_python.transport.publish_handle import PublishHandle

_logger = logging.getLogger(__name__)


class DeviceLogService(AbstractService):
    """Reports ``log_report`` events (type ``DEVICE_STATUS``/``DEVICE_PROPERTY``/``DEVICE_MESSAGE``/``DEVICE_COMMAND``)."""

    _SERVICE_ID = "$log"
    _LOG_CONFIG = "log_config"
    _LOG_REPORT = "log_report"

    def __init__(self) -> None:
        super().__init__()
        self._log_switch = True
        self._end_time: Optional[str] = None
        self._connect_lost_dict: Optional[Dict[str, str]] = None
        self._connect_failed_dict: Optional[Dict[str, str]] = None
        self._lock = threading.Lock()

    @property
    def log_switch(self) -> bool:
        """True while the platform allows log reports (``log_config`` switch)."""
        return self._log_switch

    @log_switch.setter
    def log_switch(self, value: bool) -> None:
        self._log_switch = bool(value)

    @property
    def end_time(self) -> Optional[str]:
        """UTC ``yyyyMMdd'T'HHmmss'Z'`` after which no log is reported (None = no limit)."""
        return self._end_time

    @end_time.setter
    def end_time(self, value: Optional[str]) -> None:
        self._end_time = value

    @property
    def connect_lost_dict(self) -> Optional[Dict[str, str]]:
        """Connection losses not yet reported: ``{timestamp_ms: text}``."""
        return self._connect_lost_dict

    @connect_lost_dict.setter
    def connect_lost_dict(self, value: Optional[Dict[str, str]]) -> None:
        self._connect_lost_dict = value

    @property
    def connect_failed_dict(self) -> Optional[Dict[str, str]]:
        """Failed connection attempts not yet reported: ``{timestamp_ms: text}``."""
        return self._connect_failed_dict

    @connect_failed_dict.setter
    def connect_failed_dict(self, value: Optional[Dict[str, str]]) -> None:
        self._connect_failed_dict = value

    def on_event(self, device_event: DeviceEvent) -> None:
        """``log_config``: ``switch`` "on"/"off" and optional ``end_time``."""
        if device_event.event_type != self._LOG_CONFIG:
            _logger.debug("$log ignores event %s", device_event.event_type)
            return
        paras = device_event.paras if isinstance(device_event.paras, dict) else {}
        switch = paras.get("switch")
        if isinstance(switch, str) and switch.lower() in ("on", "off"):
            self._log_switch = switch.lower() == "on"
        elif switch is not None:
            _logger.warning("log_config with invalid switch %r ignored", switch)
        if "end_time" in paras:
            end = paras.get("end_time")
            if end in (None, ""):
                self._end_time = None
            elif isinstance(end, str):
                try:
                    codec.parse_event_time(end)
                    self._end_time = end
                except ValueError:
                    _logger.warning("log_config with invalid end_time %r ignored", end)

    def can_report_log(self) -> bool:
        """True when reports are switched on and the end time (UTC) has not passed."""
        if not self._log_switch:
            return False
        if not self._end_time:
            return True
        try:
            end = codec.parse_event_time(self._end_time)
        except ValueError:
            return True
        return _dt.datetime.now(_dt.timezone.utc) < end

    def report_device_log(self, timestamp: str, log_type: str, content: str) -> Optional[PublishHandle]:
        """Publish one ``log_report`` when allowed. Returns the PublishHandle, or None when not sent."""
        if not self.can_report_log():
            return None
        if self.get_iot_device() is None:
            return None
        return self._report_event(self._LOG_REPORT, {"timestamp": str(timestamp), "type": log_type, "content": content})

    # ---- used by the default listeners -------------------------------------------------------------

    def _record(self, attr: str, text: str) -> None:
        with self._lock:
            d = getattr(self, attr) or {}
            d[str(codec.now_ms())] = text
            while len(d) > 20:  # keep memory bounded during a long outage
                d.pop(next(iter(d)))
            setattr(self, attr, d)

    def _take(self, attr: str) -> Dict[str, str]:
        with self._lock:
            d = getattr(self, attr) or {}
            setattr(self, attr, None)
            return d
