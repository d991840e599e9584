"""Asynchronous commands (IoTDA's CreateAsyncCommand, ShowAsyncDeviceCommand, ListAsyncCommands,
ListAsyncHistoryCommands, CountAsyncHistoryCommands).

A command goes to the device on the ordinary command topic; its status follows IoTDA's:

* ``PENDING``: cached by the platform (``send_strategy`` ``delay``, the default, while the device is offline);
  sent, oldest first, when the device (or the gateway that carries it) connects;
* ``EXPIRED``: still cached when ``expire_time`` seconds (default 24 h, at most 2 days) ran out;
* ``SENT``: published to the device; ``SUCCESSFUL`` / ``FAILED`` when the device answers with a zero / non-zero
  ``result_code`` (the whole answer is the command's ``result``); ``TIMEOUT`` when no answer came within
  :attr:`AsyncCommandService.response_timeout` seconds;
* ``send_strategy`` ``immediately``: sent at once when the device is online, ``FAILED`` at once when it is not
  (IoTDA: "if the device is offline ... the delivery fails").

The queue (ListAsyncCommands) holds PENDING and SENT commands, the history (ListAsyncHistoryCommands,
CountAsyncHistoryCommands) the finished ones; both list newest first. At most 20 commands may be PENDING per
device (IoTDA caches 20); a 21st is refused.

Choices where IoTDA is silent (doc/emulator.md): the status ``DELIVERED`` (the device's MQTT acknowledgement)
is not observed, as the emulator's platform sees the broker's acknowledgement only; ``response_timeout``
defaults to 180 s; the records live in memory (an emulator restart forgets them).

Python API (``emulator.service("$async_commands")``): :meth:`create`, :meth:`get`, :meth:`queue`,
:meth:`history`, ``response_timeout`` (settable).
"""
from __future__ import annotations

import concurrent.futures
import heapq
import itertools
import logging
import threading
import time
import uuid
from typing import Any, Dict, List, Optional, Tuple

from iotda_emulator.errors import DeviceOffline, EmulatorError
from iotda_emulator.protocol import codec, topics
from iotda_emulator.services.base import PlatformService

log = logging.getLogger(__name__)

PENDING, EXPIRED, SENT, DELIVERED = "PENDING", "EXPIRED", "SENT", "DELIVERED"
SUCCESSFUL, FAILED, TIMEOUT = "SUCCESSFUL", "FAILED", "TIMEOUT"
QUEUED = (PENDING, SENT, DELIVERED)
IMMEDIATELY, DELAY = "immediately", "delay"

DEFAULT_EXPIRE_S = 24 * 3600
MAX_EXPIRE_S = 2 * 24 * 3600
MAX_PENDING = 20
KEEP_PER_DEVICE = 1000   # finished commands kept per device (the oldest are forgotten)

#: Fields of a command as the REST API shows it (ShowAsyncDeviceCommandResponse).
PUBLIC_FIELDS = ("device_id", "command_id", "service_id", "command_name", "paras", "expire_time", "status",
                 "result", "created_time", "sent_time", "delivered_time", "response_time", "send_strategy")


class TooManyPending(EmulatorError, ValueError):
    """The device already has :data:`MAX_PENDING` cached commands."""


