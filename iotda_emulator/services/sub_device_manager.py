"""``$sub_device_manager``: the platform side of gateways and their sub-devices (``doc/protocol.md`` §3.6).

Sub-devices are ordinary registry devices whose ``gateway_id`` names their gateway. This service keeps,
per gateway, a sub-device list *version* and a change history, and:

* answers ``add_sub_device_request`` / ``delete_sub_device_request`` with the matching ``*_response``
  (same ``event_id``; ``successful_devices`` and ``failed_devices``), then pushes the change as an
  ``add_sub_device_notify`` / ``delete_sub_device_notify`` carrying the new version;
* answers ``sub_device_sync_request`` with notifications describing the difference between the
  gateway's version and the current list (the full list when the gateway has no version or its version
  is older than the kept history);
* answers ``sub_device_update_status`` with ``sub_device_update_status_response`` and marks children
  online/offline in the registry; children go offline with their gateway;
* offers a Python API for tests and demos: :meth:`add_child`, :meth:`add_children`, :meth:`delete_child`,
  :meth:`delete_children`, :meth:`version`, :meth:`children`, which notify a connected gateway too.

Children created or deleted directly through the registry (``Emulator.create_device(gateway_id=...)``)
are noticed at the gateway's next sync and recorded as a change of their own.

Work runs on one worker thread of this service, in arrival order (never on the core's MQTT thread).
"""
from __future__ import annotations

import json
import logging
import queue
import threading
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from iotda_emulator.protocol import topics
from iotda_emulator.errors import DeviceNotFound, DeviceOffline
from iotda_emulator.services.base import PlatformService

_logger = logging.getLogger(__name__)

SERVICE_ID = "$sub_device_manager"
DISCOVERY_SERVICE_ID = "sub_device_discovery"

MAX_ADD_DELETE = 50          # devices per add/delete request
MAX_STATUS = 100             # entries per status update
NOTIFY_CHUNK = 100           # devices per notification we push
MAX_HISTORY = 20000          # change rows kept per gateway before the oldest are pruned

