"""The IoTDA v5 application REST API (the subset an application needs to drive devices).

Devices, commands, properties, messages and shadow live here; OTA packages, batch upgrade tasks,
device-side rules and the emulator-only log endpoints are in :mod:`iotda_emulator.http.rest_services`.

Paths, request and response JSON follow Huawei's ``/v5/iot/{project_id}/...`` API so the official
application SDK (``huaweicloudsdkiotda``) works against the emulator unchanged. Any ``project_id`` is
accepted. Errors use IoTDA's ``{"error_code", "error_msg"}`` body. As on IoTDA, a synchronous command
or property request the device does not answer in time is a ``200`` whose body carries
``error_code = IOTDA.014111`` (IoTDA's error-code table lists it with status 200).

Calls into the emulator may block (a sync command waits for the device), so every handler runs them
on the HTTP server's thread pool, never on the IOLoop thread.
"""
from __future__ import annotations

import asyncio
import base64
import datetime as _dt
import binascii
import functools
import json
import logging
import re
import uuid
from typing import Any, Callable, Dict, List, Optional, Tuple

import tornado.web
from tornado.ioloop import IOLoop

from iotda_emulator.protocol import codec, topics
from iotda_emulator import errors
from iotda_emulator.core import check_device_secret
from iotda_emulator.http import auth, validate

log = logging.getLogger(__name__)

PREFIX = r"/v5/iot/(?P<project_id>[^/]+)"
DEVICE = PREFIX + r"/devices/(?P<device_id>[^/]+)"

#: Largest request body accepted (IoTDA's HTTP limit; commands and messages are bounded at 256 KB).
MAX_BODY = 1024 * 1024
#: Largest command / message payload (doc/protocol.md §1.5).
MAX_DOWNLINK = 256 * 1024

_NAME_RE = re.compile(r"[A-Za-z0-9_\-]{1,128}")


class ApiError(Exception):
    """An error answered to the application as ``{"error_code", "error_msg"}`` with an HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


# IoTDA error codes (names and statuses from IoTDA's error-code page where known).
def bad_request(message: str) -> ApiError:
    return ApiError(400, "IOTDA.000006", f"Invalid input data. {message}")


def bad_format(message: str) -> ApiError:
    return ApiError(400, "IOTDA.000008", f"Invalid input. The request format is invalid. {message}")


def device_not_found(device_id: str) -> ApiError:
    return ApiError(404, "IOTDA.014000", f"The device does not exist. device_id={device_id}")


def device_offline(device_id: str) -> ApiError:
    return ApiError(409, "IOTDA.014016", f"Operation not allowed. The device is not online. device_id={device_id}")


def device_exists(device_id: str) -> ApiError:
    return ApiError(409, "IOTDA.014001", f"The device already exists. device_id={device_id}")


# IOTDA.013xxx are product (model) errors; the exact codes for "not found"/"exists" are not in our spec (doc/emulator.md).
def product_not_found(product_id: str) -> ApiError:
    return ApiError(404, "IOTDA.013000", f"The product does not exist. product_id={product_id}")


def product_exists(product_id: str) -> ApiError:
    return ApiError(409, "IOTDA.013001", f"The product already exists. product_id={product_id}")


#: APIG's answer for a (method, path) no API serves.
API_NOT_FOUND = ("APIGW.0101", "The API does not exist or has not been published in the environment.")

TIMEOUT_CODE = "IOTDA.014111"
TIMEOUT_MSG = ("Command request timed out. Check whether the device returns a response within the "
               "specified time after receiving the request.")


def _emulator_error(exc: BaseException, device_id: str) -> ApiError:
    """Translate the emulator's own exceptions (iotda_emulator.errors) into API errors."""
    if isinstance(exc, errors.DeviceNotFound):
        return device_not_found(device_id)
    if isinstance(exc, errors.DeviceOffline):
        return device_offline(device_id)
    if isinstance(exc, (ValueError, TypeError)):
        return bad_request(str(exc))
    raise exc


def _event_time(seconds: Any) -> Optional[str]:
    try:
        return codec.event_time(float(seconds))
    except (TypeError, ValueError, OverflowError, OSError):
        return None


