"""``$device_config`` on the platform side: IoTDA's remote-configuration tasks (doc/protocol.md §3.7).

A task pushes one configuration (``config_content``, a JSON object) to a list of devices with
``config_update`` on ``events/down`` and records each device's ``config_update_response`` (``result_code``
0 = applied, ``description``). As IoTDA documents: a task has a timeout of 1-30 days (default 30); a device
that has not answered gets the configuration again about every 24 hours (``resend_interval_s``) until the
timeout; a device that is offline gets it when it comes online. Devices that never answered end ``TIMEOUT``.

Our choices where IoTDA is silent (also in doc/protocol.md §3.7):

* one configuration in flight per device: a device with answers pending for several tasks gets them one
  after the other, oldest task first, so an answer always belongs to one task. The answer is matched by the
  ``event_id`` of the ``config_update`` when the device echoes it, else to the device's one in-flight task;
* a device that reconnects while its configuration is unanswered gets it again at once (besides every 24 h);
* per-device statuses: ``WAITING`` (not sent yet), ``PROCESSING`` (sent, no answer yet), ``SUCCESS``,
  ``FAILED``, ``TIMEOUT``; task status ``Processing`` until every device is final, then ``Success`` (all
  succeeded), ``Fail`` (none did) or ``PartialSuccess``;
* tasks live in memory (lost with the emulator; IoTDA keeps them in its console).

Python API (``emu.service("$device_config")``): ``create_task(config_content, device_ids, timeout_days=30,
task_name=None)``, ``task(task_id)``, ``tasks()``, ``delete_task(task_id)``, ``wait_task(task_id, timeout)``,
``resend_interval_s`` (settable).
"""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Tuple

from iotda_emulator.errors import DeviceNotFound, DeviceOffline, EmulatorError
from iotda_emulator.protocol import codec
from iotda_emulator.services.base import PlatformService, wait_changed

log = logging.getLogger(__name__)

SERVICE_ID = "$device_config"
RESEND_INTERVAL_S = 24 * 3600.0    # IoTDA: re-sent about every 24 h until answered
MAX_TIMEOUT_DAYS = 30
MAX_CONFIG_BYTES = 64 * 1024       # our choice: the configuration is a small JSON document (IoTDA gives no size)
MAX_TARGETS = 1000                 # our choice, per task
MAX_TASKS = 1000                   # oldest finished tasks are dropped beyond this

WAITING, PROCESSING, SUCCESS, FAILED, TIMEOUT = "WAITING", "PROCESSING", "SUCCESS", "FAILED", "TIMEOUT"
_FINAL = (SUCCESS, FAILED, TIMEOUT)


