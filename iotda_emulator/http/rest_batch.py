"""Batch tasks beyond creating upgrades, batch task files and OTA modules (IoTDA v5 API).

* ``POST .../batchtasks/{task_id}/stop|retry|confirm`` (StopBatchTask, RetryBatchTask, ConfirmBatchTask) for
  ``firmwareUpgrade``/``softwareUpgrade`` tasks: body ``{"targets": [...]}`` (at most 100) or ``{}`` for every
  sub task the action applies to; the answer lists ``{target, status: success|failure, error_code, error_msg}``.
  Stop: sub tasks Processing or Waitting become Stopped (their ``$ota`` task ignores later reports; an upgrade
  already sent to the device cannot be taken back). Retry: Fail and Stopped sub tasks start a new ``$ota`` task.
  Confirm: the Waitting sub tasks of a ``need_confirm`` task start.
* ``task_type`` ``freezeDevices``, ``unfreezeDevices``, ``deleteDevices``, ``createDevices`` for CreateBatchTask
  (:func:`create_device_batch`): targets from ``targets`` (device ids) or ``document_source`` (a task file);
  each target is done when the task is created and its detail is Success or Fail with IoTDA's error code.
* ``POST/GET .../batchtask-files``, ``DELETE .../batchtask-files/{file_id}`` (UploadBatchTaskFile as
  ``multipart/form-data`` field ``file``, ListBatchTaskFiles, DeleteBatchTaskFile). A file is a table whose
  first row names the columns: CSV (UTF-8) or an ``.xlsx`` workbook (first sheet); see :func:`read_table`.
* ``POST/GET .../ota-upgrades/modules``, ``GET/PUT/DELETE .../ota-upgrades/modules/{module_id}`` (OTA modules:
  at most 10 per product, ``module_name`` unique in its product and not changeable).

State is kept in the shared :class:`iotda_emulator.http.rest_services.ServicesState` (in memory).
"""
from __future__ import annotations

import csv
import io
import json
import logging
import re
import time
import uuid
import zipfile
from typing import Any, Dict, List, Optional, Tuple
from xml.etree import ElementTree

from iotda_emulator import errors
from iotda_emulator.objects import ObjectStoreError
from iotda_emulator.http.rest import (PREFIX, ApiError, _event_time, _tell_gateway, api,
                                      bad_request, product_not_found)
from iotda_emulator.http.rest_device_state import FreezeRefused, set_device_frozen
from iotda_emulator.http.rest_services import (_FINAL_BATCH, ServiceHandler, _batch_view, _page_args, _paginate,
                                               _str, _sub_details, not_found, shared_state, start_upgrade_target)

log = logging.getLogger(__name__)

DEVICE_TASK_TYPES = ("freezeDevices", "unfreezeDevices", "deleteDevices", "createDevices")
#: Task types StopBatchTask / RetryBatchTask / ConfirmBatchTask apply to (IoTDA: firmware and software upgrades).
UPGRADE_TYPES = ("firmwareUpgrade", "softwareUpgrade", "firmware_upgrade", "software_upgrade")
MAX_ACTION_TARGETS = 100
#: IoTDA: "the file has at most 30000 rows".
MAX_FILE_ROWS = 30000
#: Task files kept at once (IoTDA's limit is not public).
MAX_FILES = 100
_DEVICE_ID_RE = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")
_ID36_RE = re.compile(r"^[A-Za-z0-9_\-]{1,36}$")
_MODULE_NAME_RE = re.compile(r"^[A-Za-z0-9_\-.]{1,64}$")
_ALIAS_RE = re.compile(r"^[\w\-.\u4e00-\u9fff]{1,64}$")
_FINGERPRINT_RE = re.compile(r"^[0-9a-fA-F]{40}([0-9a-fA-F]{24})?$")
MAX_MODULES_PER_PRODUCT = 10


# ==== task files ===========================================================================================

def read_table(name: str, data: bytes) -> List[Dict[str, str]]:
    """The rows of a task file as ``{column: value}``; the first row names the columns (lower-cased, trimmed).

    ``.xlsx``: the first worksheet (shared and inline strings, numbers as written); anything else is read as
    UTF-8 CSV. Raises ``ValueError`` with a reason for an unreadable file or more than 30000 rows.
    """
    rows = _xlsx_rows(data) if name.lower().endswith(".xlsx") else _csv_rows(data)
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise ValueError("the file has no header row.")
    header = [h.strip().lower() for h in rows[0]]
    if len(rows) - 1 > MAX_FILE_ROWS:
        raise ValueError(f"the file has more than {MAX_FILE_ROWS} rows.")
    return [{h: (row[i].strip() if i < len(row) else "") for i, h in enumerate(header) if h} for row in rows[1:]]