class BaseApiHandler(tornado.web.RequestHandler):
    """Common plumbing: signature check, JSON in/out, IoTDA error bodies, the worker pool."""

    def initialize(self, server: Any) -> None:  # noqa: D401 - tornado hook
        self.server = server
        self.emulator = server.emulator
        self.request_id = uuid.uuid4().hex

    # ---- tornado hooks ----------------------------------------------------------------------
    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")

    def prepare(self) -> None:
        self.set_header("X-Request-Id", self.request_id)
        keys = getattr(self.emulator, "app_keys", None) or {}
        try:
            auth.verify_request(self.request.method, self.request.path, self.request.query,
                                self.request.headers, self.request.body or b"", keys)
        except auth.AuthError as exc:
            log.info("refused %s %s: %s", self.request.method, self.request.path, exc)
            self._send_error(401, "APIGW.0301", f"Incorrect IAM authentication information: {exc}")
            return
        if len(self.request.body or b"") > MAX_BODY:
            self._send_error(413, "IOTDA.000006", "Invalid input data. The request body exceeds 1 MB.")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # Unexpected exceptions and tornado's own errors (405, 400...) in IoTDA's shape.
        exc_info = kwargs.get("exc_info")
        if exc_info and isinstance(exc_info[1], ApiError):
            err = exc_info[1]
            self._send_error(err.status, err.code, err.message)
            return
        if status_code == 405:
            # APIG routes on (method, path): a method nobody serves is the same "no such API" as a path
            self._send_error(404, *API_NOT_FOUND)
            return
        code = "IOTDA.000001" if status_code >= 500 else "IOTDA.000006"
        self._send_error(status_code, code, self._reason or "error")

    def _send_error(self, status: int, code: str, message: str) -> None:
        if self._finished:
            return
        self.clear()
        self.set_header("X-Request-Id", self.request_id)
        self.set_status(status)
        self.finish(json.dumps({"error_code": code, "error_msg": message}))

    # ---- helpers ----------------------------------------------------------------------------
    def reply(self, obj: Any, status: int = 200) -> None:
        """Finish with a JSON body (``None`` means an empty body, e.g. for 204)."""
        self.set_status(status)
        if obj is None:
            self.clear_header("Content-Type")
            self.finish()
        else:
            self.finish(json.dumps(obj, ensure_ascii=False))

    def json_body(self) -> dict:
        """The request body as a JSON object; raises :class:`ApiError` (400) otherwise."""
        body = self.request.body or b""
        if not body.strip():
            raise bad_format("The request body is empty.")
        media = self.request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if media != "application/json" and not media.endswith("+json"):
            raise ApiError(415, "IOTDA.000006", "Invalid input data. Send the body as application/json.")
        try:
            obj = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise bad_format(f"The body is not valid JSON: {exc}") from None
        except RecursionError:
            raise bad_format("The body is nested too deeply.") from None
        if not isinstance(obj, dict):
            raise bad_format("The body must be a JSON object.")
        return obj

    async def call(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        """Run a (possibly blocking) emulator call on the server's worker pool."""
        return await IOLoop.current().run_in_executor(self.server.executor, functools.partial(fn, *args, **kwargs))

    async def platform_request(self, id_key: str, kind: str, device_id: str,
                               optional: Optional[Dict[str, Any]] = None, **fields: Any) -> None:
        """Send a platform request (command, property set or get) under a fresh IoTDA request id and reply
        ``{id_key: id, "response": ...}``, or the IoTDA timeout body when the device did not answer in time.

        The same id is in the device's topic, so the application can correlate both sides. Only sending runs
        on the worker pool; the wait for the device is awaited, so requests waiting on silent devices hold no
        thread and never stall the rest of the API.
        """
        request_id = str(uuid.uuid4())
        core = self.emulator.core
        try:
            answer = await self.call(core.begin_request, kind, device_id, request_id, optional, **fields)
        except (errors.DeviceNotFound, errors.DeviceOffline, ValueError, TypeError) as exc:
            raise _emulator_error(exc, device_id) from None
        try:
            response = await asyncio.wait_for(asyncio.wrap_future(answer), core.command_timeout)
        except asyncio.TimeoutError:
            response = None
        finally:
            core.end_request(request_id)   # before answering: the id is free once the application has the reply
        if response is None:
            self.reply({id_key: request_id, "error_code": TIMEOUT_CODE, "error_msg": TIMEOUT_MSG})
        else:
            self.reply({id_key: request_id, "response": core.answer_of(kind, response)})

    def command_body(self, body: dict) -> Tuple[Optional[str], Optional[str], dict]:
        """``(service_id, command_name, paras)`` of a command request ``body`` (sync or async); 400 when invalid."""
        service_id = _opt_str(body, "service_id", max_len=64)
        command_name = _opt_str(body, "command_name", max_len=128)
        paras = body.get("paras")
        if not isinstance(paras, dict):
            raise bad_request("'paras' is mandatory and must be an object.")
        if len(self.request.body) > MAX_DOWNLINK:
            raise bad_request("The command exceeds 256 KB.")
        return service_id, command_name, paras

    def marker_page(self, items: List[dict], default_limit: int = 10) -> Tuple[List[dict], Optional[str]]:
        """IoTDA paging of ``items`` (newest first, each with a ``marker`` that grows with age): only items older
        than the ``marker`` argument, then ``offset`` (0-500) and ``limit`` (1-50). Returns the page and the
        marker of its last item (None for an empty page)."""
        limit = self.int_arg("limit", default_limit, 1, 50)
        offset = self.int_arg("offset", 0, 0, 500)
        marker = self.get_query_argument("marker", None)
        if marker:
            items = [i for i in items if i["marker"] < marker]
        page = items[offset:offset + limit]
        return page, (page[-1]["marker"] if page else None)

    def int_arg(self, name: str, default: int, low: int, high: int) -> int:
        """Integer query argument ``name`` within ``low..high`` (``default`` when absent); 400 otherwise."""
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise bad_request(f"'{name}' must be an integer.") from None
        if not low <= value <= high:
            raise bad_request(f"'{name}' must be between {low} and {high}.")
        return value

    async def require_device(self, device_id: str) -> dict:
        record = await self.call(self.emulator.get_device, device_id)
        if not record:
            raise device_not_found(device_id)
        return record


def api(method: Callable) -> Callable:
    """Decorator for handler verbs: turns :class:`ApiError` into an IoTDA error response."""

    @functools.wraps(method)
    async def wrapper(self: BaseApiHandler, *args: Any, **kwargs: Any) -> None:
        try:
            await method(self, *args, **kwargs)
        except ApiError as err:
            self._send_error(err.status, err.code, err.message)
        except errors.DeviceNotFound:
            self._send_error(404, "IOTDA.014000", "The device does not exist.")
        except errors.DeviceOffline:
            self._send_error(409, "IOTDA.014016", "Operation not allowed. The device is not online.")
        except errors.EmulatorError as exc:
            # e.g. a malformed device response, or the emulator stopping while the request waited
            log.warning("%s %s failed: %s", self.request.method, self.request.path, exc)
            self._send_error(500, "IOTDA.000001", f"Internal error: {exc}")

    return wrapper


# ---- JSON views of emulator records ------------------------------------------------------------

def reported_versions(emulator: Any, device_id: str) -> Dict[str, Optional[str]]:
    """``fw_version``/``sw_version``/``device_sdk_version`` the device reported last: its ``$sdk_info`` report
    and its ``$ota`` ``version_report`` (the newer one wins per field). Empty when none was received."""
    reports: List[dict] = []
    for service_id, getter in (("$sdk_info", "info"), ("$ota", "versions")):
        try:
            svc = emulator.service(service_id)
        except (KeyError, AttributeError):
            continue
        try:
            found = getattr(svc, getter)(device_id)
        except Exception:   # a service's bookkeeping must never break ShowDevice
            log.debug("%s.%s(%s) failed", service_id, getter, device_id, exc_info=True)
            continue
        if isinstance(found, dict):
            reports.append(found)
        elif isinstance(found, list) and found:
            reports.append(found[-1])
    out: Dict[str, Optional[str]] = {}
    for report in sorted(reports, key=lambda r: r.get("time") or 0):
        for key in ("fw_version", "sw_version", "device_sdk_version"):
            if isinstance(report.get(key), str) and report[key]:
                out[key] = report[key]
    return out


def _device_view(record: dict, online: bool, *, full: bool, versions: Optional[dict] = None) -> dict:
    device_id = record.get("device_id")
    if versions:
        record = dict(record, **versions)
    gateway_id = record.get("gateway_id") or None
    if record.get("frozen"):
        status = "FROZEN"
    elif online:
        status = "ONLINE"
    else:   # IoTDA: INACTIVE until the device first connects, OFFLINE after
        status = "OFFLINE" if record.get("active_time") else "INACTIVE"
    view = {
        "app_id": record.get("app_id") or "emulator_app",
        "app_name": record.get("app_name") or "DefaultApp",
        "device_id": device_id,
        "node_id": record.get("node_id"),
        # IoTDA reports a directly connected device as its own gateway, with node type GATEWAY.
        "gateway_id": gateway_id or device_id,
        "device_name": record.get("name") or record.get("device_name") or record.get("node_id"),
        "node_type": "ENDPOINT" if gateway_id else "GATEWAY",
        "description": record.get("description"),
        "fw_version": record.get("fw_version"),
        "sw_version": record.get("sw_version"),
        "device_sdk_version": record.get("device_sdk_version"),
        "product_id": record.get("product_id"),
        "product_name": record.get("product_name") or record.get("product_id"),
        "status": status,
        "tags": record.get("tags") or [],   # filled in by the handlers that show tags
    }
    if full:
        auth_type = record.get("auth_type") or ("CERTIFICATES" if record.get("fingerprint") and not record.get("secret")
                                                else "SECRET")
        view.update({
            "auth_info": {"auth_type": auth_type, "secret": record.get("secret"),
                          "fingerprint": record.get("fingerprint"),
                          "secure_access": record.get("secure_access", True), "timeout": 0},
            "create_time": _event_time(record.get("created")),
            "connection_status_update_time": _event_time(record.get("status_time")),
            "active_time": _event_time(record.get("active_time")),
            "modules": [],
            "extension_info": record.get("extension_info"),
        })
    return view


def _full_view(emulator: Any, record: dict) -> dict:
    """ShowDevice's view of ``record``: with its tags, online state and reported versions (blocking)."""
    device_id = record["device_id"]
    return _device_view(dict(record, tags=emulator.core.groups.tags_of(device_id)), emulator.is_online(device_id),
                        full=True, versions=reported_versions(emulator, device_id))


def _shadow_view(entries: List[dict]) -> List[dict]:
    out = []
    for entry in entries or []:
        item = {"service_id": entry.get("service_id")}
        for part in ("desired", "reported"):
            section = entry.get(part)
            if isinstance(section, dict):
                item[part] = {"properties": section.get("properties"), "event_time": section.get("event_time")}
        item["version"] = entry.get("version", 0)
        out.append(item)
    return out


def _opt_str(body: dict, key: str, *, max_len: int = 256, pattern: Optional[re.Pattern] = None) -> Optional[str]:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise bad_request(f"'{key}' must be a non-empty string of at most {max_len} characters.")
    if pattern is not None and not pattern.fullmatch(value):
        raise bad_request(f"'{key}' may contain only letters, digits, '_' and '-'.")
    return value


def _tell_gateway(emulator: Any, gateway_id: str) -> None:
    """A child of ``gateway_id`` was added or deleted over REST: IoTDA notifies the gateway (add/delete
    sub-device notify with the list version). The device change itself stands even when this fails."""
    try:
        emulator.service("$sub_device_manager").registry_changed(gateway_id)
    except Exception:  # noqa: BLE001 - logged once; the REST call already succeeded
        log.exception("sub-device change of gateway %s not recorded", gateway_id)


def _extension_info(body: dict) -> Optional[dict]:
    """``extension_info``: an object of at most 1 KB as JSON, or None."""
    info = body.get("extension_info")
    if info is None:
        return None
    if not isinstance(info, dict) or len(json.dumps(info)) > 1024:
        raise bad_request("'extension_info' must be an object of at most 1 KB.")
    return info


def _secure_access(auth_info: dict) -> Optional[bool]:
    """``auth_info.secure_access`` (None when absent: IoTDA's default is true)."""
    value = auth_info.get("secure_access")
    if value is not None and not isinstance(value, bool):
        raise bad_request("'auth_info.secure_access' must be a boolean.")
    return value


def _time_arg(handler: "BaseApiHandler", name: str) -> Optional[float]:
    """A query time in IoTDA's ``yyyyMMdd'T'HHmmss'Z'`` form (UTC) as epoch seconds; 400 when malformed."""
    raw = handler.get_query_argument(name, None)
    if not raw:
        return None
    try:
        return stamp_seconds(raw)
    except ValueError:
        raise bad_request(f"'{name}' must be a UTC time as yyyyMMdd'T'HHmmss'Z'.") from None


def stamp_seconds(stamp: str) -> float:
    """Epoch seconds of an IoTDA ``yyyyMMdd'T'HHmmss'Z'`` UTC time; ValueError when malformed."""
    return _dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=_dt.timezone.utc).timestamp()