class DeviceConfigService(PlatformService):
    """The ``$device_config`` platform service (remote-configuration tasks)."""

    service_ids = (SERVICE_ID,)

    def __init__(self, core: Any) -> None:
        super().__init__(core)
        #: seconds between re-sends to a device that has not answered (IoTDA: about 24 h)
        self.resend_interval_s = RESEND_INTERVAL_S
        #: seconds between checks for re-sends and timeouts
        self.tick_s = 1.0
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._tasks: "OrderedDict[str, dict]" = OrderedDict()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # ---- life cycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._ticker, name="emu-device-config", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _ticker(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self._tick()
            except Exception:  # noqa: BLE001 - the ticker must survive anything
                log.exception("device config tick failed")

    def _tick(self) -> None:
        now = time.time()
        resend: List[str] = []
        with self._changed:
            for task in self._tasks.values():
                if now >= task["expires"]:
                    for entry in task["devices"].values():
                        if entry["status"] not in _FINAL:
                            entry.update(status=TIMEOUT, finished=now)
                            self._changed.notify_all()
                    continue
                for device_id, entry in task["devices"].items():
                    if entry["status"] == PROCESSING and now - entry["last_sent"] >= self.resend_interval_s:
                        resend.append(device_id)
        for device_id in dict.fromkeys(resend):
            self._pump(device_id, resend=True)
        # a device whose in-flight task timed out can move on to its next one
        for device_id in self._devices_with_waiting():
            self._pump(device_id)

    # ---- tasks --------------------------------------------------------------------------------------
    def create_task(self, config_content: Dict[str, Any], device_ids: List[str], timeout_days: int = MAX_TIMEOUT_DAYS,
                    task_name: Optional[str] = None) -> dict:
        """Create a task and push it to the online targets now (the others when they connect); returns its view.

        Raises ValueError for a bad configuration, target list or timeout, DeviceNotFound for an unknown device.
        """
        if not isinstance(config_content, dict):
            raise ValueError("config_content must be a JSON object")
        size = len(codec.dumps_bytes(config_content))
        if size > MAX_CONFIG_BYTES:
            raise ValueError(f"config_content is {size} bytes; at most {MAX_CONFIG_BYTES} are accepted")
        if isinstance(timeout_days, bool) or not isinstance(timeout_days, int) \
                or not 1 <= timeout_days <= MAX_TIMEOUT_DAYS:
            raise ValueError("timeout is a number of days from 1 to 30")
        if not isinstance(device_ids, list) or not device_ids or len(device_ids) > MAX_TARGETS \
                or not all(isinstance(d, str) and d for d in device_ids):
            raise ValueError(f"targets must be a list of 1 to {MAX_TARGETS} device ids")
        targets = list(dict.fromkeys(device_ids))
        for device_id in targets:
            if self.core.get_device(device_id) is None:
                exc = DeviceNotFound(f"device {device_id} not found")
                exc.device_id = device_id   # type: ignore[attr-defined]  # for the REST error body
                raise exc
        now = time.time()
        task_id = uuid.uuid4().hex
        task = {"task_id": task_id, "task_name": task_name or f"config_{task_id[:8]}",
                "config_content": json.loads(json.dumps(config_content)), "timeout_days": timeout_days,
                "created": now, "expires": now + timeout_days * 86400.0,
                "devices": {d: {"status": WAITING, "result_code": None, "description": None, "sent_times": 0,
                                "last_sent": None, "finished": None, "event_id": None} for d in targets}}
        with self._changed:
            self._tasks[task_id] = task
            self._trim()
        log.info("device config task %s for %d device(s)", task_id, len(targets))
        for device_id in targets:
            self._pump(device_id)
        return self.task(task_id) or {}

    def _trim(self) -> None:
        while len(self._tasks) > MAX_TASKS:
            oldest = next((tid for tid, t in self._tasks.items() if self._task_status(t) != "Processing"), None)
            if oldest is None:
                return
            del self._tasks[oldest]

    def delete_task(self, task_id: str) -> bool:
        """Forget a task: devices not yet answered no longer get it (a late answer is ignored)."""
        with self._changed:
            task = self._tasks.pop(task_id, None)
            self._changed.notify_all()
        if task is None:
            return False
        for device_id, entry in task["devices"].items():
            if entry["status"] == PROCESSING:
                self._pump(device_id)
        return True

    def task(self, task_id: str) -> Optional[dict]:
        """The view of one task (``task_id``, ``task_name``, ``status``, ``config_content``, ``timeout``,
        ``created_time``, ``expire_time``, counts and ``task_details`` per device), or None."""
        with self._lock:
            task = self._tasks.get(task_id)
            return None if task is None else self._view(task)

    def tasks(self) -> List[dict]:
        """Views of every task, oldest first."""
        with self._lock:
            return [self._view(t) for t in self._tasks.values()]

    def wait_task(self, task_id: str, timeout: float = 10.0) -> dict:
        """Wait until every device of the task is final; returns the view (TimeoutError otherwise)."""
        def done() -> Optional[dict]:
            task = self._tasks.get(task_id)
            if task is None:
                raise KeyError(task_id)
            return self._view(task) if self._task_status(task) != "Processing" else None

        return wait_changed(self._changed, done, timeout, lambda: f"device config task {task_id} still processing")

    @staticmethod
    def _task_status(task: dict) -> str:
        statuses = [e["status"] for e in task["devices"].values()]
        if any(s not in _FINAL for s in statuses):
            return "Processing"
        ok = sum(1 for s in statuses if s == SUCCESS)
        return "Success" if ok == len(statuses) else "Fail" if ok == 0 else "PartialSuccess"

    def _view(self, task: dict) -> dict:
        details = []
        for device_id, e in task["devices"].items():
            details.append({"device_id": device_id, "status": e["status"], "result_code": e["result_code"],
                            "description": e["description"], "sent_times": e["sent_times"],
                            "last_sent_time": _time(e["last_sent"]), "finished_time": _time(e["finished"])})
        counts = {s: sum(1 for d in details if d["status"] == s) for s in (WAITING, PROCESSING, SUCCESS, FAILED,
                                                                          TIMEOUT)}
        return {"task_id": task["task_id"], "task_name": task["task_name"], "status": self._task_status(task),
                "config_content": json.loads(json.dumps(task["config_content"])), "timeout": task["timeout_days"],
                "created_time": _time(task["created"]), "expire_time": _time(task["expires"]),
                "total": len(details), "success": counts[SUCCESS], "fail": counts[FAILED] + counts[TIMEOUT],
                "processing": counts[WAITING] + counts[PROCESSING], "task_details": details}

    # ---- delivery -----------------------------------------------------------------------------------
    def _devices_with_waiting(self) -> List[str]:
        with self._lock:
            found = {d for t in self._tasks.values() for d, e in t["devices"].items() if e["status"] == WAITING}
            busy = {d for t in self._tasks.values() for d, e in t["devices"].items() if e["status"] == PROCESSING}
        return sorted(found - busy)

    def _next_for(self, device_id: str, resend: bool) -> Optional[Tuple[dict, dict]]:
        """(task, entry) to send to ``device_id`` now, marked PROCESSING; None when nothing is due (lock held)."""
        now = time.time()
        inflight = [(t, t["devices"][device_id]) for t in self._tasks.values()
                    if device_id in t["devices"] and t["devices"][device_id]["status"] == PROCESSING
                    and now < t["expires"]]
        if inflight:
            if not resend:
                return None
            return inflight[0]
        for task in self._tasks.values():   # oldest task first
            entry = task["devices"].get(device_id)
            if entry is not None and entry["status"] == WAITING and now < task["expires"]:
                return task, entry
        return None

    def _pump(self, device_id: str, resend: bool = False) -> None:
        """Send ``device_id`` its next configuration when it is online and none is in flight
        (``resend``: send the in-flight one again). Any thread but paho's."""
        if not self.core.is_online(self._route_target(device_id)):
            return
        with self._changed:
            picked = self._next_for(device_id, resend)
            if picked is None:
                return
            task, entry = picked
            previous = (entry["status"], entry["event_id"])
            # a re-send keeps its event id: an answer to either copy is the same answer
            event_id = entry["event_id"] if entry["status"] == PROCESSING and entry["event_id"] else uuid.uuid4().hex
            entry.update(status=PROCESSING, event_id=event_id, last_sent=time.time())
            entry["sent_times"] += 1
            content = task["config_content"]
            task_id = task["task_id"]
        try:
            self.core.send_event(device_id, SERVICE_ID, "config_update", {"config_content": content},
                                 event_id=event_id)
            log.info("config_update of task %s sent to %s", task_id, device_id)
        except (DeviceOffline, DeviceNotFound, EmulatorError, ValueError) as exc:
            log.info("config_update of task %s for %s not sent: %s", task_id, device_id, exc)
            with self._changed:
                if entry["event_id"] == event_id and entry["status"] == PROCESSING:
                    entry["sent_times"] -= 1
                    if previous[0] == WAITING:
                        entry.update(status=WAITING, event_id=None, last_sent=None)

    def _route_target(self, device_id: str) -> str:
        record = self.core.get_device(device_id) or {}
        return record.get("gateway_id") or device_id

    def on_device_online(self, device_id: str) -> None:
        """A device (or a gateway's child) is online: resend its unanswered configuration, or send the next."""
        targets = [device_id] + [c["device_id"] for c in self._children_online(device_id)]
        for target in targets:
            with self._lock:
                inflight = any(t["devices"].get(target, {}).get("status") == PROCESSING for t in self._tasks.values())
            self.core.submit(self._pump, target, inflight)

    def _children_online(self, gateway_id: str) -> List[dict]:
        try:
            return [c for c in self.core.children(gateway_id) if self.core.is_online(c["device_id"])]
        except Exception:  # noqa: BLE001 - a registry hiccup must not stop the online hooks
            return []

    def on_event(self, device_id: str, object_device_id: Optional[str], event: dict) -> None:
        target = object_device_id or device_id
        event_type = event.get("event_type")
        if event_type != "config_update_response":
            log.warning("unknown $device_config event type %r from %s; ignored", event_type, target)
            return
        if target != device_id:
            record = self.core.get_device(target)
            if record is None or record.get("gateway_id") != device_id:
                log.warning("config_update_response for %s from %s, which is not its gateway; ignored",
                            target, device_id)
                return
        raw = event.get("paras")
        paras: Dict[str, Any] = raw if isinstance(raw, dict) else {}
        result_code = codec.as_int(paras.get("result_code"))
        if result_code is None:
            log.warning("config_update_response from %s without an integer result_code; ignored", target)
            return
        description = paras.get("description")
        if description is not None and not isinstance(description, str):
            description = json.dumps(description)[:256]
        event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        with self._changed:
            entry = self._match(target, event_id)
            if entry is None:
                log.info("config_update_response from %s matches no configuration in flight; ignored", target)
                return
            entry.update(status=SUCCESS if result_code == 0 else FAILED, result_code=result_code,
                         description=description, finished=time.time())
            self._changed.notify_all()
        self.core.submit(self._pump, target)

    def _match(self, device_id: str, event_id: Optional[str]) -> Optional[dict]:
        """The entry an answer of ``device_id`` belongs to (lock held)."""
        inflight = [t["devices"][device_id] for t in self._tasks.values()
                    if t["devices"].get(device_id, {}).get("status") == PROCESSING]
        if event_id:
            # an echoed id that matches nothing in flight answers an older (deleted, finished) configuration:
            # taking it for the current one recorded a late answer as the new task's result
            return next((entry for entry in inflight if entry["event_id"] == event_id), None)
        return inflight[0] if inflight else None

    def describe(self) -> Any:
        """Task count per status."""
        with self._lock:
            out: Dict[str, int] = {}
            for task in self._tasks.values():
                status = self._task_status(task)
                out[status] = out.get(status, 0) + 1
            return out


def _time(seconds: Optional[float]) -> Optional[str]:
    return None if seconds is None else codec.event_time(seconds)
