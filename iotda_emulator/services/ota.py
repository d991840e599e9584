"""``$ota`` on the platform side: packages, upgrade tasks, version and progress reports.

Flow of a task (``doc/protocol.md`` §3.1): :meth:`OtaService.start_task` sends ``version_query``; the
device's ``version_report`` is recorded; if its version differs from the package's, the platform sends
``firmware_upgrade``/``software_upgrade`` (v1: bearer-token URL on the emulator's object store) or the
``_v2`` variant (presigned expiring URL), with ``sign`` (SHA-256), ``file_size``, ``file_name`` and
``task_id``; every ``upgrade_progress_report`` is appended to the task. The task succeeds on
``result_code`` 0 with progress 100 and the target version, and fails on any non-zero code.

Python API (``emu.service("$ota")``): ``upload_package``, ``start_task``, ``task``, ``wait_task``,
``list_tasks``, ``versions``, ``store`` (the object store, e.g. ``store.cut_next_download()``).
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from typing import Any, Dict, List, Optional, Union

from iotda_emulator.objects import ObjectStore
from iotda_emulator.services.base import PlatformService, wait_changed

log = logging.getLogger(__name__)

PACKAGE_BUCKET = "ota-packages"
_FINAL = ("success", "failed", "no_need", "stopped")


class OtaService(PlatformService):
    """The ``$ota`` platform service."""

    service_ids = ("$ota",)

    def __init__(self, core: Any) -> None:
        super().__init__(core)
        self.store = ObjectStore.for_core(core)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._packages: Dict[str, dict] = {}
        self._tasks: Dict[str, dict] = {}
        self._versions: Dict[str, List[dict]] = {}

    # ---- packages ----------------------------------------------------------------------------------

    def upload_package(self, data: Union[bytes, str], version: str, *, kind: str = "firmware",
                       file_name: Optional[str] = None, package_id: Optional[str] = None,
                       custom_info: Optional[str] = None) -> str:
        """Store an upgrade package (``data`` as bytes or a file path) of ``kind`` "firmware" or "software".

        Returns the package id. ``file_name`` defaults to the file's name or ``package-{version}.bin``.
        """
        if kind not in ("firmware", "software"):
            raise ValueError("kind must be 'firmware' or 'software'")
        if not isinstance(version, str) or not version:
            raise ValueError("version must be a non-empty string")
        if file_name is None:
            file_name = os.path.basename(data) if isinstance(data, str) else f"package-{version}.bin"
        if not file_name or "/" in file_name or "\\" in file_name or file_name in (".", ".."):
            raise ValueError("invalid file name")
        package_id = package_id or uuid.uuid4().hex[:16]
        key = f"{package_id}/{file_name}"
        meta = self.store.put_object(PACKAGE_BUCKET, key, data)
        pkg = {"package_id": package_id, "version": version, "kind": kind, "file_name": file_name,
               "file_size": meta["size"], "sign": meta["sha256"], "key": key, "custom_info": custom_info,
               "created": time.time()}
        with self._lock:
            self._packages[package_id] = pkg
        return package_id

    def package(self, package_id: str) -> Optional[dict]:
        """The package record (``version``, ``kind``, ``file_name``, ``file_size``, ``sign``...) or None."""
        with self._lock:
            pkg = self._packages.get(package_id)
            return dict(pkg) if pkg else None

    def list_packages(self) -> List[dict]:
        """Every package record."""
        with self._lock:
            return [dict(p) for p in self._packages.values()]

    def delete_package(self, package_id: str) -> bool:
        """Forget a package and delete its stored file; True when it existed.

        Tasks already sent keep their records; a device that has not downloaded the file yet gets a 404.
        """
        with self._lock:
            pkg = self._packages.pop(package_id, None)
        if pkg is None:
            return False
        self.store.delete_object(PACKAGE_BUCKET, pkg["key"])
        return True

    # ---- tasks -------------------------------------------------------------------------------------

    def start_task(self, device_id: str, package_id: str, kind: Optional[str] = None, v2: bool = False, *,
                   expires: int = 3600, file_size: Optional[int] = None, sign: Optional[str] = None,
                   file_name: Optional[str] = None, custom_info: Optional[str] = None,
                   task_ext_info: Any = None, scheme: Optional[str] = None) -> str:
        """Start upgrading ``device_id`` with ``package_id``; returns the task id.

        ``kind`` ("firmware"/"software") defaults to the package's; ``v2`` selects the ``*_upgrade_v2``
        events with a presigned URL (v1: bearer token). ``expires`` is the token/URL validity in seconds
        (0: already expired, for tests). ``file_size``/``sign``/``file_name`` override what the device is
        told (fault injection: a wrong sign, a size larger than the disk...). ``scheme`` "http"/"https"
        picks the URL scheme (default HTTPS). The ``version_query`` is sent now when the device is online,
        else when it connects.
        """
        pkg = self.package(package_id)
        if pkg is None:
            raise KeyError(f"unknown package {package_id!r}")
        if self.core.get_device(device_id) is None:
            from iotda_emulator.errors import DeviceNotFound
            raise DeviceNotFound(f"device {device_id} not found")
        kind = kind or pkg["kind"]
        if kind not in ("firmware", "software"):
            raise ValueError("kind must be 'firmware' or 'software'")
        task_id = uuid.uuid4().hex
        task = {"task_id": task_id, "device_id": device_id, "package_id": package_id, "kind": kind,
                "v2": bool(v2), "target_version": pkg["version"], "status": "pending", "versions": [],
                "progress": [], "result": None, "created": time.time(), "updated": time.time(),
                "expires": int(expires), "scheme": scheme,
                "overrides": {"file_size": file_size, "sign": sign, "file_name": file_name,
                              "custom_info": custom_info, "task_ext_info": task_ext_info}}
        with self._changed:
            self._tasks[task_id] = task
        if self.core.is_online(device_id):
            self._send_query(task_id)
        return task_id

    def stop_task(self, task_id: str) -> bool:
        """Stop a task that has not ended (REST StopBatchTask): its status becomes ``stopped`` and later version
        or progress reports of the device no longer change it. True when it was stopped, False when unknown or
        already ended. (An upgrade event already sent cannot be taken back from the device.)"""
        with self._changed:
            task = self._tasks.get(task_id)
            if task is None or task["status"] in _FINAL:
                return False
            task["status"] = "stopped"
            task["updated"] = time.time()
            self._changed.notify_all()
        return True

    def task(self, task_id: str) -> Optional[dict]:
        """A copy of the task: ``status`` (pending, querying, upgrading, success, failed, no_need, stopped),
        ``versions`` (version reports), ``progress`` (progress reports), ``result`` (final report)."""
        with self._lock:
            task = self._tasks.get(task_id)
            return _copy_task(task) if task else None

    def list_tasks(self, device_id: Optional[str] = None) -> List[dict]:
        """Copies of every task (of one device), oldest first."""
        with self._lock:
            return [_copy_task(t) for t in self._tasks.values() if device_id is None or t["device_id"] == device_id]

    def wait_task(self, task_id: str, statuses=_FINAL, timeout: float = 20.0) -> dict:
        """Wait until the task's status is one of ``statuses`` (default: a final one); returns the task.

        Raises ``TimeoutError`` with the current status.
        """
        return self.wait_for(lambda t: t["status"] in statuses, task_id, timeout)

    def wait_for(self, predicate, task_id: str, timeout: float = 20.0) -> dict:
        """Wait until ``predicate(task)`` holds; returns the task (``TimeoutError`` otherwise)."""
        def holds() -> Optional[dict]:
            task = self._tasks.get(task_id)
            if task is None:
                raise KeyError(task_id)
            return _copy_task(task) if predicate(task) else None

        def still() -> str:  # called with the lock held
            task = self._tasks[task_id]
            return f"task {task_id} still {task['status']} ({len(task['progress'])} progress reports)"

        return wait_changed(self._changed, holds, timeout, still)

    def versions(self, device_id: str) -> List[dict]:
        """Every ``version_report`` of ``device_id`` (``fw_version``, ``sw_version``, ``time``), oldest first."""
        with self._lock:
            return [dict(v) for v in self._versions.get(device_id, [])]

    # ---- platform hooks -------------------------------------------------------------------------

    def on_device_online(self, device_id: str) -> None:
        with self._lock:
            pending = [t["task_id"] for t in self._tasks.values()
                       if t["device_id"] == device_id and t["status"] == "pending"]
        for task_id in pending:
            self._send_query(task_id)

    def on_event(self, device_id: str, object_device_id: Optional[str], event: dict) -> None:
        target = object_device_id or device_id
        event_type = event.get("event_type")
        paras = event.get("paras")
        if not isinstance(paras, dict):
            log.warning("$ota %s from %s without a paras object; ignored", event_type, target)
            return
        if event_type == "version_report":
            self._on_version_report(target, paras)
        elif event_type == "upgrade_progress_report":
            self._on_progress(target, paras)
        else:
            log.warning("unknown $ota event type %r from %s; ignored", event_type, target)

    def _on_version_report(self, device_id: str, paras: dict) -> None:
        fw, sw = paras.get("fw_version"), paras.get("sw_version")
        if (fw is not None and not isinstance(fw, str)) or (sw is not None and not isinstance(sw, str)):
            log.warning("$ota version_report from %s with non-string versions; ignored", device_id)
            return
        record = {"fw_version": fw, "sw_version": sw, "time": time.time()}
        to_upgrade: List[str] = []
        with self._changed:
            self._versions.setdefault(device_id, []).append(record)
            for task in self._tasks.values():
                if task["device_id"] != device_id or task["status"] != "querying":
                    continue
                task["versions"].append(dict(record))
                task["updated"] = time.time()
                current = fw if task["kind"] == "firmware" else sw
                if current is None:
                    continue  # this report does not tell the version this task needs
                if current == task["target_version"]:
                    task["status"] = "no_need"
                    task["result"] = {"result_code": 3, "version": current,
                                      "description": "already the target version", "time": time.time()}
                else:
                    task["status"] = "upgrading"
                    to_upgrade.append(task["task_id"])
            self._changed.notify_all()
        for task_id in to_upgrade:
            self._send_upgrade(task_id)

    def _on_progress(self, device_id: str, paras: dict) -> None:
        code, progress, version = paras.get("result_code"), paras.get("progress"), paras.get("version")
        if not isinstance(code, int) or isinstance(code, bool):
            log.warning("$ota upgrade_progress_report from %s without an integer result_code; ignored", device_id)
            return
        if progress is not None and (not isinstance(progress, int) or isinstance(progress, bool)
                                     or not 0 <= progress <= 100):
            log.warning("$ota upgrade_progress_report from %s with invalid progress %r", device_id, progress)
            progress = None
        description = paras.get("description")
        report = {"result_code": code, "progress": progress, "version": version,
                  "description": description if isinstance(description, str) else None, "time": time.time()}
        with self._changed:
            active = [t for t in self._tasks.values() if t["device_id"] == device_id and t["status"] == "upgrading"]
            if not active:
                log.info("$ota progress report from %s without an upgrading task; ignored", device_id)
                return
            # several concurrent tasks: prefer the one whose target version is reported
            task = next((t for t in reversed(active) if t["target_version"] == version), active[-1])
            task["progress"].append(report)
            task["updated"] = time.time()
            if code != 0:
                task["status"], task["result"] = "failed", dict(report)
            elif progress == 100:
                if version == task["target_version"]:
                    task["status"], task["result"] = "success", dict(report)
                else:
                    task["status"] = "failed"
                    task["result"] = dict(report, description=f"reported version {version!r} is not the "
                                                                f"target {task['target_version']!r}")
            self._changed.notify_all()

    # ---- sending -------------------------------------------------------------------------------------

    def _send_query(self, task_id: str) -> None:
        with self._changed:
            task = self._tasks.get(task_id)
            if task is None or task["status"] != "pending":
                return
            task["status"] = "querying"
            task["updated"] = time.time()
            device_id = task["device_id"]
            paras: Dict[str, Any] = {"task_id": task_id}
            if task["overrides"]["task_ext_info"] is not None:
                paras["task_ext_info"] = task["overrides"]["task_ext_info"]
            self._changed.notify_all()
        try:
            self.core.send_event(device_id, "$ota", "version_query", paras)
        except Exception as exc:  # offline again: retry on the next connection
            log.info("version_query for task %s not sent (%s); waiting for the device", task_id, exc)
            with self._changed:
                if task["status"] == "querying":
                    task["status"] = "pending"

    def _send_upgrade(self, task_id: str) -> None:
        with self._lock:
            task = self._tasks[task_id]
            pkg = self._packages[task["package_id"]]
            ov = task["overrides"]
            expires = task["expires"]
            scheme = task["scheme"]
            device_id = task["device_id"]
            v2 = task["v2"]
            kind = task["kind"]
        paras: Dict[str, Any] = {
            "version": pkg["version"],
            "file_size": ov["file_size"] if ov["file_size"] is not None else pkg["file_size"],
            "file_name": ov["file_name"] if ov["file_name"] is not None else pkg["file_name"],
            "expires": expires,
            "sign": ov["sign"] if ov["sign"] is not None else pkg["sign"],
            "task_id": task_id,
        }
        if v2:
            paras["url"] = self.store.presign("GET", PACKAGE_BUCKET, pkg["key"], expires, scheme=scheme)
        else:
            paras["url"] = self.store.token_url(pkg["key"], scheme=scheme)
            paras["access_token"] = self.store.issue_token(PACKAGE_BUCKET, pkg["key"], expires)
        custom = ov["custom_info"] if ov["custom_info"] is not None else pkg["custom_info"]
        if custom is not None:
            paras["custom_info"] = custom
        if ov["task_ext_info"] is not None:
            paras["task_ext_info"] = ov["task_ext_info"]
        event_type = f"{kind}_upgrade" + ("_v2" if v2 else "")
        try:
            self.core.send_event(device_id, "$ota", event_type, paras)
        except Exception as exc:
            log.warning("%s for task %s not sent: %s", event_type, task_id, exc)
            with self._changed:
                task["status"] = "failed"
                task["result"] = {"result_code": 255, "description": f"upgrade not sent: {type(exc).__name__}",
                                  "time": time.time()}
                self._changed.notify_all()

    def describe(self) -> Any:
        """Packages and task summaries for the console."""
        with self._lock:
            return {
                "packages": [{k: p[k] for k in ("package_id", "version", "kind", "file_name", "file_size", "sign")}
                             for p in self._packages.values()],
                "tasks": [{"task_id": t["task_id"], "device_id": t["device_id"], "kind": t["kind"], "v2": t["v2"],
                           "target_version": t["target_version"], "status": t["status"],
                           "progress": t["progress"][-1]["progress"] if t["progress"] else None,
                           "result_code": (t["result"] or {}).get("result_code")}
                          for t in self._tasks.values()],
            }


def _copy_task(task: dict) -> dict:
    out = dict(task)
    out["versions"] = [dict(v) for v in task["versions"]]
    out["progress"] = [dict(p) for p in task["progress"]]
    out["result"] = dict(task["result"]) if task["result"] else None
    out["overrides"] = dict(task["overrides"])
    return out


def sha256_hex(data: bytes) -> str:
    """SHA-256 hex of ``data`` (the ``sign`` IoTDA puts in upgrade events)."""
    return hashlib.sha256(data).hexdigest()