# ---- devices --------------------------------------------------------------------------------------

class DevicesHandler(BaseApiHandler):
    """``POST /v5/iot/{project_id}/devices`` (AddDevice) and ``GET`` (ListDevices)."""

    @api
    async def post(self, project_id: str) -> None:
        body = self.json_body()
        node_id = _opt_str(body, "node_id", max_len=64)
        product_id = _opt_str(body, "product_id", max_len=36)
        if not node_id or not product_id:
            raise bad_request("'node_id' and 'product_id' are mandatory.")
        device_id = _opt_str(body, "device_id", max_len=128, pattern=_NAME_RE)
        name = _opt_str(body, "device_name", max_len=256)
        gateway_id = _opt_str(body, "gateway_id", max_len=128, pattern=_NAME_RE)
        auth_info = body.get("auth_info") or {}
        if not isinstance(auth_info, dict):
            raise bad_request("'auth_info' must be an object.")
        auth_type = auth_info.get("auth_type") or "SECRET"
        if auth_type not in ("SECRET", "CERTIFICATES"):
            raise bad_request("'auth_info.auth_type' is SECRET or CERTIFICATES.")
        secret = _opt_str(auth_info, "secret", max_len=64)
        if secret is not None and len(secret) < 8:
            raise bad_request("'auth_info.secret' must have 8 to 64 characters.")
        fingerprint = _opt_str(auth_info, "fingerprint", max_len=64)
        if fingerprint is not None and not re.match(r"^[0-9a-fA-F]{40}([0-9a-fA-F]{24})?$", fingerprint):
            raise bad_request("'auth_info.fingerprint' is 40 or 64 hex digits.")
        description = _opt_str(body, "description", max_len=2048)
        extension_info = _extension_info(body)
        secure_access = _secure_access(auth_info)
        shadow = body.get("shadow") or []
        if not isinstance(shadow, list) or not all(
                isinstance(s, dict) and isinstance(s.get("service_id"), str) and isinstance(s.get("desired"), dict)
                for s in shadow):
            raise bad_request("'shadow' is a list of {service_id, desired}.")
        effective_id = device_id or f"{product_id}_{node_id}"
        if not await self.call(self.emulator.get_product, product_id):
            raise product_not_found(product_id)
        if await self.call(self.emulator.get_device, effective_id):
            raise device_exists(effective_id)
        if gateway_id and gateway_id != effective_id and not await self.call(self.emulator.get_device, gateway_id):
            raise bad_request(f"The gateway {gateway_id} does not exist.")
        kwargs: Dict[str, Any] = {"product_id": product_id, "node_id": node_id, "name": name,
                                  "gateway_id": gateway_id if gateway_id != effective_id else None,
                                  "fingerprint": fingerprint, "auth_type": auth_type, "description": description,
                                  "extension_info": extension_info, "secure_access": secure_access}
        try:
            record = await self.call(self.emulator.create_device, effective_id, secret, **kwargs)
        except errors.EmulatorError as exc:
            if await self.call(self.emulator.get_device, effective_id):   # lost a race with another add
                raise device_exists(effective_id) from None
            raise bad_request(str(exc)) from None
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        if record.get("gateway_id"):
            await self.call(_tell_gateway, self.emulator, record["gateway_id"])
        for entry in shadow:
            try:
                await self.call(self.emulator.set_desired, record["device_id"], entry["service_id"], entry["desired"])
            except ValueError as exc:
                raise bad_request(str(exc)) from None
        self.reply(_device_view(record, False, full=True), 201)

    @api
    async def get(self, project_id: str) -> None:
        limit = self.int_arg("limit", 10, 1, 50)
        offset = self.int_arg("offset", 0, 0, 500)
        marker = self.get_query_argument("marker", None)
        filters = {k: self.get_query_argument(k, None) for k in ("product_id", "gateway_id", "node_id",
                                                                  "device_name")}
        start, end = _time_arg(self, "start_time"), _time_arg(self, "end_time")
        # IoTDA lists newest first
        records = list(reversed(await self.call(self.emulator.list_devices)))

        def keep(r: dict) -> bool:
            if filters["product_id"] and r.get("product_id") != filters["product_id"]:
                return False
            if filters["gateway_id"] and (r.get("gateway_id") or r.get("device_id")) != filters["gateway_id"]:
                return False
            if filters["node_id"] and r.get("node_id") != filters["node_id"]:
                return False
            if filters["device_name"] and (r.get("name") or r.get("node_id")) != filters["device_name"]:
                return False
            created = r.get("created") or 0.0
            return (start is None or created >= start) and (end is None or created <= end)

        records = [r for r in records if keep(r)]
        count = len(records)
        if marker:
            ids = [r.get("device_id") for r in records]
            if marker in ids:
                records = records[ids.index(marker) + 1:]
        page = records[offset:offset + limit]
        emulator = self.emulator

        def views() -> List[dict]:   # one worker-pool hop for the page's tags, online states and versions
            return [_device_view(dict(r, tags=emulator.core.groups.tags_of(r["device_id"])),
                                 emulator.is_online(r["device_id"]), full=False,
                                 versions=reported_versions(emulator, r["device_id"])) for r in page]

        devices = await self.call(views)
        self.reply({"devices": devices,
                    "page": {"count": count, "marker": page[-1]["device_id"] if page else marker}})