class AsyncCommandService(PlatformService):
    """Asynchronous commands: the platform-side queue, delivery and status of every device's commands."""

    service_ids = ("$async_commands",)

    def __init__(self, core: Any) -> None:
        super().__init__(core)
        #: seconds a SENT command waits for the device's answer before it is TIMEOUT
        self.response_timeout = 180.0
        self._lock = threading.RLock()
        self._commands: Dict[str, dict] = {}            # command id -> record (internal fields start with _)
        self._order: Dict[str, List[str]] = {}          # device id -> command ids, oldest first
        self._seq = itertools.count(1)
        # One watcher thread for every SENT command's deadline (a threading.Timer per command was one OS thread
        # each: 300 unanswered commands = 300 threads, and an application could create them without bound).
        self._deadlines: List[Tuple[float, int, str, "concurrent.futures.Future[dict]"]] = []   # heap
        self._wake = threading.Condition(self._lock)
        self._watcher: Optional[threading.Thread] = None
        self._closed = False

    # ---- Python API ------------------------------------------------------------------------------------
    def create(self, device_id: str, service_id: Optional[str], command_name: Optional[str], paras: Any,
               expire_time: Optional[int] = None, send_strategy: Optional[str] = None) -> dict:
        """Create a command for ``device_id`` and deliver or cache it; returns its public record.

        Raises DeviceNotFound, ValueError (bad ``send_strategy`` or ``expire_time``) and
        :class:`TooManyPending`.
        """
        strategy = send_strategy or DELAY
        if strategy not in (IMMEDIATELY, DELAY):
            raise ValueError("send_strategy must be immediately or delay")
        if expire_time is not None and (isinstance(expire_time, bool) or not isinstance(expire_time, int)
                                        or not 0 <= expire_time <= MAX_EXPIRE_S):
            raise ValueError(f"expire_time must be an integer from 0 to {MAX_EXPIRE_S}")
        target, _ = self.core.route(device_id, require_online=False)
        ttl = expire_time or DEFAULT_EXPIRE_S
        now = codec.event_time()
        rec: Dict[str, Any] = {
            "device_id": device_id, "command_id": str(uuid.uuid4()), "service_id": service_id,
            "command_name": command_name, "paras": paras if paras is not None else {},
            "expire_time": expire_time if expire_time is not None else 0, "status": PENDING, "result": None,
            "created_time": now, "sent_time": None, "delivered_time": None, "response_time": None,
            "send_strategy": strategy, "_carrier": target, "_expires": time.monotonic() + ttl,
            "_seq": next(self._seq), "_created": time.time()}
        with self._lock:
            self._expire_locked(device_id)
            if strategy == DELAY and not self.core.is_online(target) and sum(
                    1 for cid in self._order.get(device_id, ()) if self._commands[cid]["status"] == PENDING
            ) >= MAX_PENDING:
                raise TooManyPending(f"device {device_id} already has {MAX_PENDING} pending commands")
            self._commands[rec["command_id"]] = rec
            self._order.setdefault(device_id, []).append(rec["command_id"])
            self._trim_locked(device_id)
        if self.core.is_online(target):
            self._send(rec)
        elif strategy == IMMEDIATELY:
            self._finish(rec, FAILED)
        return self.get(rec["command_id"]) or _public(rec)

    def get(self, command_id: str, device_id: Optional[str] = None) -> Optional[dict]:
        """One command's public record (None when unknown, or not ``device_id``'s)."""
        with self._lock:
            rec = self._commands.get(command_id)
            if rec is None or (device_id is not None and rec["device_id"] != device_id):
                return None
            self._expire_locked(rec["device_id"])
            return _public(rec)

    def queue(self, device_id: str) -> List[dict]:
        """The device's commands still in progress (PENDING, SENT), newest first, each with its ``marker``."""
        return self._select(device_id, lambda r: r["status"] in QUEUED)

    def history(self, device_id: str) -> List[dict]:
        """The device's finished commands (EXPIRED, SUCCESSFUL, FAILED, TIMEOUT), newest first, with ``marker``."""
        return self._select(device_id, lambda r: r["status"] not in QUEUED)

    # ---- platform hooks --------------------------------------------------------------------------------
    def on_device_online(self, device_id: str) -> None:
        with self._lock:
            pending = sorted((r for r in self._commands.values()
                              if r["_carrier"] == device_id and r["status"] == PENDING), key=lambda r: r["_seq"])
        for rec in pending:
            with self._lock:
                if rec["status"] != PENDING:
                    continue
                if rec["_expires"] <= time.monotonic():
                    self._finish(rec, EXPIRED)
                    continue
            self._send(rec)

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._deadlines = []
            self._wake.notify_all()
            watcher = self._watcher
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join(timeout=5)

    # ---- internals -------------------------------------------------------------------------------------
    def _select(self, device_id: str, keep: Any) -> List[dict]:
        with self._lock:
            self._expire_locked(device_id)
            recs = [self._commands[cid] for cid in self._order.get(device_id, ())]
            # ``marker``: the record id IoTDA pages by (larger = newer)
            return [dict(_public(r), marker=f"{r['_seq']:016d}") for r in reversed(recs) if keep(r)]

    def _send(self, rec: dict) -> None:
        command_id = rec["command_id"]
        with self._lock:   # create() and on_device_online() may both try: one send per command
            if rec["status"] != PENDING or rec.get("_sending"):
                return
            rec["_sending"] = True
        try:
            future = self.core.begin_request(topics.COMMAND, rec["device_id"], command_id,
                                             {"service_id": rec["service_id"], "command_name": rec["command_name"]},
                                             paras=rec["paras"])
        except DeviceOffline:
            with self._lock:
                rec["_sending"] = False
                if rec["send_strategy"] == IMMEDIATELY:
                    self._finish(rec, FAILED)
            return   # delay: stays PENDING until the device connects again
        except Exception:  # noqa: BLE001 - logged once; the command ends FAILED rather than stuck
            log.exception("async command %s to %s could not be sent", command_id, rec["device_id"])
            with self._lock:
                rec["_sending"] = False
                self._finish(rec, FAILED)
            return
        with self._wake:
            rec["_sending"] = False
            rec["status"] = SENT
            rec["sent_time"] = codec.event_time()
            if not self._closed:
                heapq.heappush(self._deadlines, (time.monotonic() + self.response_timeout, rec["_seq"], command_id,
                                                 future))
                if self._watcher is None:
                    self._watcher = threading.Thread(target=self._watch, name="emu-async-commands", daemon=True)
                    self._watcher.start()
                self._wake.notify_all()
        future.add_done_callback(lambda f, rec=rec: self._answered(rec, f))

    def _answered(self, rec: dict, future: "concurrent.futures.Future[dict]") -> None:
        self.core.end_request(rec["command_id"])
        with self._lock:
            if rec["status"] != SENT:
                return
            try:
                answer = future.result(0)
            except Exception as exc:  # noqa: BLE001 - a malformed answer, or the emulator stopping
                log.info("async command %s: %s", rec["command_id"], exc)
                self._finish(rec, FAILED)
                return
            code = codec.as_int(answer.get("result_code", 0)) if isinstance(answer, dict) else None
            rec["result"] = answer
            rec["response_time"] = codec.event_time()
            self._finish(rec, SUCCESSFUL if code == 0 else FAILED)

    def _watch(self) -> None:
        """The watcher thread: ends SENT commands whose answer did not come in time (TIMEOUT)."""
        while True:
            with self._wake:
                while not self._closed and (not self._deadlines or self._deadlines[0][0] > time.monotonic()):
                    self._wake.wait(self._deadlines[0][0] - time.monotonic() if self._deadlines else None)
                if self._closed:
                    return
                due = []
                while self._deadlines and self._deadlines[0][0] <= time.monotonic():
                    due.append(heapq.heappop(self._deadlines))
            for _, _, command_id, future in due:
                with self._lock:
                    rec = self._commands.get(command_id)
                try:
                    if rec is not None:
                        self._timed_out(rec, future)
                    else:   # trimmed meanwhile: only free the request id
                        self.core.end_request(command_id)
                        future.cancel()
                except Exception:  # noqa: BLE001 - the watcher must outlive any one command
                    log.exception("async command %s: timeout handling failed", command_id)

    def _timed_out(self, rec: dict, future: "concurrent.futures.Future[dict]") -> None:
        with self._lock:
            if rec["status"] == SENT:
                self._finish(rec, TIMEOUT)
        self.core.end_request(rec["command_id"])
        future.cancel()

    @staticmethod
    def _finish(rec: dict, status: str) -> None:
        rec["status"] = status

    def _expire_locked(self, device_id: str) -> None:
        now = time.monotonic()
        for cid in self._order.get(device_id, ()):
            rec = self._commands[cid]
            if rec["status"] == PENDING and rec["_expires"] <= now:
                self._finish(rec, EXPIRED)

    def _trim_locked(self, device_id: str) -> None:
        ids = self._order[device_id]
        finished = [cid for cid in ids if self._commands[cid]["status"] not in QUEUED]
        for cid in finished[:max(0, len(finished) - KEEP_PER_DEVICE)]:
            ids.remove(cid)
            del self._commands[cid]


def _public(rec: dict) -> dict:
    return {k: rec.get(k) for k in PUBLIC_FIELDS}