# Error codes the emulator uses in failed_devices (IoTDA's exact codes for these cases are not published).
ERR_INVALID = "IOTDA.000006"          # malformed entry (missing node_id/product_id, bad id...)
ERR_DUPLICATE = "IOTDA.014016"        # node_id already used under this gateway, or device_id taken
ERR_OVER_LIMIT = "IOTDA.014019"       # more entries than the per-request limit
ERR_NOT_FOUND = "IOTDA.014000"        # not a sub-device of this gateway

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS sub_device_versions (
        gateway_id TEXT PRIMARY KEY,
        version    INTEGER NOT NULL DEFAULT 0,
        pruned     INTEGER NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE IF NOT EXISTS sub_device_members (
        gateway_id TEXT NOT NULL,
        device_id  TEXT NOT NULL,
        info       TEXT NOT NULL,
        PRIMARY KEY (gateway_id, device_id)
    )""",
    """CREATE TABLE IF NOT EXISTS sub_device_changes (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        gateway_id TEXT NOT NULL,
        version    INTEGER NOT NULL,
        op         TEXT NOT NULL,
        device_id  TEXT NOT NULL,
        info       TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS sub_device_changes_gw ON sub_device_changes(gateway_id, version)",
)


def _text(value: Any) -> Optional[str]:
    return value if isinstance(value, str) and value else None


def _as_int(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


class SubDeviceManagerService(PlatformService):
    """Versioned sub-device lists per gateway, with add/delete/sync/status handling."""

    service_ids = (SERVICE_ID, DISCOVERY_SERVICE_ID)

    def __init__(self, core) -> None:
        super().__init__(core)
        self._lock = threading.RLock()
        self._queue: "queue.Queue[Optional[Tuple[Callable, tuple]]]" = queue.Queue()
        self._thread: Optional[threading.Thread] = None
        self._closed = False
        self.scan_results: List[dict] = []   # what gateways reported through sub_device_discovery
        for sql in _SCHEMA:
            self.core.db.execute(sql)

    # ---- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._worker, name="emu-sub-device-manager", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._closed = True
        self._queue.put(None)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._thread = None

    def _submit(self, fn: Callable, *args: Any) -> None:
        if self._closed:
            return
        if self._thread is None:
            self.start()
        self._queue.put((fn, args))

    def _worker(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            fn, args = item
            try:
                fn(*args)
            except Exception:
                _logger.exception("sub device manager task %s failed", getattr(fn, "__name__", fn))

    # ---- platform callbacks ----------------------------------------------------------------------

    def on_event(self, device_id: str, object_device_id: Optional[str], event: dict) -> None:
        self._submit(self._handle_event, device_id, object_device_id, event)

    def on_device_offline(self, device_id: str) -> None:
        self._submit(self._children_offline, device_id)

    def _children_offline(self, gateway_id: str) -> None:
        for child in self._registry_children(gateway_id):
            if child.get("online"):
                self._set_online(child["device_id"], False)

    def _handle_event(self, gateway_id: str, object_device_id: Optional[str], event: dict) -> None:
        if not isinstance(event, dict):
            return
        service_id = event.get("service_id")
        event_type = event.get("event_type")
        event_id = _text(event.get("event_id"))
        paras = event.get("paras") if isinstance(event.get("paras"), dict) else {}
        if service_id == DISCOVERY_SERVICE_ID:
            if event_type == "scan_result":
                devices = paras.get("devices")
                with self._lock:
                    self.scan_results.append({"gateway_id": gateway_id,
                                              "devices": devices if isinstance(devices, list) else []})
            return
        if object_device_id and object_device_id != gateway_id:
            _logger.warning("%s event %s from %s names another device (%s): ignored",
                            SERVICE_ID, event_type, gateway_id, object_device_id)
            return
        handler = {
            "add_sub_device_request": self._on_add_request,
            "delete_sub_device_request": self._on_delete_request,
            "sub_device_sync_request": self._on_sync_request,
            "sub_device_update_status": self._on_update_status,
        }.get(event_type)
        if handler is None:
            _logger.info("%s: unhandled event type %r from %s", SERVICE_ID, event_type, gateway_id)
            return
        handler(gateway_id, paras, event_id)

    # ---- requests from gateways ----------------------------------------------------------------

    def _on_add_request(self, gateway_id: str, paras: dict, event_id: Optional[str]) -> None:
        devices = paras.get("devices")
        entries = devices if isinstance(devices, list) else []
        successful, failed, version = self._add(gateway_id, entries[:MAX_ADD_DELETE])
        for entry in entries[MAX_ADD_DELETE:]:
            failed.append(self._add_failure(entry, ERR_OVER_LIMIT,
                                            f"at most {MAX_ADD_DELETE} sub devices per request"))
        if not isinstance(devices, list):
            failed.append({"node_id": None, "product_id": None, "error_code": ERR_INVALID,
                           "error_msg": "paras.devices must be a list"})
        rsp = {"successful_devices": [dict(d, extension_info=d.get("extension_info")) for d in successful],
               "failed_devices": failed}
        self._send(gateway_id, "add_sub_device_response", rsp, event_id)
        if successful:   # like the console path: the new list version reaches the gateway as a notification
            self._notify_added(gateway_id, successful, version)

    def _on_delete_request(self, gateway_id: str, paras: dict, event_id: Optional[str]) -> None:
        devices = paras.get("devices")
        entries = devices if isinstance(devices, list) else []
        successful, failed, removed, version = self._delete(gateway_id, entries[:MAX_ADD_DELETE])
        for entry in entries[MAX_ADD_DELETE:]:
            failed.append({"device_id": entry if isinstance(entry, str) else None, "error_code": ERR_OVER_LIMIT,
                           "error_msg": f"at most {MAX_ADD_DELETE} sub devices per request"})
        if not isinstance(devices, list):
            failed.append({"device_id": None, "error_code": ERR_INVALID, "error_msg": "paras.devices must be a list"})
        self._send(gateway_id, "delete_sub_device_response",
                   {"successful_devices": successful, "failed_devices": failed}, event_id)
        if removed:
            self._notify_deleted(gateway_id, removed, version)

    def _on_sync_request(self, gateway_id: str, paras: dict, event_id: Optional[str]) -> None:
        self.sync(gateway_id, _as_int(paras.get("version")))

    def _on_update_status(self, gateway_id: str, paras: dict, event_id: Optional[str]) -> None:
        statuses = paras.get("device_statuses")
        entries = statuses if isinstance(statuses, list) else []
        children = {c["device_id"] for c in self._registry_children(gateway_id)}
        successful, failed = [], []
        for i, entry in enumerate(entries):
            device_id = _text(entry.get("device_id")) if isinstance(entry, dict) else None
            status = entry.get("status") if isinstance(entry, dict) else None
            if i >= MAX_STATUS:
                failed.append({"device_id": device_id, "error_code": ERR_OVER_LIMIT,
                               "error_msg": f"at most {MAX_STATUS} statuses per request"})
            elif device_id is None or status not in ("ONLINE", "OFFLINE"):
                failed.append({"device_id": device_id, "error_code": ERR_INVALID,
                               "error_msg": "device_id and status ONLINE/OFFLINE are required"})
            elif device_id not in children:
                failed.append({"device_id": device_id, "error_code": ERR_NOT_FOUND,
                               "error_msg": f"not a sub device of {gateway_id}"})
            else:
                self._set_online(device_id, status == "ONLINE")
                successful.append({"device_id": device_id, "status": status})
        if not isinstance(statuses, list) or not entries:
            failed.append({"device_id": None, "error_code": ERR_INVALID,
                           "error_msg": "paras.device_statuses must be a list of 1 to 100 entries"})
        self._send(gateway_id, "sub_device_update_status_response",
                   {"successful_devices": successful, "failed_devices": failed}, event_id)

    # ---- Python API ----------------------------------------------------------------------------

    def add_child(self, gateway_id: str, node_id: str, product_id: str = "emu_product", *,
                  device_id: Optional[str] = None, name: Optional[str] = None,
                  description: Optional[str] = None, notify: bool = True) -> dict:
        """Create one sub-device of ``gateway_id`` (as the console would) and notify the gateway.

        Returns the new child's DeviceInfo dict. Raises ``ValueError`` when it cannot be created.
        """
        entry = {"node_id": node_id, "product_id": product_id, "device_id": device_id, "name": name,
                 "description": description}
        added = self.add_children(gateway_id, [entry], notify=notify)
        return added[0]

    def add_children(self, gateway_id: str, entries: Iterable[Any], *, notify: bool = True) -> List[dict]:
        """Create several sub-devices at once (one version step, one notification per 100).

        ``entries`` are node id strings or dicts with ``node_id``, ``product_id`` (default
        ``emu_product``), optional ``device_id``, ``name``, ``description``. Returns the created
        DeviceInfo dicts. Raises ``ValueError`` listing the refused entries (valid ones are created).
        """
        items = []
        for e in entries:
            if isinstance(e, str):
                items.append({"node_id": e, "product_id": "emu_product"})
            elif isinstance(e, dict):
                items.append(dict({"product_id": "emu_product"}, **{k: v for k, v in e.items() if v is not None}))
            else:
                raise ValueError(f"not a node id or dict: {e!r}")
        successful, failed, version = self._add(gateway_id, items)
        if successful and notify:
            self._notify_added(gateway_id, successful, version)
        if failed:
            raise ValueError(f"sub devices not created: {failed}")
        return successful

    def delete_child(self, gateway_id: str, device_id: str, *, notify: bool = True) -> None:
        """Delete one sub-device (as the console would) and notify the gateway. ``ValueError`` if unknown."""
        self.delete_children(gateway_id, [device_id], notify=notify)

    def delete_children(self, gateway_id: str, device_ids: Iterable[str], *, notify: bool = True) -> List[str]:
        """Delete several sub-devices (one version step). Returns the deleted ids; ``ValueError`` if any
        is not a sub-device of ``gateway_id`` (the others are deleted)."""
        successful, failed, removed, version = self._delete(gateway_id, list(device_ids))
        if removed and notify:
            self._notify_deleted(gateway_id, removed, version)
        if failed:
            raise ValueError(f"sub devices not deleted: {failed}")
        return successful

    def registry_changed(self, gateway_id: str) -> int:
        """Children of ``gateway_id`` were added or deleted in the registry (REST AddDevice/DeleteDevice with a
        ``gateway_id``): record the change under a new list version and, as IoTDA does, tell the gateway with
        ``add_sub_device_notify`` / ``delete_sub_device_notify`` when it is online. An offline gateway learns it
        at its next ``sub_device_sync_request`` (its version differs). Returns the list version now.
        """
        with self._lock:
            version, changes = self._reconcile(gateway_id)
            added = [info for op, _dev, info in changes if op == "add"]
            deleted = [info for op, _dev, info in changes if op == "delete"]
            # queued while holding the lock: notifications leave in version order
            if deleted:
                self._submit(self._notify_deleted, gateway_id, deleted, version)
            if added:
                self._submit(self._notify_added, gateway_id, added, version)
        return version

    def version(self, gateway_id: str) -> int:
        """The current sub-device list version of ``gateway_id`` (0 when it never had children)."""
        with self._lock:
            self._reconcile(gateway_id)
            return self._version(gateway_id)

    def children(self, gateway_id: str) -> List[dict]:
        """The current sub-devices of ``gateway_id`` as DeviceInfo dicts, sorted by device id."""
        with self._lock:
            self._reconcile(gateway_id)
            return [self._device_info(c) for c in sorted(self._registry_children(gateway_id),
                                                         key=lambda c: c["device_id"])]

    def history(self, gateway_id: str) -> List[dict]:
        """Every kept change of ``gateway_id``: ``{version, op ("add"/"delete"), device_id}``."""
        rows = self.core.db.query("SELECT version, op, device_id FROM sub_device_changes WHERE gateway_id=? "
                                  "ORDER BY id", (gateway_id,))
        return [{"version": r["version"], "op": r["op"], "device_id": r["device_id"]} for r in rows]

    def sync(self, gateway_id: str, gateway_version: Optional[int]) -> int:
        """Send ``gateway_id`` the notifications that bring a list at ``gateway_version`` up to date.

        Returns the number of notifications sent. ``None``/0/unknown versions get the full list.
        """
        with self._lock:
            self._reconcile(gateway_id)
            current = self._version(gateway_id)
            members = self._members(gateway_id)
            if gateway_version is not None and 0 < gateway_version and gateway_version == current:
                return 0
            row = self.core.db.query("SELECT pruned FROM sub_device_versions WHERE gateway_id=?", (gateway_id,))
            pruned = row[0]["pruned"] if row else 0
            if not gateway_version or gateway_version <= 0 or gateway_version < pruned \
                    or gateway_version > current:
                added, deleted = list(members.values()), []
            else:
                past = dict(members)
                rows = self.core.db.query(
                    "SELECT op, device_id, info FROM sub_device_changes WHERE gateway_id=? AND version>? "
                    "ORDER BY id DESC", (gateway_id, gateway_version))
                for r in rows:       # undo the newer changes, newest first
                    if r["op"] == "add":
                        past.pop(r["device_id"], None)
                    else:
                        past[r["device_id"]] = json.loads(r["info"])
                added = [info for dev, info in members.items() if dev not in past]
                deleted = [info for dev, info in past.items() if dev not in members]
            live = {c["device_id"]: c for c in self._registry_children(gateway_id)}
            added = [self._device_info(live[i["device_id"]], description=i.get("description"))
                     if i.get("device_id") in live else i for i in added]
        sent = 0
        for chunk in _chunked([_delete_info(i) for i in deleted], NOTIFY_CHUNK):
            self._send(gateway_id, "delete_sub_device_notify", {"devices": chunk, "version": current})
            sent += 1
        for chunk in _chunked(added, NOTIFY_CHUNK):
            self._send(gateway_id, "add_sub_device_notify", {"devices": chunk, "version": current})
            sent += 1
        return sent

    def describe(self) -> Any:
        rows = self.core.db.query("SELECT gateway_id, version FROM sub_device_versions ORDER BY gateway_id")
        return {"gateways": [{"gateway_id": r["gateway_id"], "version": r["version"],
                              "children": len(self._registry_children(r["gateway_id"]))} for r in rows]}

    # ---- state changes -------------------------------------------------------------------------

    def _add(self, gateway_id: str, entries: list) -> Tuple[List[dict], List[dict], int]:
        """Create the valid entries as children; returns (created DeviceInfo dicts, failures, new version)."""
        successful: List[dict] = []
        failed: List[dict] = []
        version = 0
        with self._lock:
            gateway = self.core.get_device(gateway_id)
            if gateway is None:
                raise ValueError(f"gateway {gateway_id} not found")
            self._reconcile(gateway_id)
            used_nodes = {info.get("node_id") for info in self._members(gateway_id).values()}
            for entry in entries:
                if not isinstance(entry, dict):
                    failed.append(self._add_failure(entry, ERR_INVALID, "each device must be an object"))
                    continue
                node_id, product_id = _text(entry.get("node_id")), _text(entry.get("product_id"))
                if node_id is None or product_id is None:
                    failed.append(self._add_failure(entry, ERR_INVALID, "node_id and product_id are required"))
                    continue
                device_id = _text(entry.get("device_id")) or f"{product_id}_{node_id}"
                parent = _text(entry.get("parent_device_id"))
                if parent is not None and parent != gateway_id:
                    failed.append(self._add_failure(entry, ERR_INVALID, "parent_device_id is not this gateway"))
                    continue
                if not topics.is_valid_device_id(device_id):
                    failed.append(self._add_failure(entry, ERR_INVALID, f"invalid device id {device_id!r}"))
                    continue
                if node_id in used_nodes:
                    failed.append(self._add_failure(entry, ERR_DUPLICATE,
                                                    f"node_id {node_id} already exists under this gateway"))
                    continue
                if self.core.get_device(device_id) is not None:
                    failed.append(self._add_failure(entry, ERR_DUPLICATE, f"device {device_id} already exists"))
                    continue
                try:
                    record = self.core.create_device(device_id=device_id, product_id=product_id, node_id=node_id,
                                                     gateway_id=gateway_id, name=_text(entry.get("name")))
                except Exception as exc:
                    failed.append(self._add_failure(entry, ERR_INVALID, str(exc)))
                    continue
                used_nodes.add(node_id)
                info = self._device_info(record, description=_text(entry.get("description")))
                ext = entry.get("extension_info")
                if isinstance(ext, dict):
                    info["extension_info"] = ext
                successful.append(info)
            if successful:
                version = self._record(gateway_id, [("add", d["device_id"], d) for d in successful])
        return successful, failed, version

    def _notify_added(self, gateway_id: str, devices: List[dict], version: int) -> None:
        plain = [{k: v for k, v in d.items() if k != "extension_info"} for d in devices]
        for chunk in _chunked(plain, NOTIFY_CHUNK):
            self._send_if_online(gateway_id, "add_sub_device_notify", {"devices": chunk, "version": version})

    def _notify_deleted(self, gateway_id: str, devices: List[dict], version: int) -> None:
        for chunk in _chunked([_delete_info(d) for d in devices], NOTIFY_CHUNK):
            self._send_if_online(gateway_id, "delete_sub_device_notify", {"devices": chunk, "version": version})

    def _delete(self, gateway_id: str, device_ids: list) -> Tuple[List[str], List[dict], List[dict], int]:
        """Delete the listed children; returns (deleted ids, failures, their DeviceInfo dicts, new version)."""
        successful: List[str] = []
        failed: List[dict] = []
        removed: List[dict] = []
        version = 0
        with self._lock:
            self._reconcile(gateway_id)
            members = self._members(gateway_id)
            for device_id in device_ids:
                if not isinstance(device_id, str) or device_id not in members:
                    failed.append({"device_id": device_id if isinstance(device_id, str) else None,
                                   "error_code": ERR_NOT_FOUND,
                                   "error_msg": f"not a sub device of {gateway_id}"})
                    continue
                if device_id in successful:
                    continue
                try:
                    self.core.delete_device(device_id)
                except Exception as exc:
                    if self.core.get_device(device_id) is not None:
                        failed.append({"device_id": device_id, "error_code": ERR_INVALID, "error_msg": str(exc)})
                        continue
                successful.append(device_id)
                removed.append(members[device_id])
            if removed:
                version = self._record(gateway_id, [("delete", d["device_id"], d) for d in removed])
        return successful, failed, removed, version

    def _reconcile(self, gateway_id: str) -> Tuple[int, List[Tuple[str, str, dict]]]:
        """Record children added/removed behind our back (directly in the registry) as one change.

        Returns (the version now, the changes recorded: ``(op, device_id, DeviceInfo)``)."""
        registry = {c["device_id"]: c for c in self._registry_children(gateway_id)}
        members = self._members(gateway_id)
        changes = [("add", dev, self._device_info(c)) for dev, c in registry.items() if dev not in members]
        changes += [("delete", dev, info) for dev, info in members.items() if dev not in registry]
        if changes:
            return self._record(gateway_id, changes), changes
        return self._version(gateway_id), []

    def _record(self, gateway_id: str, changes: List[Tuple[str, str, dict]]) -> int:
        """Apply ``changes`` to the member table under a new version; return that version."""
        db = self.core.db
        version = self._version(gateway_id) + 1
        db.execute("INSERT INTO sub_device_versions(gateway_id, version) VALUES(?, ?) "
                   "ON CONFLICT(gateway_id) DO UPDATE SET version=excluded.version", (gateway_id, version))
        for op, device_id, info in changes:
            stored = {k: v for k, v in info.items() if k not in ("status", "extension_info")}
            text = json.dumps(stored, separators=(",", ":"))
            db.execute("INSERT INTO sub_device_changes(gateway_id, version, op, device_id, info) "
                       "VALUES(?, ?, ?, ?, ?)", (gateway_id, version, op, device_id, text))
            if op == "add":
                db.execute("INSERT OR REPLACE INTO sub_device_members(gateway_id, device_id, info) VALUES(?, ?, ?)",
                           (gateway_id, device_id, text))
            else:
                db.execute("DELETE FROM sub_device_members WHERE gateway_id=? AND device_id=?",
                           (gateway_id, device_id))
        self._prune(gateway_id)
        return version

    def _prune(self, gateway_id: str) -> None:
        db = self.core.db
        count = db.query("SELECT COUNT(*) AS n FROM sub_device_changes WHERE gateway_id=?", (gateway_id,))[0]["n"]
        if count <= MAX_HISTORY:
            return
        cut = db.query("SELECT version FROM sub_device_changes WHERE gateway_id=? ORDER BY id DESC "
                       "LIMIT 1 OFFSET ?", (gateway_id, MAX_HISTORY))[0]["version"]
        db.execute("DELETE FROM sub_device_changes WHERE gateway_id=? AND version<=?", (gateway_id, cut))
        # a gateway at a version below `cut` can no longer be brought up to date incrementally
        db.execute("UPDATE sub_device_versions SET pruned=? WHERE gateway_id=?", (cut, gateway_id))

    # ---- helpers -------------------------------------------------------------------------------

    def _version(self, gateway_id: str) -> int:
        rows = self.core.db.query("SELECT version FROM sub_device_versions WHERE gateway_id=?", (gateway_id,))
        return rows[0]["version"] if rows else 0

    def _members(self, gateway_id: str) -> Dict[str, dict]:
        rows = self.core.db.query("SELECT device_id, info FROM sub_device_members WHERE gateway_id=?",
                                  (gateway_id,))
        return {r["device_id"]: json.loads(r["info"]) for r in rows}

    def _registry_children(self, gateway_id: str) -> List[dict]:
        try:
            return list(self.core.children(gateway_id) or [])
        except Exception:
            _logger.exception("core.children(%s) failed", gateway_id)
            return []

    def _set_online(self, device_id: str, online: bool) -> None:
        try:
            self.core.set_online(device_id, online)
        except Exception:
            _logger.exception("core.set_online(%s, %s) failed", device_id, online)

    def _device_info(self, record: dict, description: Optional[str] = None) -> dict:
        """The DeviceInfo dict of a registry record (optional fields without a value are left out)."""
        info = {
            "parent_device_id": record.get("gateway_id") or record.get("parent_device_id"),
            "node_id": record.get("node_id"),
            "device_id": record.get("device_id"),
            "name": record.get("name") or record.get("node_id"),
            "description": description if description is not None else record.get("description"),
            "manufacturer_id": record.get("manufacturer_id"),
            "model": record.get("model"),
            "product_id": record.get("product_id"),
            "fw_version": record.get("fw_version"),
            "sw_version": record.get("sw_version"),
            "status": "ONLINE" if record.get("online") else "OFFLINE",
        }
        return {k: v for k, v in info.items() if v is not None}

    @staticmethod
    def _add_failure(entry: Any, code: str, msg: str) -> dict:
        d = entry if isinstance(entry, dict) else {}
        return {"node_id": _text(d.get("node_id")), "product_id": _text(d.get("product_id")),
                "error_code": code, "error_msg": msg}

    def _is_online(self, device_id: str) -> bool:
        record = self.core.get_device(device_id)
        return bool(record and record.get("online"))

    def _send_if_online(self, gateway_id: str, event_type: str, paras: dict) -> None:
        # A disconnected gateway learns the change at its next sync (notifications are not queued).
        if self._is_online(gateway_id):
            self._send(gateway_id, event_type, paras)

    def _send(self, gateway_id: str, event_type: str, paras: dict, event_id: Optional[str] = None) -> None:
        try:
            self.core.send_event(gateway_id, SERVICE_ID, event_type, paras, event_id=event_id)
        except (DeviceOffline, DeviceNotFound) as exc:
            # the gateway went away meanwhile: it learns the state at its next sync
            _logger.info("%s for %s not sent: %s", event_type, gateway_id, exc)
        except Exception:
            _logger.exception("sending %s to %s failed", event_type, gateway_id)


def _delete_info(info: dict) -> dict:
    return {"parent_device_id": info.get("parent_device_id"), "node_id": info.get("node_id"),
            "device_id": info.get("device_id")}


def _chunked(items: list, size: int) -> List[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]