class DeviceHandler(BaseApiHandler):
    """``GET`` (ShowDevice), ``PUT`` (UpdateDevice) and ``DELETE`` (DeleteDevice)
    ``/v5/iot/{project_id}/devices/{device_id}``."""

    @api
    async def put(self, project_id: str, device_id: str) -> None:
        body = self.json_body()
        fields: Dict[str, Any] = {}
        name = _opt_str(body, "device_name", max_len=256)
        if name is not None:
            fields["name"] = name
        if "description" in body:
            fields["description"] = _opt_str(body, "description", max_len=2048)
        if "extension_info" in body:
            fields["extension_info"] = _extension_info(body)
        auth_info = body.get("auth_info")
        if auth_info is not None:
            if not isinstance(auth_info, dict):
                raise bad_request("'auth_info' must be an object.")
            if auth_info.get("secure_access") is not None:
                fields["secure_access"] = _secure_access(auth_info)
        await self.require_device(device_id)
        try:
            record = await self.call(self.emulator.update_device, device_id, **fields)
        except (errors.DeviceNotFound, ValueError, TypeError) as exc:
            raise _emulator_error(exc, device_id) from None
        view = await self.call(_full_view, self.emulator, record)
        view["auth_info"].pop("secret", None)   # UpdateDevice answers auth_info without the secret
        self.reply(view)

    @api
    async def get(self, project_id: str, device_id: str) -> None:
        record = await self.require_device(device_id)
        self.reply(await self.call(_full_view, self.emulator, record))

    @api
    async def delete(self, project_id: str, device_id: str) -> None:
        record = await self.require_device(device_id)
        try:
            await self.call(self.emulator.delete_device, device_id)
        except errors.DeviceNotFound:
            raise device_not_found(device_id) from None
        if record.get("gateway_id"):
            await self.call(_tell_gateway, self.emulator, record["gateway_id"])
        self.reply(None, 204)


