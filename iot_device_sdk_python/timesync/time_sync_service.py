"""``TimeSyncService``: the ``$time_sync`` system service (NTP-like clock synchronisation).

``request_time_sync`` sends ``device_send_time`` (ms, an integer as IoTDA documents; upstream sent a
string); the response goes to the :class:`TimeSyncListener`. Beyond upstream, :meth:`TimeSyncService.sync`
blocks until the response and returns the corrected time with the documented formula.
"""
from __future__ import annotations

import logging
import threading
from typing import Dict, List, Optional

from iot_device_sdk_python.errors import IotTimeoutError
from iot_device_sdk_python.client.request.device_event import DeviceEvent
from iot_device_sdk_python.protocol import codec
from iot_device_sdk_python.service.abstract_service import AbstractService
from iot_device_sdk_python.timesync.time_sync_listener import TimeSyncListener
from iot_device_sdk_python.transport.action_listener import ActionListener
from iot_device_sdk_python.transport.publish_handle import PublishHandle

_LOG = logging.getLogger(__name__)


class _Waiter:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.result: Optional[int] = None   # clock offset in ms


class TimeSyncService(AbstractService):
    """The ``$time_sync`` service registered on every device (``device.get_time_sync_service()``)."""

    _SERVICE_ID = "$time_sync"

    def __init__(self) -> None:
        super().__init__()
        self._listener: Optional[TimeSyncListener] = None
        self._lock = threading.Lock()
        self._waiters: Dict[int, List[_Waiter]] = {}
        self._dispatcher_ident: Optional[int] = None

    def get_listener(self) -> Optional[TimeSyncListener]:
        """The listener set with :meth:`set_listener`, or None."""
        return self._listener

    def set_listener(self, listener: TimeSyncListener) -> None:
        """Set the listener that receives ``on_time_sync_response``."""
        if listener is not None and not isinstance(listener, TimeSyncListener) and not callable(
                getattr(listener, "on_time_sync_response", None)):
            _LOG.error("set_listener: %s is not a TimeSyncListener; ignored", type(listener).__name__)
            return
        self._listener = listener

    @staticmethod
    def compute_time(device_send_time: int, server_recv_time: int, server_send_time: int,
                     device_recv_time: int) -> int:
        """The documented formula: ``(server_recv + server_send + device_recv - device_send) // 2`` (ms)."""
        return (server_recv_time + server_send_time + device_recv_time - device_send_time) // 2

    def request_time_sync(self, listener: Optional[ActionListener] = None) -> PublishHandle:
        """Publish ``time_sync_request`` with ``device_send_time`` = now in ms (an int).

        Returns the publish handle.
        """
        return self._request(codec.now_ms(), listener)

    def _request(self, device_send_time: int, listener: Optional[ActionListener] = None) -> PublishHandle:
        return self._report_event("time_sync_request", {"device_send_time": device_send_time}, listener)

    def _in_dispatcher(self) -> bool:
        if self._dispatcher_ident is not None and threading.get_ident() == self._dispatcher_ident:
            return True
        device = self.get_iot_device()
        if device is None:
            return False
        try:
            return bool(device.get_client().get_dispatcher().in_dispatcher_thread())
        except Exception:  # no device/dispatcher (e.g. a detached service): cannot be the dispatcher
            return False

    def sync(self, timeout: float = 10.0) -> int:
        """Request a time sync and wait for it; returns the corrected current time in ms since the epoch.

        Blocking: call it from your own thread, never from a listener callback (the response is delivered
        on the dispatcher thread; calling it there raises ``RuntimeError``). Raises :class:`IotTimeoutError` (a
        ``TimeoutError``) when no response arrives within ``timeout`` seconds. The listener, if any, is still called.
        """
        if self._in_dispatcher():
            raise RuntimeError("TimeSyncService.sync() cannot run on the dispatcher thread")
        waiter = _Waiter()
        send_time = codec.now_ms()
        with self._lock:
            self._waiters.setdefault(send_time, []).append(waiter)
        try:
            self._request(send_time)
            if not waiter.event.wait(timeout) or waiter.result is None:
                raise IotTimeoutError(f"no time_sync_response within {timeout} s")
            # waiter.result is the offset (corrected - local) at receipt: apply it to the clock now
            return codec.now_ms() + waiter.result
        finally:
            with self._lock:
                lst = self._waiters.get(send_time)
                if lst is not None:
                    if waiter in lst:
                        lst.remove(waiter)
                    if not lst:
                        del self._waiters[send_time]

    def on_destroy(self) -> None:
        """Called by ``AbstractDevice.destroy()``: wake :meth:`sync` callers (they raise TimeoutError)."""
        with self._lock:
            waiters = [w for lst in self._waiters.values() for w in lst]
        for w in waiters:
            w.event.set()


    def on_event(self, device_event: DeviceEvent) -> None:
        """Handle ``time_sync_response`` (dispatcher thread): wake :meth:`sync` callers, call the listener.

        A response with missing or non-numeric times is logged and dropped.
        """
        device_recv_time = codec.now_ms()
        self._dispatcher_ident = threading.get_ident()
        event_type = getattr(device_event, "event_type", None)
        if event_type != "time_sync_response":
            _LOG.warning("unknown $time_sync event type %r; ignored", event_type)
            return
        paras = getattr(device_event, "paras", None)
        if not isinstance(paras, dict):
            _LOG.error("time_sync_response without paras; ignored")
            return
        device_send_time, server_recv_time, server_send_time = (
            codec.as_int(paras.get(k)) for k in ("device_send_time", "server_recv_time", "server_send_time"))
        if device_send_time is None or server_recv_time is None or server_send_time is None:
            _LOG.error("time_sync_response with missing or invalid times; ignored")
            return
        with self._lock:
            waiters = self._waiters.pop(device_send_time, [])
        now = self.compute_time(device_send_time, server_recv_time, server_send_time, device_recv_time)
        for w in waiters:
            w.result = now - device_recv_time
            w.event.set()
        listener = self._listener
        if listener is not None:
            try:
                listener.on_time_sync_response(device_send_time, server_recv_time, server_send_time)
            except Exception:
                _LOG.exception("TimeSyncListener failed")
        elif not waiters:
            _LOG.warning("time_sync_response received but no TimeSyncListener is set")
