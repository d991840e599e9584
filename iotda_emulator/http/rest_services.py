"""IoTDA v5 application REST API for the emulator's platform services, plus a few emulator-only endpoints.

IoTDA paths and JSON (as in the official ``huaweicloudsdkiotda`` client, so it works unchanged):

* OTA packages — ``POST/GET /v5/iot/{project_id}/ota-upgrades/packages``, ``GET/DELETE .../packages/{package_id}``
  (CreateOtaPackage, ListOtaPackageInfo, ShowOtaPackage, DeleteOtaPackage). IoTDA references an OBS object
  (``file_location.obs_location.bucket_name/object_key``); here that object must be in the emulator's object
  store (``iotda_emulator.objects.ObjectStore``). ``package_type`` ``firmwarePackage``/``softwarePackage``.
* Upgrade tasks — ``POST/GET /v5/iot/{project_id}/batchtasks``, ``GET/DELETE .../batchtasks/{task_id}``
  (CreateBatchTask, ListBatchTasks, ShowBatchTask, DeleteBatchTask) for ``task_type`` ``firmwareUpgrade`` /
  ``softwareUpgrade`` (``firmware_upgrade``/``software_upgrade`` accepted too), ``targets`` = device ids,
  ``document`` = ``{"package_id": id}`` or ``{"package_ids": [id]}``. One ``$ota`` task per target; the
  per-device status/progress in ShowBatchTask is read from that task (Waitting, Processing, Success, Fail,
  Stopped); ``need_confirm`` holds them until ConfirmBatchTask. Stop/retry/confirm, the device task types
  (freeze/unfreeze/delete/create devices), task files and OTA modules are in :mod:`iotda_emulator.http.rest_batch`.
* Device-side rules — ``POST/GET /v5/iot/{project_id}/rules``, ``GET/PUT/DELETE .../rules/{rule_id}``,
  ``PUT .../rules/{rule_id}/status`` (CreateRule, ListRules, ShowRule, UpdateRule, DeleteRule,
  ChangeRuleStatus) for ``rule_type`` ``DEVICE_SIDE``: the IoTDA rule JSON is translated into the
  ``rulesInfos`` shape devices receive and stored by the ``$device_rule`` service for every device of
  ``device_side.device_ids`` (default: the devices named in the conditions).

Emulator-only (IoTDA exposes these through other products or only in its console):

* ``POST /emulator/ota/packages?version=..&package_type=firmwarePackage|softwarePackage[&file_name=..]
  [&product_id=..][&custom_info=..][&description=..]`` — the request body is the package file (at most
  1 MB, the HTTP API's body limit; put larger files in the object store and use CreateOtaPackage). Answers
  201 with CreateOtaPackage's JSON plus ``file_name``, ``file_size`` and ``sign`` (SHA-256).
* ``GET /emulator/devices/{device_id}/logs[?type=..][&limit=..]`` — the device's ``$log`` reports.
* ``PUT /emulator/devices/{device_id}/log-config`` ``{"switch": "on"|"off", "end_time": "yyyyMMdd'T'HHmmss'Z'"}``
  — sends ``log_config`` to the (online) device; ``GET`` lists what was sent.

Errors use IoTDA's ``{"error_code", "error_msg"}`` body; the same SDK-HMAC check as the rest of the API applies.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import uuid
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Tuple

from iotda_emulator.protocol import codec, rules
from iotda_emulator import errors
from iotda_emulator.http.rest import (ApiError, BaseApiHandler, PREFIX, _event_time, api, bad_format, bad_request,
                                      device_not_found, device_offline)

log = logging.getLogger(__name__)

_ID_RE = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")
_VERSION_RE = re.compile(r"^[A-Za-z0-9_\-.]{1,256}$")
_PACKAGE_TYPES = {"firmwarePackage": "firmware", "softwarePackage": "software"}
_KIND_TO_TYPE = {v: k for k, v in _PACKAGE_TYPES.items()}
_TASK_TYPES = {"firmwareUpgrade": "firmware", "softwareUpgrade": "software",
               "firmware_upgrade": "firmware", "software_upgrade": "software"}
_FINAL_BATCH = ("Success", "Fail", "PartialSuccess", "Stopped")


def not_found(what: str, ident: str) -> ApiError:
    return ApiError(404, "IOTDA.000006", f"Invalid input data. The {what} does not exist. id={ident}")


def _page_args(handler: BaseApiHandler) -> Tuple[int, int, Optional[str]]:
    return (handler.int_arg("limit", 10, 1, 50), handler.int_arg("offset", 0, 0, 500),
            handler.get_query_argument("marker", None))


def _paginate(items: List[Any], key, limit: int, offset: int, marker: Optional[str]) -> Tuple[List[Any], Optional[str]]:
    """``marker`` = key of the last item of the previous page (IoTDA's marker paging), then offset/limit."""
    if marker:
        keys = [key(i) for i in items]
        if marker in keys:
            items = items[keys.index(marker) + 1:]
    page = items[offset:offset + limit]
    return page, (key(page[-1]) if page else marker)


def _str(body: dict, key: str, *, required: bool = False, max_len: int = 256,
         pattern: Optional[re.Pattern] = None) -> Optional[str]:
    value = body.get(key)
    if value is None or value == "":
        if required:
            raise bad_request(f"'{key}' is mandatory.")
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise bad_request(f"'{key}' must be a string of at most {max_len} characters.")
    if pattern is not None and not pattern.match(value):
        raise bad_request(f"'{key}' has invalid characters: {value!r}.")
    return value


def _obj(body: dict, key: str, *, required: bool = False) -> Optional[dict]:
    value = body.get(key)
    if value is None:
        if required:
            raise bad_request(f"'{key}' is mandatory.")
        return None
    if not isinstance(value, dict):
        raise bad_request(f"'{key}' must be an object.")
    return value


class ServicesState:
    """REST-side bookkeeping the platform services do not keep: package metadata, batch tasks, rule JSON."""

    def __init__(self, emulator: Any) -> None:
        self.emulator = emulator
        self.lock = threading.Lock()
        self.package_meta: Dict[str, dict] = {}
        self.batches: "OrderedDict[str, dict]" = OrderedDict()
        self.task_files: "OrderedDict[str, dict]" = OrderedDict()   # batch task files (rest_batch)
        self.modules: "OrderedDict[str, dict]" = OrderedDict()      # OTA modules (rest_batch)
        self._rules_ready = False

    def service(self, service_id: str) -> Any:
        try:
            return self.emulator.service(service_id)
        except (KeyError, AttributeError):
            raise ApiError(500, "IOTDA.000001", f"Internal error: the emulator has no {service_id} service.") \
                from None

    # ---- rules table (sqlite through the core's db helper, so rules survive a restart with a data_dir) ----
    def db(self) -> Any:
        db = self.emulator.core.db
        if not self._rules_ready:
            db.execute("CREATE TABLE IF NOT EXISTS rest_rules (rule_id TEXT PRIMARY KEY, body TEXT NOT NULL, "
                       "device_ids TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL)")
            self._rules_ready = True
        return db

    def rule_row(self, rule_id: str) -> Optional[dict]:
        rows = self.db().query("SELECT * FROM rest_rules WHERE rule_id=?", (rule_id,))
        if not rows:
            return None
        row = rows[0]
        return {"rule_id": row["rule_id"], "body": json.loads(row["body"]),
                "device_ids": json.loads(row["device_ids"]), "created": row["created"], "updated": row["updated"]}

    def rule_rows(self) -> List[dict]:
        rows = self.db().query("SELECT rule_id FROM rest_rules ORDER BY created, rule_id")
        return [r for r in (self.rule_row(row["rule_id"]) for row in rows) if r is not None]

    def save_rule(self, rule_id: str, body: dict, device_ids: List[str], created: float) -> None:
        self.db().execute("INSERT OR REPLACE INTO rest_rules(rule_id, body, device_ids, created, updated) "
                          "VALUES (?,?,?,?,?)", (rule_id, json.dumps(body), json.dumps(device_ids), created,
                                                 time.time()))

    def delete_rule_row(self, rule_id: str) -> None:
        self.db().execute("DELETE FROM rest_rules WHERE rule_id=?", (rule_id,))


def shared_state(server: Any) -> ServicesState:
    """The one :class:`ServicesState` of an HTTP server (every module's routes share it)."""
    state = getattr(server, "_services_state", None)
    if state is None:
        state = server._services_state = ServicesState(server.emulator)
    return state


class ServiceHandler(BaseApiHandler):
    """A REST handler that also gets the shared :class:`ServicesState`."""

    def initialize(self, server: Any, state: ServicesState) -> None:  # noqa: D401 - tornado hook
        super().initialize(server)
        self.state = state


# ==== OTA packages ======================================================================================

def _package_view(pkg: dict, meta: dict, *, full: bool) -> dict:
    view = {
        "package_id": pkg["package_id"],
        "app_id": meta.get("app_id") or "emulator_app",
        "package_type": _KIND_TO_TYPE.get(pkg.get("kind"), "firmwarePackage"),
        "product_id": meta.get("product_id"),
        "product_name": meta.get("product_id"),
        "module_name": None,
        "version": pkg.get("version"),
        "support_source_versions": list(meta.get("support_source_versions") or []),
        "description": meta.get("description"),
        "custom_info": pkg.get("custom_info"),
        "create_time": _event_time(pkg.get("created")),
    }
    if full:
        obs = meta.get("obs_location") or {}
        view["file_location"] = {"obs_location": {
            "region_name": obs.get("region_name") or "emulator",
            "bucket_name": obs.get("bucket_name") or "ota-packages",
            "object_key": obs.get("object_key") or pkg.get("key"),
            "sign_method": "SHA256",
            "sign": pkg.get("sign")}}
    return view


def _package_meta_from(body: dict) -> dict:
    """Validate the descriptive fields common to CreateOtaPackage and the emulator upload."""
    meta: Dict[str, Any] = {
        "app_id": _str(body, "app_id", max_len=36, pattern=_ID_RE),
        "product_id": _str(body, "product_id", max_len=36, pattern=_ID_RE),
        "description": _str(body, "description", max_len=1024),
    }
    sources = body.get("support_source_versions")
    if sources is not None:
        if not isinstance(sources, list) or len(sources) > 20 or not all(
                isinstance(v, str) and _VERSION_RE.match(v) for v in sources):
            raise bad_request("'support_source_versions' is a list of at most 20 versions.")
        meta["support_source_versions"] = list(sources)
    return meta


def _package_kind(package_type: Optional[str]) -> str:
    if not isinstance(package_type, str) or package_type not in _PACKAGE_TYPES:   # a list/object: unhashable
        raise bad_request("'package_type' must be firmwarePackage or softwarePackage "
                          "(modulePackage is not emulated).")
    return _PACKAGE_TYPES[package_type]


class OtaPackagesHandler(ServiceHandler):
    """``POST`` (CreateOtaPackage) and ``GET`` (ListOtaPackageInfo) ``/v5/iot/{project_id}/ota-upgrades/packages``."""

    @api
    async def post(self, project_id: str) -> None:
        body = self.json_body()
        kind = _package_kind(body.get("package_type"))
        version = _str(body, "version", required=True, pattern=_VERSION_RE)
        custom_info = _str(body, "custom_info", max_len=4096)
        meta = _package_meta_from(body)
        if not meta["product_id"]:
            raise bad_request("'product_id' is mandatory.")
        location = _obj(body, "file_location", required=True)
        obs = _obj(location, "obs_location", required=True)
        bucket = _str(obs, "bucket_name", required=True, max_len=63)
        key = _str(obs, "object_key", required=True, max_len=1024)
        ota = self.state.service("$ota")
        data = await self.call(ota.store.get_object, bucket, key)
        if data is None:
            raise bad_request(f"The object {bucket}/{key} does not exist in the emulator's object store.")
        meta["obs_location"] = {"region_name": _str(obs, "region_name", max_len=64), "bucket_name": bucket,
                                "object_key": key}
        file_name = os.path.basename(key) or f"package-{version}.bin"
        try:
            package_id = await self.call(ota.upload_package, data, version, kind=kind, file_name=file_name,
                                         custom_info=custom_info)
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        with self.state.lock:
            self.state.package_meta[package_id] = meta
        self.reply(_package_view(ota.package(package_id), meta, full=True), 201)

    @api
    async def get(self, project_id: str) -> None:
        limit, offset, marker = _page_args(self)
        package_type = self.get_query_argument("package_type", None)
        kind = _package_kind(package_type) if package_type else None
        product_id = self.get_query_argument("product_id", None)
        version = self.get_query_argument("version", None)
        ota = self.state.service("$ota")
        packages = sorted(ota.list_packages(), key=lambda p: (p.get("created") or 0, p["package_id"]))
        with self.state.lock:
            metas = dict(self.state.package_meta)
        keep = [p for p in packages
                if (kind is None or p.get("kind") == kind)
                and (not version or p.get("version") == version)
                and (not product_id or metas.get(p["package_id"], {}).get("product_id") == product_id)]
        page, next_marker = _paginate(keep, lambda p: p["package_id"], limit, offset, marker)
        self.reply({"packages": [_package_view(p, metas.get(p["package_id"], {}), full=False) for p in page],
                    "page": {"count": len(keep), "marker": next_marker}})


class OtaPackageHandler(ServiceHandler):
    """``GET`` (ShowOtaPackage) and ``DELETE`` (DeleteOtaPackage) ``.../ota-upgrades/packages/{package_id}``."""

    @api
    async def get(self, project_id: str, package_id: str) -> None:
        pkg = self.state.service("$ota").package(package_id)
        if pkg is None:
            raise not_found("package", package_id)
        with self.state.lock:
            meta = dict(self.state.package_meta.get(package_id, {}))
        self.reply(_package_view(pkg, meta, full=True))

    @api
    async def delete(self, project_id: str, package_id: str) -> None:
        ota = self.state.service("$ota")
        if not await self.call(ota.delete_package, package_id):
            raise not_found("package", package_id)
        with self.state.lock:
            self.state.package_meta.pop(package_id, None)
        self.reply(None, 204)


class EmulatorPackageUploadHandler(ServiceHandler):
    """``POST /emulator/ota/packages?version=..&package_type=..`` with the package file as the body."""

    @api
    async def post(self) -> None:
        data = self.request.body or b""
        if not data:
            raise bad_format("The request body (the package file) is empty.")
        args = {k: self.get_query_argument(k, None) for k in
                ("version", "package_type", "file_name", "product_id", "custom_info", "description", "app_id")}
        kind = _package_kind(args["package_type"] or "firmwarePackage")
        version = _str(args, "version", required=True, pattern=_VERSION_RE)
        file_name = _str(args, "file_name", max_len=255)
        custom_info = _str(args, "custom_info", max_len=4096)
        meta = _package_meta_from(args)
        ota = self.state.service("$ota")
        try:
            package_id = await self.call(ota.upload_package, data, version, kind=kind,
                                         file_name=file_name or f"package-{version}.bin", custom_info=custom_info)
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        with self.state.lock:
            self.state.package_meta[package_id] = meta
        pkg = ota.package(package_id)
        view = _package_view(pkg, meta, full=True)
        view.update({"file_name": pkg["file_name"], "file_size": pkg["file_size"], "sign": pkg["sign"]})
        self.reply(view, 201)


# ==== batch (upgrade) tasks ================================================================================

_SUB_STATUS = {"pending": "Waitting", "querying": "Processing", "upgrading": "Processing",
               "success": "Success", "no_need": "Success", "failed": "Fail", "stopped": "Stopped"}


def _sub_details(batch: dict, ota: Any) -> List[dict]:
    """One TaskDetail per target, from the ``$ota`` task records (device batches keep their own results)."""
    if batch.get("results") is not None:     # freeze/unfreeze/delete/create devices: done at creation
        return [dict(d) for d in batch["results"]]
    details = []
    for target in batch["targets"]:
        error = batch["errors"].get(target)
        if error is not None:
            details.append({"target": target, "status": "Fail", "output": None,
                            "error": {"error_code": error[0], "error_msg": error[1]}})
            continue
        task_id = batch["subtasks"].get(target)
        if task_id is None:   # need_confirm: waiting for ConfirmBatchTask (or stopped before it)
            status = "Stopped" if target in batch.get("stopped", ()) else "Waitting"
            details.append({"target": target, "status": status, "output": None, "error": None})
            continue
        task = ota.task(task_id) or {}
        status = _SUB_STATUS.get(task.get("status"), "Processing")
        last = task["progress"][-1] if task.get("progress") else {}
        result = task.get("result") or {}
        output = {"ota_task_id": task.get("task_id"), "ota_status": task.get("status"),
                  "progress": last.get("progress"), "version": result.get("version") or last.get("version"),
                  "result_code": result.get("result_code"), "description": result.get("description")}
        err = None
        if status == "Fail":
            err = {"error_code": str(result.get("result_code", 255)),
                   "error_msg": result.get("description") or "upgrade failed"}
        details.append({"target": target, "status": status, "output": codec.dumps(output), "error": err})
    return details


def _batch_view(batch: dict, details: List[dict]) -> dict:
    counts = {"total": len(details), "processing": 0, "success": 0, "fail": 0, "waitting": 0,
              "fail_wait_retry": 0, "stopped": 0, "removed": 0}
    for d in details:
        counts[{"Processing": "processing", "Success": "success", "Fail": "fail",
                "Waitting": "waitting", "Stopped": "stopped"}[d["status"]]] += 1
    if counts["processing"] or counts["waitting"]:
        status = "Processing" if counts["processing"] or counts["success"] or counts["fail"] else "Waitting"
    elif counts["stopped"] == counts["total"]:
        status = "Stopped"
    elif counts["fail"] == 0 and counts["stopped"] == 0:
        status = "Success"
    elif counts["success"] == 0 and counts["fail"]:
        status = "Fail"        # stopped sub tasks count as not successful (the emulator's choice)
    else:
        status = "PartialSuccess"
    return {"task_id": batch["task_id"], "task_name": batch["task_name"], "task_type": batch["task_type"],
            "task_mode": batch.get("task_mode"), "need_confirm": bool(batch.get("need_confirm")),
            "task_ext_info": batch.get("task_ext_info"),
            "targets": list(batch["targets"]), "targets_filter": None, "document": batch["document"],
            "task_policy": None, "status": status,
            "status_desc": {"Fail": "All sub tasks failed.", "PartialSuccess": "Some sub tasks failed.",
                            "Stopped": "The task was stopped."}.get(status),
            "task_progress": counts, "create_time": _event_time(batch["created"])}


def start_upgrade_target(ota: Any, batch: dict, target: str) -> None:
    """Start (or restart) the ``$ota`` task of one target of an upgrade batch; a failure is recorded, not raised."""
    batch["errors"].pop(target, None)
    batch.get("stopped", set()).discard(target)
    try:
        # packages "associated with an OBS object" use the *_v2 events (presigned URL), uploaded ones v1
        batch["subtasks"][target] = ota.start_task(target, batch["document"]["package_id"], batch["kind"],
                                                   v2=batch["v2"], task_ext_info=batch.get("task_ext_info"))
    except errors.DeviceNotFound:
        batch["errors"][target] = ("IOTDA.014000", f"The device does not exist. device_id={target}")
    except KeyError:
        batch["errors"][target] = ("IOTDA.000006", "The package no longer exists.")
    except Exception as exc:   # one bad target must not fail the others
        log.warning("OTA task for %s in batch %s not started: %s", target, batch["task_id"], exc)
        batch["errors"][target] = ("IOTDA.000001", f"Internal error: {type(exc).__name__}")


class BatchTasksHandler(ServiceHandler):
    """``POST`` (CreateBatchTask) and ``GET`` (ListBatchTasks) ``/v5/iot/{project_id}/batchtasks``."""

    @api
    async def post(self, project_id: str) -> None:
        body = self.json_body()
        task_name = _str(body, "task_name", required=True, max_len=128)
        task_type = _str(body, "task_type", required=True, max_len=64)
        from iotda_emulator.http import rest_batch   # device batch types live there (it imports this module)
        if task_type in rest_batch.DEVICE_TASK_TYPES:
            batch = await rest_batch.create_device_batch(self, body, task_name, task_type)
            with self.state.lock:
                self.state.batches[batch["task_id"]] = batch
            self.reply(_batch_view(batch, _sub_details(batch, None)), 201)
            return
        if task_type not in _TASK_TYPES:
            raise bad_request(f"task_type {task_type!r} is not emulated (firmwareUpgrade, softwareUpgrade, "
                              f"{', '.join(rest_batch.DEVICE_TASK_TYPES)}).")
        kind = _TASK_TYPES[task_type]
        targets = body.get("targets")
        if not isinstance(targets, list) or not targets or len(targets) > 30000 or not all(
                isinstance(t, str) and _ID_RE.match(t) for t in targets):
            raise bad_request("'targets' is a non-empty list of device ids (targets_filter and document_source "
                              "are not emulated).")
        targets = list(dict.fromkeys(targets))     # a device is upgraded once per task
        document = _obj(body, "document", required=True)
        package_id = document.get("package_id")
        if package_id is None and isinstance(document.get("package_ids"), list) and len(document["package_ids"]) == 1:
            package_id = document["package_ids"][0]
        if not isinstance(package_id, str) or not package_id:
            raise bad_request("'document' needs 'package_id' (or 'package_ids' with one id).")
        task_ext_info = body.get("task_ext_info")
        if task_ext_info is not None and len(json.dumps(task_ext_info)) > 512:
            raise bad_request("'task_ext_info' exceeds 512 characters.")
        task_mode = body.get("task_mode")
        if task_mode not in (None, "GATEWAY"):
            raise bad_request("'task_mode' is GATEWAY.")
        need_confirm = body.get("need_confirm")
        if need_confirm is not None and not isinstance(need_confirm, bool):
            raise bad_request("'need_confirm' must be a boolean.")
        ota = self.state.service("$ota")
        pkg = ota.package(package_id)
        if pkg is None:
            raise not_found("package", package_id)
        if pkg["kind"] != kind:
            raise bad_request(f"The package {package_id} is a {pkg['kind']} package; task_type {task_type} "
                              f"needs a {kind} package.")
        with self.state.lock:
            v2 = bool(self.state.package_meta.get(package_id, {}).get("obs_location"))
        batch = {"task_id": uuid.uuid4().hex[:24], "task_name": task_name, "task_type": task_type,
                 "task_mode": task_mode, "task_ext_info": task_ext_info, "targets": targets,
                 "document": {"package_id": package_id}, "created": time.time(), "subtasks": {}, "errors": {},
                 "need_confirm": bool(need_confirm), "kind": kind, "v2": v2, "stopped": set()}

        def start_all() -> None:
            for target in targets:
                start_upgrade_target(ota, batch, target)

        if not need_confirm:   # need_confirm: sub tasks wait (Waitting) for ConfirmBatchTask
            await self.call(start_all)
        with self.state.lock:
            self.state.batches[batch["task_id"]] = batch
        self.reply(_batch_view(batch, _sub_details(batch, ota)), 201)

    @api
    async def get(self, project_id: str) -> None:
        limit, offset, marker = _page_args(self)
        task_type = self.get_query_argument("task_type", None)
        status = self.get_query_argument("status", None)
        ota = self.state.service("$ota")
        with self.state.lock:
            batches = list(self.state.batches.values())
        views = [_batch_view(b, _sub_details(b, ota)) for b in batches
                 if not task_type or b["task_type"] == task_type
                 or _TASK_TYPES.get(b["task_type"]) == _TASK_TYPES.get(task_type)]
        if status:
            views = [v for v in views if v["status"] == status]
        page, next_marker = _paginate(views, lambda v: v["task_id"], limit, offset, marker)
        self.reply({"batchtasks": page, "page": {"count": len(views), "marker": next_marker}})


class BatchTaskHandler(ServiceHandler):
    """``GET`` (ShowBatchTask) and ``DELETE`` (DeleteBatchTask) ``/v5/iot/{project_id}/batchtasks/{task_id}``."""

    def _batch(self, task_id: str) -> dict:
        with self.state.lock:
            batch = self.state.batches.get(task_id)
        if batch is None:
            raise not_found("batch task", task_id)
        return batch

    @api
    async def get(self, project_id: str, task_id: str) -> None:
        limit, offset, marker = _page_args(self)
        batch = self._batch(task_id)
        details = _sub_details(batch, self.state.service("$ota"))
        view = _batch_view(batch, details)
        wanted_status = self.get_query_argument("task_detail_status", None)
        wanted_target = self.get_query_argument("target", None)
        shown = [d for d in details if (not wanted_status or d["status"] == wanted_status)
                 and (not wanted_target or d["target"] == wanted_target)]
        page, next_marker = _paginate(shown, lambda d: d["target"], limit, offset, marker)
        self.reply({"batchtask": view, "task_details": page, "page": {"count": len(shown), "marker": next_marker}})

    @api
    async def delete(self, project_id: str, task_id: str) -> None:
        batch = self._batch(task_id)
        view = _batch_view(batch, _sub_details(batch, self.state.service("$ota")))
        if view["status"] not in _FINAL_BATCH:
            raise bad_request(f"The task is {view['status']}; only finished tasks can be deleted.")
        with self.state.lock:
            self.state.batches.pop(task_id, None)
        self.reply(None, 204)


# ==== device-side rules ====================================================================================

_OPERATORS = (">", "<", ">=", "<=", "=", "between", "in")


def _hhmm(value: Any, what: str) -> str:
    if not isinstance(value, str) or not re.match(r"^([01]\d|2[0-3]):[0-5]\d$", value):
        raise bad_request(f"'{what}' must be HH:mm.")
    return value


def _days(value: Any, what: str) -> Optional[str]:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not re.match(r"^[1-7](,[1-7])*$", value):
        raise bad_request(f"'{what}' is a comma-separated list of 1 (Sunday) to 7.")
    return value


def _device_condition(cond: dict, index: int) -> List[dict]:
    """One IoTDA RuleCondition -> device ``conditions[]`` entries (a DEVICE_DATA condition: one per filter)."""
    ctype = cond.get("type")
    where = f"condition_group.conditions[{index}]"
    if ctype == "DEVICE_DATA":
        data = _obj(cond, "device_property_condition", required=True)
        device_id = _str(data, "device_id", max_len=128, pattern=_ID_RE) or ""
        filters = data.get("filters")
        if not isinstance(filters, list) or not filters:
            raise bad_request(f"{where}.device_property_condition.filters is a non-empty list.")
        out = []
        for j, flt in enumerate(filters):
            if not isinstance(flt, dict):
                raise bad_request(f"{where}.filters[{j}] must be an object.")
            path = _str(flt, "path", required=True, max_len=256)
            if path.count("/") != 1 or path.startswith("/") or path.endswith("/"):
                raise bad_request(f"{where}.filters[{j}].path is service_id/property.")
            operator = flt.get("operator")
            if operator not in _OPERATORS:
                raise bad_request(f"{where}.filters[{j}].operator is one of {', '.join(_OPERATORS)}.")
            value = flt.get("value")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = str(value)
            if value is not None and not isinstance(value, str):
                raise bad_request(f"{where}.filters[{j}].value must be a string.")
            entry: Dict[str, Any] = {"type": "DEVICE_DATA", "deviceInfo": {"deviceId": device_id, "path": path},
                                     "operator": operator, "value": value or ""}
            in_values = flt.get("in_values")
            if in_values is not None:
                if not isinstance(in_values, list) or len(in_values) > 20 or not all(
                        isinstance(v, str) for v in in_values):
                    raise bad_request(f"{where}.filters[{j}].in_values is a list of at most 20 strings.")
                entry["inValues"] = list(in_values)
            out.append(entry)
        return out
    if ctype == "DAILY_TIMER":
        timer = _obj(cond, "daily_timer_condition", required=True)
        entry = {"type": "DAILY_TIMER", "time": _hhmm(timer.get("time"), f"{where}.daily_timer_condition.time")}
        days = _days(timer.get("days_of_week"), f"{where}.daily_timer_condition.days_of_week")
        entry["daysOfWeek"] = days or "1,2,3,4,5,6,7"
        return [entry]
    if ctype == "SIMPLE_TIMER":
        timer = _obj(cond, "simple_timer_condition", required=True)
        try:
            start = codec.parse_event_time(timer.get("start_time"))
        except ValueError:
            raise bad_request(f"{where}.simple_timer_condition.start_time is yyyyMMdd'T'HHmmss'Z'.") from None
        interval, count = timer.get("repeat_interval"), timer.get("repeat_count")
        for name, val in (("repeat_interval", interval), ("repeat_count", count)):
            if val is not None and (isinstance(val, bool) or not isinstance(val, int) or val < 0):
                raise bad_request(f"{where}.simple_timer_condition.{name} is a non-negative integer.")
        return [{"type": "SIMPLE_TIMER", "startTime": codec.rule_start_time(start),
                 "repeatInterval": interval or 0, "repeatCount": 1 if count is None else count}]
    raise bad_request(f"{where}.type {ctype!r} is not supported by device-side rules "
                      f"(DEVICE_DATA, DAILY_TIMER, SIMPLE_TIMER).")


def _device_action(action: Any, index: int) -> dict:
    where = f"actions[{index}]"
    if not isinstance(action, dict):
        raise bad_request(f"{where} must be an object.")
    if action.get("type") != "DEVICE_CMD":
        raise bad_request(f"{where}.type must be DEVICE_CMD for device-side rules.")
    command = _obj(action, "device_command", required=True)
    cmd = _obj(command, "cmd", required=True)
    body = cmd.get("command_body")
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise bad_request(f"{where}.device_command.cmd.command_body must be an object.")
    # an action's status is enable/disable (the rule's own is active/inactive): doc/protocol.md §3.8
    return {"type": "DEVICE_CMD", "status": "enable",
            "deviceId": _str(command, "device_id", max_len=128, pattern=_ID_RE) or "",
            "command": {"serviceId": _str(cmd, "service_id", max_len=64) or "",
                        "commandName": _str(cmd, "command_name", required=True, max_len=128),
                        "commandBody": body}}


def _translate_rule(body: dict) -> Tuple[dict, dict, List[str]]:
    """Validate an IoTDA ``Rule`` body; returns (normalised IoTDA JSON, device ``rulesInfos`` entry, device ids)."""
    rule_type = body.get("rule_type")
    if rule_type != "DEVICE_SIDE":
        raise bad_request("Only rule_type DEVICE_SIDE is emulated (DEVICE_LINKAGE rules run in the cloud).")
    name = _str(body, "name", required=True, max_len=128)
    description = _str(body, "description", max_len=256)
    status = body.get("status") or "active"
    if status not in ("active", "inactive"):
        raise bad_request("'status' is active or inactive.")
    group = _obj(body, "condition_group", required=True)
    conditions = group.get("conditions")
    if not isinstance(conditions, list) or not conditions or len(conditions) > 10:
        raise bad_request("condition_group.conditions is a list of 1 to 10 conditions.")
    logic = group.get("logic") or "and"
    if logic not in ("and", "or"):
        raise bad_request("condition_group.logic is and or or.")
    device_conditions: List[dict] = []
    for i, cond in enumerate(conditions):
        if not isinstance(cond, dict):
            raise bad_request(f"condition_group.conditions[{i}] must be an object.")
        converted = _device_condition(cond, i)
        if logic == "or" and len(converted) > 1:
            # the device's rule format has no nesting: filters of one condition could only be or-ed
            raise bad_request(f"condition_group.conditions[{i}] has several filters; with logic 'or' give "
                              f"one filter per condition.")
        device_conditions.extend(converted)
    actions = body.get("actions")
    if not isinstance(actions, list) or not actions or len(actions) > 10:
        raise bad_request("'actions' is a list of 1 to 10 actions.")
    device_actions = [_device_action(a, i) for i, a in enumerate(actions)]
    device_rule: Dict[str, Any] = {"ruleName": name, "logic": logic, "status": status,
                                   "conditions": device_conditions, "actions": device_actions}
    time_range = _obj(group, "time_range")
    if time_range:
        device_rule["timeRange"] = {
            "startTime": _hhmm(time_range.get("start_time"), "condition_group.time_range.start_time"),
            "endTime": _hhmm(time_range.get("end_time"), "condition_group.time_range.end_time"),
            "daysOfWeek": _days(time_range.get("days_of_week"), "condition_group.time_range.days_of_week")
            or "1,2,3,4,5,6,7"}
    side = _obj(body, "device_side")
    device_ids: List[str] = []
    if side and side.get("device_ids") is not None:
        ids = side.get("device_ids")
        if not isinstance(ids, list) or not all(isinstance(d, str) and _ID_RE.match(d) for d in ids):
            raise bad_request("device_side.device_ids is a list of device ids.")
        device_ids = list(dict.fromkeys(ids))
    if not device_ids:
        device_ids = list(dict.fromkeys(c["deviceInfo"]["deviceId"] for c in device_conditions
                                        if c["type"] == "DEVICE_DATA" and c["deviceInfo"]["deviceId"]))
    if not device_ids:
        raise bad_request("device_side.device_ids is mandatory when no condition names a device.")
    # Refuse a rule whose device form is not one IoTDA would send (doc/protocol.md §3.8).
    try:
        rules.validate_rule(dict(device_rule, ruleId="check"))
    except rules.RuleError as exc:
        raise bad_request(f"The rule cannot run on a device: {exc}") from None
    iotda = {"name": name, "description": description, "rule_type": rule_type, "status": status,
             "app_id": _str(body, "app_id", max_len=36, pattern=_ID_RE),
             "condition_group": {"conditions": conditions, "logic": logic, "time_range": time_range or None},
             "actions": actions, "device_side": {"device_ids": device_ids}}
    return iotda, device_rule, device_ids


def _rule_view(row: dict) -> dict:
    body = row["body"]
    return {"rule_id": row["rule_id"], "name": body.get("name"), "description": body.get("description"),
            "condition_group": body.get("condition_group"), "actions": body.get("actions"),
            "rule_type": body.get("rule_type"), "status": body.get("status"),
            "app_id": body.get("app_id") or "emulator_app", "edge_node_ids": [],
            "last_update_time": _event_time(row.get("updated")), "device_side": body.get("device_side")}


class RulesHandler(ServiceHandler):
    """``POST`` (CreateRule) and ``GET`` (ListRules) ``/v5/iot/{project_id}/rules``."""

    @api
    async def post(self, project_id: str) -> None:
        iotda, device_rule, device_ids = _translate_rule(self.json_body())
        for device_id in device_ids:
            if not await self.call(self.emulator.get_device, device_id):
                raise device_not_found(device_id)
        rule_id = uuid.uuid4().hex[:24]
        svc = self.state.service("$device_rule")

        def create() -> dict:
            for device_id in device_ids:
                svc.create_rule(device_id, dict(device_rule, ruleId=rule_id))
            self.state.save_rule(rule_id, iotda, device_ids, time.time())
            return self.state.rule_row(rule_id)

        self.reply(_rule_view(await self.call(create)), 201)

    @api
    async def get(self, project_id: str) -> None:
        limit, offset, marker = _page_args(self)
        rule_type = self.get_query_argument("rule_type", None)
        app_id = self.get_query_argument("app_id", None)
        rows = await self.call(self.state.rule_rows)
        views = [_rule_view(r) for r in rows]
        views = [v for v in views if (not rule_type or v["rule_type"] == rule_type)
                 and (not app_id or v["app_id"] == app_id)]
        page, next_marker = _paginate(views, lambda v: v["rule_id"], limit, offset, marker)
        self.reply({"rules": page, "count": len(views), "marker": next_marker})


class RuleHandler(ServiceHandler):
    """``GET`` (ShowRule), ``PUT`` (UpdateRule) and ``DELETE`` (DeleteRule) ``/v5/iot/{project_id}/rules/{rule_id}``."""

    async def _row(self, rule_id: str) -> dict:
        row = await self.call(self.state.rule_row, rule_id)
        if row is None:
            raise ApiError(404, "IOTDA.014101", f"The rule does not exist. rule_id={rule_id}")
        return row

    @api
    async def get(self, project_id: str, rule_id: str) -> None:
        self.reply(_rule_view(await self._row(rule_id)))

    @api
    async def put(self, project_id: str, rule_id: str) -> None:
        row = await self._row(rule_id)
        iotda, device_rule, device_ids = _translate_rule(self.json_body())
        for device_id in device_ids:
            if not await self.call(self.emulator.get_device, device_id):
                raise device_not_found(device_id)
        svc = self.state.service("$device_rule")
        old_ids = row["device_ids"]

        def update() -> dict:
            for device_id in old_ids:
                if device_id not in device_ids:
                    _forget(svc, device_id, rule_id)
            for device_id in device_ids:
                rule = dict(device_rule, ruleId=rule_id)
                if svc.get_rule(device_id, rule_id) is None:
                    svc.create_rule(device_id, rule)
                else:
                    svc.update_rule(device_id, rule_id, rule)
            self.state.save_rule(rule_id, iotda, device_ids, row["created"])
            return self.state.rule_row(rule_id)

        self.reply(_rule_view(await self.call(update)))

    @api
    async def delete(self, project_id: str, rule_id: str) -> None:
        row = await self._row(rule_id)
        svc = self.state.service("$device_rule")

        def delete() -> None:
            for device_id in row["device_ids"]:
                _forget(svc, device_id, rule_id)
            self.state.delete_rule_row(rule_id)

        await self.call(delete)
        self.reply(None, 204)


def _forget(svc: Any, device_id: str, rule_id: str) -> None:
    try:
        svc.delete_rule(device_id, rule_id)
    except KeyError:
        pass   # already gone (the device was deleted, or the rule removed through the Python API)


class RuleStatusHandler(ServiceHandler):
    """``PUT /v5/iot/{project_id}/rules/{rule_id}/status`` (ChangeRuleStatus)."""

    @api
    async def put(self, project_id: str, rule_id: str) -> None:
        body = self.json_body()
        status = body.get("status")
        if status not in ("active", "inactive"):
            raise bad_request("'status' is active or inactive.")
        row = await self.call(self.state.rule_row, rule_id)
        if row is None:
            raise ApiError(404, "IOTDA.014101", f"The rule does not exist. rule_id={rule_id}")
        svc = self.state.service("$device_rule")

        def change() -> None:
            for device_id in row["device_ids"]:
                try:
                    svc.activate_rule(device_id, rule_id, active=(status == "active"))
                except KeyError:
                    log.info("rule %s no longer stored for %s", rule_id, device_id)
            body_ = dict(row["body"], status=status)
            self.state.save_rule(rule_id, body_, row["device_ids"], row["created"])

        await self.call(change)
        self.reply({"status": status})


# ==== device logs (emulator-only) =========================================================================

class DeviceLogsHandler(ServiceHandler):
    """``GET /emulator/devices/{device_id}/logs[?type=..][&limit=..]``: the device's ``$log`` reports."""

    @api
    async def get(self, device_id: str) -> None:
        await self.require_device(device_id)
        log_type = self.get_query_argument("type", None) or None
        raw_limit = self.get_query_argument("limit", None)
        limit = 1000
        if raw_limit:
            try:
                limit = int(raw_limit)
            except ValueError:
                raise bad_request("'limit' must be an integer.") from None
            if not 1 <= limit <= 1000:
                raise bad_request("'limit' must be between 1 and 1000.")
        entries = self.state.service("$log").logs(device_id, log_type)
        self.reply({"device_id": device_id, "count": len(entries),
                    "logs": [{"event_type": e.get("event_type"), "type": e.get("type"), "content": e.get("content"),
                              "timestamp": e.get("timestamp"), "received_time": _event_time(e.get("time"))}
                             for e in entries[-limit:]]})


class DeviceLogConfigHandler(ServiceHandler):
    """``PUT`` (send ``log_config``) and ``GET`` (what was sent) ``/emulator/devices/{device_id}/log-config``."""

    @api
    async def put(self, device_id: str) -> None:
        body = self.json_body()
        switch = body.get("switch", "on")
        if switch not in ("on", "off"):
            raise bad_request("'switch' is on or off.")
        end_time = body.get("end_time")
        if end_time is not None:
            try:
                codec.parse_event_time(end_time)
            except ValueError:
                raise bad_request("'end_time' is yyyyMMdd'T'HHmmss'Z'.") from None
        await self.require_device(device_id)
        if not await self.call(self.emulator.is_online, device_id):
            raise device_offline(device_id)     # log_config is an event: an offline device would never see it
        try:
            event_id = await self.call(self.state.service("$log").set_log_config, device_id, switch, end_time)
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        self.reply({"device_id": device_id, "event_id": event_id, "switch": switch, "end_time": end_time})

    @api
    async def get(self, device_id: str) -> None:
        await self.require_device(device_id)
        configs = self.state.service("$log").configs(device_id)
        self.reply({"device_id": device_id,
                    "configs": [{"switch": c.get("switch"), "end_time": c.get("end_time"),
                                 "event_id": c.get("event_id"), "sent_time": _event_time(c.get("time"))}
                                for c in configs]})


EMULATOR_DEVICE = r"/emulator/devices/(?P<device_id>[^/]+)"


def routes(server: Any) -> List[tuple]:
    """The service routes, each handler initialised with the owning server and one shared state."""
    kw = {"server": server, "state": shared_state(server)}
    return [
        (PREFIX + r"/ota-upgrades/packages/?", OtaPackagesHandler, kw),
        (PREFIX + r"/ota-upgrades/packages/(?P<package_id>[^/]+)/?", OtaPackageHandler, kw),
        (PREFIX + r"/batchtasks/?", BatchTasksHandler, kw),
        (PREFIX + r"/batchtasks/(?P<task_id>[^/]+)/?", BatchTaskHandler, kw),
        (PREFIX + r"/rules/?", RulesHandler, kw),
        (PREFIX + r"/rules/(?P<rule_id>[^/]+)/?", RuleHandler, kw),
        (PREFIX + r"/rules/(?P<rule_id>[^/]+)/status/?", RuleStatusHandler, kw),
        (r"/emulator/ota/packages/?", EmulatorPackageUploadHandler, kw),
        (EMULATOR_DEVICE + r"/logs/?", DeviceLogsHandler, kw),
        (EMULATOR_DEVICE + r"/log-config/?", DeviceLogConfigHandler, kw),
    ]