class DeviceActionHandler(BaseApiHandler):
    """``POST /v5/iot/{project_id}/devices/{device_id}/action?action_id=resetSecret`` (ResetDeviceSecret).

    Body (every field optional): ``secret`` (8-32 letters, digits, ``_``, ``-``; generated when absent),
    ``force_disconnect`` (drop the current connection; default false), ``secret_type`` (``PRIMARY``; the
    emulator models no secondary secret, so ``SECONDARY`` is a 400). The secret is never logged.
    """

    ACTIONS = ("resetSecret",)

    @api
    async def post(self, project_id: str, device_id: str) -> None:
        action_id = self.get_query_argument("action_id", None)
        if action_id not in self.ACTIONS:
            raise bad_request(f"'action_id' must be one of {', '.join(self.ACTIONS)}; got {action_id!r}.")
        body = self.json_body() if (self.request.body or b"").strip() else {}
        secret = body.get("secret")
        if secret is not None:
            try:
                check_device_secret(secret)
            except ValueError as exc:
                raise bad_request(str(exc)) from None
        force_disconnect = body.get("force_disconnect", False)
        if force_disconnect is None:
            force_disconnect = False
        if not isinstance(force_disconnect, bool):
            raise bad_request("'force_disconnect' must be a boolean.")
        secret_type = body.get("secret_type")
        if secret_type is None:
            secret_type = "PRIMARY"
        if secret_type == "SECONDARY":
            raise bad_request("'secret_type' SECONDARY is not supported by the emulator: it models only the "
                              "primary secret.")
        if secret_type != "PRIMARY":
            raise bad_request("'secret_type' must be PRIMARY or SECONDARY.")
        await self.require_device(device_id)
        try:
            new_secret = await self.call(self.emulator.reset_device_secret, device_id, secret, force_disconnect)
        except (errors.DeviceNotFound, ValueError, TypeError) as exc:
            raise _emulator_error(exc, device_id) from None
        self.reply({"device_id": device_id, "secret": new_secret, "secret_type": secret_type})