def _csv_rows(data: bytes) -> List[List[str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("a CSV task file must be UTF-8.") from None
    try:
        return list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise ValueError(f"the CSV file is malformed: {exc}") from None


_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


def _xlsx_rows(data: bytes) -> List[List[str]]:
    """Cells of the first sheet of an Office Open XML workbook, read with the standard library only."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as book:
            names = book.namelist()
            shared: List[str] = []
            if "xl/sharedStrings.xml" in names:
                for item in ElementTree.fromstring(book.read("xl/sharedStrings.xml")).iter(_NS + "si"):
                    shared.append("".join(t.text or "" for t in item.iter(_NS + "t")))
            sheets = sorted(n for n in names if re.fullmatch(r"xl/worksheets/sheet\d+\.xml", n))
            if not sheets:
                raise ValueError("the workbook has no worksheet.")
            sheet = ElementTree.fromstring(book.read("xl/worksheets/sheet1.xml" if "xl/worksheets/sheet1.xml"
                                                     in names else sheets[0]))
    except (zipfile.BadZipFile, ElementTree.ParseError, KeyError) as exc:
        raise ValueError(f"the .xlsx file cannot be read: {exc}") from None
    out: List[List[str]] = []
    for row in sheet.iter(_NS + "row"):
        cells: Dict[int, str] = {}
        for cell in row.iter(_NS + "c"):
            col = _column_index(cell.get("r") or "") if cell.get("r") else len(cells)
            kind = cell.get("t")
            if kind == "inlineStr":
                value = "".join(t.text or "" for t in cell.iter(_NS + "t"))
            else:
                v = cell.find(_NS + "v")
                value = v.text or "" if v is not None else ""
                if kind == "s":
                    try:
                        value = shared[int(value)]
                    except (ValueError, IndexError):
                        raise ValueError("the .xlsx file has a broken shared string.") from None
            cells[col] = value
        out.append([cells.get(i, "") for i in range(max(cells) + 1)] if cells else [])
    return out


def _column_index(ref: str) -> int:
    letters = re.match(r"[A-Z]+", ref.upper())
    index = 0
    for ch in letters.group(0) if letters else "A":
        index = index * 26 + ord(ch) - 64
    return index - 1


def _file_view(entry: dict) -> dict:
    return {"file_id": entry["file_id"], "file_name": entry["file_name"], "upload_time": _event_time(entry["time"])}


class BatchTaskFilesHandler(ServiceHandler):
    """``POST`` (UploadBatchTaskFile, multipart field ``file``) and ``GET`` (ListBatchTaskFiles)
    ``/v5/iot/{project_id}/batchtask-files``."""

    @api
    async def post(self, project_id: str) -> None:
        uploads = self.request.files.get("file") or []
        if len(uploads) != 1:
            raise bad_request("Send one file as the multipart/form-data field 'file'.")
        upload = uploads[0]
        name = (upload.get("filename") or "").replace("\\", "/").rsplit("/", 1)[-1]
        if not name or len(name) > 255:
            raise bad_request("The file needs a name of at most 255 characters.")
        if not name.lower().endswith((".csv", ".xlsx")):
            raise bad_request("A task file is .xlsx or .csv (the emulator does not read .xls).")
        data = upload.get("body") or b""
        try:
            read_table(name, data)     # refuse an unreadable file now, not when a task uses it
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        entry = {"file_id": uuid.uuid4().hex[:24], "file_name": name, "data": data, "time": time.time()}
        with self.state.lock:
            if len(self.state.task_files) >= MAX_FILES:
                raise bad_request(f"At most {MAX_FILES} task files are kept; delete some first.")
            self.state.task_files[entry["file_id"]] = entry
        self.reply(_file_view(entry), 201)

    @api
    async def get(self, project_id: str) -> None:
        with self.state.lock:
            files = [_file_view(e) for e in self.state.task_files.values()]
        self.reply({"files": files})


class BatchTaskFileHandler(ServiceHandler):
    """``DELETE /v5/iot/{project_id}/batchtask-files/{file_id}`` (DeleteBatchTaskFile)."""

    @api
    async def delete(self, project_id: str, file_id: str) -> None:
        with self.state.lock:
            entry = self.state.task_files.pop(file_id, None)
        if entry is None:
            raise not_found("batch task file", file_id)
        self.reply(None, 204)


# ==== device batch tasks ===================================================================================

async def create_device_batch(handler: ServiceHandler, body: dict, task_name: str, task_type: str) -> dict:
    """Run a freeze/unfreeze/delete/create-devices batch for CreateBatchTask; returns the batch record."""
    targets = body.get("targets")
    rows: List[Dict[str, str]]
    if targets is not None:
        if task_type == "createDevices":
            raise bad_request("createDevices takes its devices from 'document_source' (a task file).")
        if not isinstance(targets, list) or not targets or len(targets) > 30000 or not all(
                isinstance(t, str) and _DEVICE_ID_RE.match(t) for t in targets):
            raise bad_request("'targets' is a non-empty list of at most 30000 device ids.")
        rows = [{"device_id": t} for t in dict.fromkeys(targets)]
    elif body.get("targets_filter") is not None:
        raise bad_request("'targets_filter' is not emulated; give 'targets' or 'document_source'.")
    else:
        file_id = _str(body, "document_source", max_len=64)
        if not file_id:
            raise bad_request("Give 'targets' (device ids) or 'document_source' (a batch task file id).")
        with handler.state.lock:
            entry = handler.state.task_files.get(file_id)
        if entry is None:
            raise not_found("batch task file", file_id)
        try:
            rows = read_table(entry["file_name"], entry["data"])
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        if not rows:
            raise bad_request("The task file has no rows below its header.")
        column = "node_id" if task_type == "createDevices" else "device_id"
        if column not in rows[0]:
            raise bad_request(f"The task file needs a '{column}' column (first row = column names).")
    batch = {"task_id": uuid.uuid4().hex[:24], "task_name": task_name, "task_type": task_type, "task_mode": None,
             "task_ext_info": None, "targets": [], "document": None, "created": time.time(),
             "subtasks": {}, "errors": {}, "results": []}
    emulator = handler.emulator

    def run() -> None:
        for row in rows:
            target, status, output, error = _device_op(emulator, task_type, row)
            batch["targets"].append(target)
            batch["results"].append({"target": target, "status": status, "output": output, "error": error})

    await handler.call(run)
    return batch


def _fail(code: str, message: str) -> Tuple[str, Optional[str], Optional[dict]]:
    return "Fail", None, {"error_code": code, "error_msg": message}


def _device_op(emulator: Any, task_type: str, row: Dict[str, str]) -> Tuple[str, str, Optional[str], Optional[dict]]:
    """Do one target of a device batch: (target, Success|Fail, output JSON, error)."""
    if task_type == "createDevices":
        return _create_one(emulator, row)
    device_id = row.get("device_id") or ""
    if not _DEVICE_ID_RE.match(device_id):
        return (device_id, *_fail("IOTDA.000006", "Invalid input data. The device id is malformed."))
    try:
        if task_type == "deleteDevices":
            record = emulator.get_device(device_id)
            if record is None or not emulator.delete_device(device_id):
                raise errors.DeviceNotFound(device_id)
            if record.get("gateway_id"):
                _tell_gateway(emulator, record["gateway_id"])
        else:
            set_device_frozen(emulator, device_id, task_type == "freezeDevices")
    except errors.DeviceNotFound:
        return (device_id, *_fail("IOTDA.014000", f"The device does not exist. device_id={device_id}"))
    except FreezeRefused as exc:
        return (device_id, *_fail(exc.code, str(exc)))
    except Exception as exc:   # one bad target must not stop the others
        log.warning("%s of %s failed: %s", task_type, device_id, exc)
        return (device_id, *_fail("IOTDA.000001", f"Internal error: {type(exc).__name__}"))
    return device_id, "Success", json.dumps({"device_id": device_id}), None


def _create_one(emulator: Any, row: Dict[str, str]) -> Tuple[str, str, Optional[str], Optional[dict]]:
    """One row of a createDevices file: columns named as AddDevice's fields."""
    node_id, product_id = row.get("node_id") or "", row.get("product_id") or ""
    device_id = row.get("device_id") or (f"{product_id}_{node_id}" if product_id and node_id else node_id)

    def bad(message: str) -> Tuple[str, str, Optional[str], Optional[dict]]:
        return (device_id, *_fail("IOTDA.000006", f"Invalid input data. {message}"))

    if not node_id or len(node_id) > 64 or not product_id:
        return bad("'node_id' (at most 64 characters) and 'product_id' are mandatory.")
    if not _DEVICE_ID_RE.match(device_id):
        return bad("'device_id' has 1 to 128 letters, digits, '_' and '-'.")
    secret = row.get("secret") or None
    fingerprint = row.get("fingerprint") or None
    auth_type = (row.get("auth_type") or ("CERTIFICATES" if fingerprint and not secret else "SECRET")).upper()
    if auth_type not in ("SECRET", "CERTIFICATES"):
        return bad("'auth_type' is SECRET or CERTIFICATES.")
    if secret is not None and not 8 <= len(secret) <= 64:
        return bad("'secret' has 8 to 64 characters.")
    if fingerprint is not None and not _FINGERPRINT_RE.match(fingerprint):
        return bad("'fingerprint' is 40 or 64 hex digits.")
    gateway_id = row.get("gateway_id") or None
    if emulator.get_product(product_id) is None:
        return (device_id, *_fail("IOTDA.013000", f"The product does not exist. product_id={product_id}"))
    if emulator.get_device(device_id) is not None:
        return (device_id, *_fail("IOTDA.014001", f"The device already exists. device_id={device_id}"))
    if gateway_id and gateway_id != device_id and emulator.get_device(gateway_id) is None:
        return bad(f"The gateway {gateway_id} does not exist.")
    try:
        record = emulator.create_device(device_id, secret, product_id=product_id, node_id=node_id,
                                        name=row.get("device_name") or None,
                                        gateway_id=gateway_id if gateway_id != device_id else None,
                                        fingerprint=fingerprint, auth_type=auth_type,
                                        description=row.get("description") or None)
    except (errors.EmulatorError, ValueError) as exc:
        return bad(str(exc))
    if record.get("gateway_id"):
        _tell_gateway(emulator, record["gateway_id"])
    # as AddDevice answers: the device id and its (possibly generated) secret
    return device_id, "Success", json.dumps({"device_id": device_id, "node_id": node_id,
                                             "secret": record.get("secret")}), None


# ==== stop / retry / confirm ===============================================================================

class _BatchActionHandler(ServiceHandler):
    """Shared by StopBatchTask, RetryBatchTask and ConfirmBatchTask."""

    #: batch statuses that refuse the action (IoTDA's API reference for each)
    refused_when: Tuple[str, ...] = ()
    #: sub task statuses the action applies to
    applies_to: Tuple[str, ...] = ()
    verb = ""

    def act(self, ota: Any, batch: dict, target: str) -> None:
        raise NotImplementedError

    @api
    async def post(self, project_id: str, task_id: str) -> None:
        body = self.json_body() if (self.request.body or b"").strip() else {}
        wanted = body.get("targets")
        if wanted is not None and (not isinstance(wanted, list) or len(wanted) > MAX_ACTION_TARGETS or not all(
                isinstance(t, str) and t for t in wanted)):
            raise bad_request(f"'targets' is a list of at most {MAX_ACTION_TARGETS} device ids.")
        with self.state.lock:
            batch = self.state.batches.get(task_id)
        if batch is None:
            raise not_found("batch task", task_id)
        if batch["task_type"] not in UPGRADE_TYPES:
            raise bad_request(f"{self.verb} applies to firmwareUpgrade and softwareUpgrade tasks only.")
        if self.verb == "confirm" and not batch.get("need_confirm"):
            raise bad_request("The task was created without need_confirm: its sub tasks started at once.")
        ota = self.state.service("$ota")

        def apply() -> List[dict]:
            with self.state.lock:
                details = {d["target"]: d for d in _sub_details(batch, ota)}
                status = _batch_view(batch, list(details.values()))["status"]
                if status in self.refused_when:
                    raise bad_request(f"The task is {status}: {self.verb} is not allowed.")
                results = []
                for target in (list(dict.fromkeys(wanted)) if wanted else
                               [t for t, d in details.items() if d["status"] in self.applies_to]):
                    detail = details.get(target)
                    if detail is None:
                        results.append(_result(target, "IOTDA.000006", "Not a target of this task."))
                    elif detail["status"] not in self.applies_to:
                        results.append(_result(target, "IOTDA.000006",
                                               f"The sub task is {detail['status']}; {self.verb} applies to "
                                               f"{' and '.join(self.applies_to)} sub tasks."))
                    else:
                        self.act(ota, batch, target)
                        results.append({"target": target, "status": "success", "error_code": None,
                                        "error_msg": None})
                return results

        self.reply({"targets": await self.call(apply)})


def _result(target: str, code: str, message: str) -> dict:
    return {"target": target, "status": "failure", "error_code": code, "error_msg": message}


class StopBatchTaskHandler(_BatchActionHandler):
    """``POST .../batchtasks/{task_id}/stop`` (StopBatchTask)."""

    refused_when = _FINAL_BATCH
    applies_to = ("Processing", "Waitting")
    verb = "stop"

    def act(self, ota: Any, batch: dict, target: str) -> None:
        task_id = batch["subtasks"].get(target)
        if task_id is not None:
            ota.stop_task(task_id)
        batch.setdefault("stopped", set()).add(target)


class RetryBatchTaskHandler(_BatchActionHandler):
    """``POST .../batchtasks/{task_id}/retry`` (RetryBatchTask)."""

    refused_when = ("Success", "Stopped", "Waitting")
    applies_to = ("Fail", "Stopped")
    verb = "retry"

    def act(self, ota: Any, batch: dict, target: str) -> None:
        start_upgrade_target(ota, batch, target)


class ConfirmBatchTaskHandler(_BatchActionHandler):
    """``POST .../batchtasks/{task_id}/confirm`` (ConfirmBatchTask)."""

    refused_when = _FINAL_BATCH
    applies_to = ("Waitting",)
    verb = "confirm"

    def act(self, ota: Any, batch: dict, target: str) -> None:
        start_upgrade_target(ota, batch, target)


# ==== OTA modules ==========================================================================================

def _module_view(module: dict) -> dict:
    return {k: module.get(k) for k in ("module_id", "app_id", "product_id", "product_name", "module_name",
                                       "alias_name", "description")} | {"create_time": _event_time(module["created"])}


def _check_alias(body: dict) -> Optional[str]:
    alias = body.get("alias_name")
    if alias is not None and (not isinstance(alias, str) or not _ALIAS_RE.match(alias)):
        raise bad_request("'alias_name' is at most 64 letters, digits, Chinese characters, '_', '-' and '.'.")
    return alias


def _check_description(body: dict) -> Optional[str]:
    return _str(body, "description", max_len=1024)


class OtaModulesHandler(ServiceHandler):
    """``POST`` (CreateOtaModule) and ``GET`` (ListOtaModules) ``/v5/iot/{project_id}/ota-upgrades/modules``."""

    @api
    async def post(self, project_id: str) -> None:
        body = self.json_body()
        product_id = _str(body, "product_id", required=True, max_len=36, pattern=_ID36_RE)
        module_name = _str(body, "module_name", required=True, max_len=64, pattern=_MODULE_NAME_RE)
        app_id = _str(body, "app_id", max_len=36, pattern=_ID36_RE)
        alias, description = _check_alias(body), _check_description(body)
        product = await self.call(self.emulator.get_product, product_id)
        if not product:
            raise product_not_found(product_id)
        module = {"module_id": uuid.uuid4().hex[:24], "app_id": app_id or "emulator_app", "product_id": product_id,
                  "product_name": product.get("name") or product_id, "module_name": module_name,
                  "alias_name": alias, "description": description, "created": time.time()}
        with self.state.lock:
            same = [m for m in self.state.modules.values() if m["product_id"] == product_id]
            if any(m["module_name"] == module_name for m in same):
                raise ApiError(409, "IOTDA.000006", f"Invalid input data. The product already has a module named "
                                                    f"{module_name}.")
            if len(same) >= MAX_MODULES_PER_PRODUCT:
                raise bad_request(f"A product has at most {MAX_MODULES_PER_PRODUCT} OTA modules.")
            self.state.modules[module["module_id"]] = module
        self.reply(_module_view(module), 201)

    @api
    async def get(self, project_id: str) -> None:
        limit, offset, marker = _page_args(self)
        product_id = self.get_query_argument("product_id", None)
        app_id = self.get_query_argument("app_id", None)
        with self.state.lock:
            modules = [m for m in self.state.modules.values()
                       if (not product_id or m["product_id"] == product_id) and (not app_id or m["app_id"] == app_id)]
        page, next_marker = _paginate(modules, lambda m: m["module_id"], limit, offset, marker)
        self.reply({"modules": [_module_view(m) for m in page], "page": {"count": len(modules), "marker": next_marker}})


class OtaModuleHandler(ServiceHandler):
    """``GET`` (ShowOtaModule), ``PUT`` (UpdateOtaModule: ``alias_name``, ``description``) and ``DELETE``
    (DeleteOtaModule) ``/v5/iot/{project_id}/ota-upgrades/modules/{module_id}``."""

    def _module(self, module_id: str) -> dict:
        with self.state.lock:
            module = self.state.modules.get(module_id)
        if module is None:
            raise not_found("OTA module", module_id)
        return module

    @api
    async def get(self, project_id: str, module_id: str) -> None:
        self.reply(_module_view(self._module(module_id)))

    @api
    async def put(self, project_id: str, module_id: str) -> None:
        body = self.json_body()
        changes: Dict[str, Any] = {}
        if "alias_name" in body:
            changes["alias_name"] = _check_alias(body)
        if "description" in body:
            changes["description"] = _check_description(body)
        self._module(module_id)
        with self.state.lock:
            module = self.state.modules.get(module_id)
            if module is None:
                raise not_found("OTA module", module_id)
            module.update(changes)
            view = _module_view(module)
        self.reply(view)

    @api
    async def delete(self, project_id: str, module_id: str) -> None:
        with self.state.lock:
            module = self.state.modules.pop(module_id, None)
        if module is None:
            raise not_found("OTA module", module_id)
        self.reply(None, 204)


# ==== emulator-only: an upload URL for the object store (used by ``iotda-emulator ota-package``) ============

class ObjectUploadUrlHandler(ServiceHandler):
    """``POST /emulator/objects/upload-url`` ``{"bucket_name", "object_key", "size"?, "sha256"?, "expires"?,
    "scheme"?}``: a presigned PUT URL of the emulator's object store (OBS's role), so a client can upload a
    file of any size the store takes (64 MB) and then reference it, e.g. in CreateOtaPackage's
    ``file_location.obs_location``. Emulator-only: on IoTDA the file goes to OBS with OBS's own API."""

    @api
    async def post(self) -> None:
        body = self.json_body()
        bucket = _str(body, "bucket_name", required=True, max_len=63)
        key = _str(body, "object_key", required=True, max_len=1024)
        size, sha256 = body.get("size"), _str(body, "sha256", max_len=64)
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise bad_request("'size' is a number of bytes.")
        if sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
            raise bad_request("'sha256' is 64 hex digits.")
        expires = body.get("expires", 3600)
        if isinstance(expires, bool) or not isinstance(expires, int) or not 1 <= expires <= 86400:
            raise bad_request("'expires' is 1 to 86400 seconds.")
        scheme = body.get("scheme")
        if scheme not in (None, "http", "https"):
            raise bad_request("'scheme' is http or https.")
        store = self.state.service("$ota").store
        try:
            url = store.presign("PUT", bucket, key, expires, size=size, sha256=sha256, scheme=scheme)
        except ObjectStoreError as exc:   # the store's own bucket and key rules
            raise bad_request(f"{exc.code}: {exc}") from None
        except RuntimeError as exc:       # no HTTP(S) server for that scheme
            raise bad_request(str(exc)) from None
        self.reply({"url": url, "bucket_name": bucket, "object_key": key, "expires": expires})


def routes(server: Any) -> List[tuple]:
    """Batch task actions and files, OTA modules (sharing the services' state)."""
    kw = {"server": server, "state": shared_state(server)}
    task = PREFIX + r"/batchtasks/(?P<task_id>[^/]+)"
    return [
        (task + r"/stop/?", StopBatchTaskHandler, kw),
        (task + r"/retry/?", RetryBatchTaskHandler, kw),
        (task + r"/confirm/?", ConfirmBatchTaskHandler, kw),
        (PREFIX + r"/batchtask-files/?", BatchTaskFilesHandler, kw),
        (PREFIX + r"/batchtask-files/(?P<file_id>[^/]+)/?", BatchTaskFileHandler, kw),
        (PREFIX + r"/ota-upgrades/modules/?", OtaModulesHandler, kw),
        (PREFIX + r"/ota-upgrades/modules/(?P<module_id>[^/]+)/?", OtaModuleHandler, kw),
        (r"/emulator/objects/upload-url/?", ObjectUploadUrlHandler, kw),
    ]


__all__ = ["DEVICE_TASK_TYPES", "create_device_batch", "read_table", "routes"]