# ---- commands, properties, messages -------------------------------------------------------------



class CommandsHandler(BaseApiHandler):
    """``POST /v5/iot/{project_id}/devices/{device_id}/commands`` (CreateCommand, synchronous)."""

    @api
    async def post(self, project_id: str, device_id: str) -> None:
        service_id, command_name, paras = self.command_body(self.json_body())
        await self.require_device(device_id)
        await self.platform_request("command_id", topics.COMMAND, device_id,
                                    {"service_id": service_id, "command_name": command_name}, paras=paras)


class PropertiesHandler(BaseApiHandler):
    """``PUT`` (UpdateProperties) and ``GET`` (ListProperties) ``.../devices/{device_id}/properties``."""

    @api
    async def put(self, project_id: str, device_id: str) -> None:
        body = self.json_body()
        services = body.get("services")
        if not isinstance(services, list) or not services or not all(
                isinstance(s, dict) and isinstance(s.get("service_id"), str) and isinstance(s.get("properties"), dict)
                for s in services):
            raise bad_request("'services' is a non-empty list of {service_id, properties}.")
        if len(self.request.body) > 64 * 1024:
            raise bad_request("The properties exceed 64 KB.")
        await self.require_device(device_id)
        await self.platform_request("request_id", topics.PROPERTIES_SET, device_id, services=services)

    @api
    async def get(self, project_id: str, device_id: str) -> None:
        service_id = self.get_query_argument("service_id", None) or None
        if service_id is not None and len(service_id) > 64:
            raise bad_request("'service_id' has at most 64 characters.")
        await self.require_device(device_id)
        await self.platform_request("request_id", topics.PROPERTIES_GET, device_id, {"service_id": service_id})


class MessagesHandler(BaseApiHandler):
    """``POST`` (CreateMessage, asynchronous) and ``GET`` (ListDeviceMessages) ``.../devices/{id}/messages``."""

    @api
    async def get(self, project_id: str, device_id: str) -> None:
        await self.require_device(device_id)
        messages = await self.call(self.emulator.core.messages.list, device_id)
        self.reply({"device_id": device_id, "messages": messages})

    @api
    async def post(self, project_id: str, device_id: str) -> None:
        body = self.json_body()
        if "message" not in body or body.get("message") is None:
            raise bad_request("'message' is mandatory.")
        message = body["message"]
        message_id = _opt_str(body, "message_id", max_len=100, pattern=_NAME_RE)
        name = _opt_str(body, "name", max_len=128)
        encoding = body.get("encoding") or "none"
        if encoding not in ("none", "base64"):
            raise bad_request("'encoding' is none or base64.")
        payload_format = body.get("payload_format") or "standard"
        if payload_format not in ("standard", "raw"):
            raise bad_request("'payload_format' is standard or raw.")
        topic = _opt_str(body, "topic", max_len=128)
        topic_full_name = _opt_str(body, "topic_full_name", max_len=128)
        if topic and topic_full_name:
            raise bad_request("Give either 'topic' or 'topic_full_name'.")
        # topic is a suffix of $oc/devices/{gateway id}/user/; topic_full_name goes out unchanged (IoTDA does not
        # check it against the product). Either way it must be a topic one can publish to.
        for key, value in (("topic", topic), ("topic_full_name", topic_full_name)):
            problem = validate.topic_field_error(key, value)
            if problem is not None:
                raise bad_request(problem)
        if topic is not None and topic.startswith(("$", "/")):
            raise bad_request("'topic' is the part after $oc/devices/{device_id}/user/.")
        ttl = body.get("ttl")
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= 1440
                                or ttl % 5):
            raise bad_request("'ttl' is a number of minutes from 0 to 1440, a multiple of 5.")
        if len(self.request.body) > MAX_DOWNLINK:
            raise bad_request("The message exceeds 256 KB.")
        payload: Any = message
        if encoding == "base64":
            if not isinstance(message, str):
                raise bad_request("A base64 message must be a string.")
            try:
                decoded = base64.b64decode(message, validate=True)
            except (binascii.Error, ValueError):
                raise bad_request("'message' is not valid base64.") from None
            if payload_format == "raw":
                payload = decoded  # the device receives the decoded bytes
        qos = 1
        props = body.get("properties")
        if props is not None and not isinstance(props, dict):
            raise bad_request("'properties' must be an object.")
        await self.require_device(device_id)
        details = {"name": name, "message": message, "encoding": encoding, "payload_format": payload_format,
                   "topic": topic_full_name or topic, "properties": props}
        kwargs: Dict[str, Any] = {"topic": topic, "topic_full_name": topic_full_name, "qos": qos, "name": name,
                                  "message_id": message_id, "standard": payload_format == "standard",
                                  "ttl_minutes": 1440 if ttl is None else ttl, "details": details}
        now = codec.event_time()
        try:
            # the status says what happened to this message: published to a connected device, or cached
            sent_id, status = await self.call(self.emulator.core.deliver_message, device_id, payload, **kwargs)
        except (errors.DeviceNotFound, errors.DeviceOffline, ValueError, TypeError) as exc:
            raise _emulator_error(exc, device_id) from None
        self.reply({"message_id": sent_id or message_id,
                    "result": {"status": status, "created_time": now,
                               "finished_time": None if status == "PENDING" else codec.event_time()}}, 201)


class MessageHandler(BaseApiHandler):
    """``GET`` (ShowDeviceMessage) and ``DELETE`` (DeleteDeviceMessage) ``.../devices/{id}/messages/{message_id}``.

    Deleting a cached (PENDING) message also keeps it from being delivered (see :mod:`iotda_emulator.message_log`).
    """

    async def _require_message(self, device_id: str, message_id: str) -> dict:
        await self.require_device(device_id)
        found = await self.call(self.emulator.core.messages.get, device_id, message_id)
        if found is None:
            raise ApiError(404, "IOTDA.000006", f"Invalid input data. The message does not exist. "
                                                f"message_id={message_id}")
        return found

    @api
    async def get(self, project_id: str, device_id: str, message_id: str) -> None:
        self.reply(await self._require_message(device_id, message_id))

    @api
    async def delete(self, project_id: str, device_id: str, message_id: str) -> None:
        await self._require_message(device_id, message_id)
        await self.call(self.emulator.core.messages.delete, device_id, message_id)
        self.reply(None, 204)


# ---- shadow ---------------------------------------------------------------------------------------

class ShadowHandler(BaseApiHandler):
    """``GET`` (ShowDeviceShadow), ``PUT`` (UpdateDeviceShadowDesiredData) and ``DELETE``
    (DeleteDeviceShadow) ``.../devices/{id}/shadow``."""

    @api
    async def delete(self, project_id: str, device_id: str) -> None:
        await self.require_device(device_id)
        try:
            await self.call(self.emulator.delete_shadow, device_id)
        except errors.DeviceNotFound:
            raise device_not_found(device_id) from None
        self.reply(None, 204)

    @api
    async def get(self, project_id: str, device_id: str) -> None:
        await self.require_device(device_id)
        entries = await self.call(self.emulator.shadow, device_id)
        self.reply({"device_id": device_id, "shadow": _shadow_view(entries)})

    @api
    async def put(self, project_id: str, device_id: str) -> None:
        body = self.json_body()
        shadow = body.get("shadow")
        if not isinstance(shadow, list) or not shadow:
            raise bad_request("'shadow' is a non-empty list of {service_id, desired, version}.")
        for entry in shadow:
            if not isinstance(entry, dict) or not isinstance(entry.get("service_id"), str) \
                    or not isinstance(entry.get("desired"), dict):
                raise bad_request("each shadow entry needs 'service_id' and an object 'desired'.")
            for key in entry["desired"]:
                if not key or "." in key or "$" in key or "\x00" in key:
                    raise bad_request("shadow property names cannot be empty or contain '.', '$' or NUL.")
            version = entry.get("version")
            if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
                raise bad_request("'version' must be an integer.")
        await self.require_device(device_id)
        for entry in shadow:
            # IoTDA: a version, when given, must be the current one; desired {} clears the section
            try:
                await self.call(self.emulator.set_desired, device_id, entry["service_id"], entry["desired"],
                                entry.get("version"))
            except errors.ShadowVersionConflict as exc:
                raise bad_request(f"{exc}.") from None
            except (errors.DeviceNotFound, ValueError, TypeError) as exc:
                raise _emulator_error(exc, device_id) from None
        entries = await self.call(self.emulator.shadow, device_id)
        self.reply({"device_id": device_id, "shadow": _shadow_view(entries)})


class NotFoundHandler(BaseApiHandler):
    """Any path nobody serves: APIG's "API not found" answer."""

    def prepare(self) -> None:
        self.set_header("X-Request-Id", self.request_id)
        self._send_error(404, *API_NOT_FOUND)


def routes(server: Any) -> List[tuple]:
    """The REST routes, each handler initialised with the owning :class:`HttpServer`."""
    from iotda_emulator.http import (rest_async_commands, rest_bootstrap, rest_device_state,  # they import us
                                     rest_devices, rest_groups, rest_products, rest_services)
    from iotda_emulator.http import rest_broadcast, rest_device_config  # noqa: I001 - separate line: one owner
    from iotda_emulator.http import rest_tunnels  # noqa: I001 - separate line: one owner
    from iotda_emulator.http import rest_batch, rest_certificates  # noqa: I001 - separate line: one owner
    from iotda_emulator.http import rest_bridges, rest_policies  # noqa: I001 - separate line: one owner

    kw = {"server": server}
    return [
        (PREFIX + r"/devices/?", DevicesHandler, kw),
        (DEVICE + r"/?", DeviceHandler, kw),
        (DEVICE + r"/action/?", DeviceActionHandler, kw),
        (DEVICE + r"/commands/?", CommandsHandler, kw),
        (DEVICE + r"/properties/?", PropertiesHandler, kw),
        (DEVICE + r"/messages/?", MessagesHandler, kw),
        (DEVICE + r"/messages/(?P<message_id>[^/]+)/?", MessageHandler, kw),
        (DEVICE + r"/shadow/?", ShadowHandler, kw),
    ] + (rest_services.routes(server)      # OTA packages, batch tasks, device-side rules, device logs
         + rest_products.routes(server)      # products and their custom topics
         + rest_bootstrap.routes(server)     # IoTDP: registration groups, provisioning strategies
         + rest_device_state.routes(server)  # FreezeDevice, UnfreezeDevice
         + rest_devices.routes(server)       # ChangeGateway, SearchDevices
         + rest_async_commands.routes(server)  # asynchronous commands
         + rest_groups.routes(server)           # device groups, tags
         + rest_broadcast.routes(server)        # BroadcastMessage
         + rest_device_config.routes(server)    # remote-configuration tasks (emulator-only paths)
         + rest_tunnels.routes(server)          # device tunnels (remote login) and their WebSocket relay
         + rest_certificates.routes(server)     # device CA certificates, ResetFingerprint
         + rest_batch.routes(server)            # batch task stop/retry/confirm and files, OTA modules
         + rest_policies.routes(server)         # device (topic) policies
         + rest_bridges.routes(server))         # bridges (management only)
