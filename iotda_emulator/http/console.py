"""The emulator's web console: the local equivalent of IoTDA's "Online Debugging" page.

``console_routes(emulator)`` returns the tornado routes the emulator's HTTP server mounts:

* ``GET /console`` - the single page (plain HTML + vanilla JS from ``iotda_emulator/web/``, no build step,
  nothing fetched from the internet);
* ``GET /console/static/<file>`` - its script and style sheet;
* ``/console/api/...`` - JSON endpoints backed by the :class:`~iotda_emulator.Emulator` Python API: debugging
  (commands, messages, properties, shadow) and the message trace (filters, search, JSON/CSV export) here; device
  management, property charts, products, OTA and bootstrap in :mod:`.console_manage`; remote configuration,
  broadcast, tunnels, asynchronous commands, groups and tags in :mod:`.console_platform`.

Emulator calls that wait for a device (commands, property set/get) run in the IOLoop's executor so the
HTTP server keeps serving while a device takes its time to answer.

State-changing endpoints accept only ``application/json`` bodies (the package upload also
``application/octet-stream``); the server's request guard (:mod:`iotda_emulator.http.guard`) refuses a foreign
``Host`` or ``Origin`` first, and a state-changing request a browser marks ``Sec-Fetch-Site`` other than
``same-origin`` is refused here: a web page from another site cannot drive local devices through a browser that
happens to have the console open (a cross-site JSON POST also needs a CORS pre-flight, which is never granted).

When the emulator has application keys (``Emulator.app_keys``), the JSON API needs the same credentials as
the REST API: a session from ``/console/login`` (access key + secret key; an ``HttpOnly``, ``SameSite=Strict``
cookie) or an ``SDK-HMAC-SHA256`` signed request. Without keys (the default) the console is open to local
clients, and the trace it serves has secrets, tokens and presigned URLs masked (:mod:`.redact`).

Errors are JSON in IoTDA's shape ``{"error_code", "error_msg"}`` plus ``error`` (a short kind) and
``message`` for the page.
"""
from __future__ import annotations

import base64
import csv
import datetime
import functools
import io
import hashlib
import hmac
import logging
import math
import os
import secrets
import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import tornado.web
from tornado import httputil
from tornado.ioloop import IOLoop

from iotda_emulator.http import auth, validate
from iotda_emulator.http.redact import redact_text
from iotda_emulator.protocol import codec, topics

logger = logging.getLogger(__name__)

WEB_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "web")

#: Most trace entries one poll returns (the page keeps the newest ones it has seen).
TRACE_LIMIT = 500
#: Newest trace entries a free-text search looks through (older ones are reported as skipped).
SEARCH_SCAN = 20000
#: Most entries one export holds (the newest matching ones).
EXPORT_LIMIT = 10000
#: Trace kinds the page offers as a filter: the topic kinds of ``protocol.topics`` plus the front's violations.
TRACE_KINDS = (topics.MESSAGES_UP, topics.MESSAGES_DOWN, topics.COMMAND, topics.COMMAND_RESPONSE,
               topics.PROPERTIES_REPORT, topics.GATEWAY_PROPERTIES_REPORT, topics.PROPERTIES_SET,
               topics.PROPERTIES_SET_RESPONSE, topics.PROPERTIES_GET, topics.PROPERTIES_GET_RESPONSE,
               topics.SHADOW_GET, topics.SHADOW_GET_RESPONSE, topics.EVENTS_UP, topics.EVENTS_DOWN,
               topics.BOOTSTRAP_UP, topics.BOOTSTRAP_DOWN, topics.USER, topics.BROADCAST, topics.OTHER, "violation")
#: Longest wait a console user may ask for on a command / property call (seconds).
MAX_TIMEOUT = 120.0
#: Name of the login session cookie (used only when the emulator has application keys).
SESSION_COOKIE = "iotda_console_session"
#: Lifetime of a login session (seconds) and the most sessions kept (the oldest go first).
SESSION_TTL = 12 * 3600.0
MAX_SESSIONS = 256
#: IoTDA error codes of the console's answers by HTTP status (IoTDA's shape; codes as the REST API uses them).
_ERROR_CODES = {401: "APIGW.0301", 404: "IOTDA.014000", 409: "IOTDA.014016", 504: "IOTDA.014111"}
#: ``Sec-Fetch-Site`` values a state-changing request may carry (browsers send it; other clients do not).
_SAME_SITE_FETCH = ("same-origin", "none")


def _digest(secret_key: str) -> bytes:
    return hashlib.sha256(secret_key.encode("utf-8")).digest()


class ConsoleSessions:
    """Console logins: random session tokens mapped to the access key that opened them.

    A session stays valid while its access key is still configured with the same secret key (keys may be
    changed at run time) and for at most :data:`SESSION_TTL`. Only a digest of the secret key is kept.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: "OrderedDict[str, Tuple[str, bytes, float]]" = OrderedDict()

    def open(self, access_key: str, secret_key: str) -> str:
        """A new session token for a verified key pair."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[token] = (access_key, _digest(secret_key), time.monotonic() + SESSION_TTL)
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return token

    def valid(self, token: Optional[str], app_keys: Mapping[str, str]) -> bool:
        """Whether ``token`` is a live session of a key pair still in ``app_keys``."""
        if not token:
            return False
        with self._lock:
            entry = self._sessions.get(token)
            if entry is not None and entry[2] < time.monotonic():
                del self._sessions[token]
                entry = None
        if entry is None:
            return False
        secret_key = app_keys.get(entry[0])
        return secret_key is not None and hmac.compare_digest(_digest(secret_key), entry[1])

    def close(self, token: Optional[str]) -> None:
        with self._lock:
            self._sessions.pop(token or "", None)


def _app_keys(emulator: Any) -> Mapping[str, str]:
    return getattr(emulator, "app_keys", None) or {}


class ConsoleError(Exception):
    """A request the console refuses, with the HTTP status and a short reason for the page."""

    def __init__(self, status: int, error: str, message: str, code: Optional[str] = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.code = code        # an IoTDA error code more precise than the status's default


# Emulator exceptions by class name (iotda_emulator.errors), so this module imports without them.
_ERROR_STATUS = {
    "CommandTimeout": (504, "timeout"),
    "TimeoutError": (504, "timeout"),
    "DeviceOffline": (409, "offline"),
    "DeviceNotFound": (404, "not_found"),
}


def _jsonable(value: Any) -> Any:
    """Turn emulator return values (dataclasses, sqlite rows, bytes, tuples) into JSON-able data."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _payload_view(bytes(value))[0]
    if hasattr(value, "keys") and callable(value.keys):      # sqlite3.Row
        try:
            return {k: _jsonable(value[k]) for k in value.keys()}
        except Exception:  # noqa: BLE001 - fall through to str()
            pass
    if hasattr(value, "__dataclass_fields__"):
        return {k: _jsonable(getattr(value, k)) for k in value.__dataclass_fields__}
    if hasattr(value, "_asdict"):
        return _jsonable(value._asdict())
    return str(value)


def _payload_view(payload: Any) -> tuple:
    """``(text, encoding)``: UTF-8 text as is, anything else as base64 (the page shows which)."""
    if payload is None:
        return "", "utf-8"
    if isinstance(payload, str):
        return payload, "utf-8"
    raw = bytes(payload)
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"


def _iso_utc(seconds: float) -> str:
    """``2026-12-06T21:40:01.123Z`` (UTC, milliseconds): the date exports and tooltips show."""
    try:
        moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def trace_entry_json(entry: Any) -> dict:
    """One :class:`TraceEntry` as the JSON the page shows (payload decoded and redacted, never interpreted
    as HTML)."""
    payload, encoding = _payload_view(getattr(entry, "payload", b""))
    if encoding == "utf-8":
        payload = redact_text(payload)    # served over HTTP: no secrets, tokens or presigned URLs
    when = float(getattr(entry, "time", 0.0) or 0.0)
    out = {
        "time": when,
        "time_iso": _iso_utc(when),
        "device_id": getattr(entry, "device_id", None),
        "direction": getattr(entry, "direction", None),
        "topic": getattr(entry, "topic", None),
        "kind": getattr(entry, "kind", None),
        "payload": payload,
        "encoding": encoding,
    }
    root = topics.device_root(out["device_id"]) if out["device_id"] else None
    topic = out["topic"]
    # the part after "$oc/devices/{id}/", which the page shows (the device has its own column)
    out["topic_suffix"] = topic[len(root):] if root and isinstance(topic, str) and topic.startswith(root) else topic
    seq = getattr(entry, "seq", None) or getattr(entry, "id", None)
    if isinstance(seq, int):
        out["seq"] = seq
    return out


class _ApiHandler(tornado.web.RequestHandler):
    """Common JSON plumbing: body parsing, CSRF guard, error mapping, executor calls."""

    #: Reachable without a login when the emulator has application keys (the login endpoints).
    public = False
    #: Takes a raw ``application/octet-stream`` body (a file upload) besides JSON.
    binary_body = False

    def initialize(self, emulator: Any, executor: Any = None,  # noqa: D401 - tornado hook
                   sessions: Optional[ConsoleSessions] = None) -> None:
        self.emulator = emulator
        self.executor = executor
        self.sessions = sessions if sessions is not None else ConsoleSessions()

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")

    def check_xsrf_cookie(self) -> None:
        """The server's guard (host, origin, content type) and the SameSite cookie replace tornado's XSRF check."""

    def prepare(self) -> None:
        keys = _app_keys(self.emulator)
        if keys and not self.public and not self.authenticated(keys):
            raise ConsoleError(401, "unauthorized",
                               "log in at /console/login (or sign the request with an application key)")
        if self.request.method in ("POST", "PUT", "DELETE", "PATCH"):
            # same-origin check on top of the server guard's Origin/Host check: a browser tells where a
            # request comes from; anything but the console's own page (or a typed URL) is refused
            site = self.request.headers.get("Sec-Fetch-Site")
            if site is not None and site.strip().lower() not in _SAME_SITE_FETCH:
                logger.info("console: refused %s %s from a %s page", self.request.method, self.request.path,
                            site[:20])
                raise ConsoleError(403, "forbidden", "cross-site requests are refused")
            ctype = self.request.headers.get("Content-Type", "").lower()
            binary_ok = self.binary_body and ctype.startswith("application/octet-stream")
            if self.request.body and not ctype.startswith("application/json") and not binary_ok:
                raise ConsoleError(415, "bad_request", "send the body as application/json")

    def authenticated(self, keys: Mapping[str, str]) -> bool:
        """A live login session, or an ``SDK-HMAC-SHA256`` signature by one of ``keys``."""
        if self.sessions.valid(self.get_cookie(SESSION_COOKIE), keys):
            return True
        if not self.request.headers.get("Authorization"):
            return False
        try:
            auth.verify_request(self.request.method, self.request.path, self.request.query,
                                self.request.headers, self.request.body or b"", keys)
        except auth.AuthError as exc:
            logger.info("console: refused %s %s: %s", self.request.method, self.request.path, exc)
            return False
        return True

    # -- helpers -----------------------------------------------------------------------------

    def body_object(self) -> dict:
        """The request body as a JSON object (an empty body counts as ``{}``)."""
        if not self.request.body:
            return {}
        try:
            return codec.loads_object(self.request.body)
        except (ValueError, RecursionError) as exc:
            raise ConsoleError(400, "bad_request", f"body: {exc}") from None

    def send_json(self, obj: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(codec.dumps(_jsonable(obj)))

    async def device_checked(self, device_id: str) -> dict:
        """The device's record; a 404 answer when no such device is registered."""
        record = await self.blocking(self.emulator.get_device, device_id)
        if record is None:
            raise ConsoleError(404, "not_found", f"no device {device_id!r}")
        return record

    async def blocking(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        """Run a blocking emulator call in the executor, so the IOLoop keeps serving meanwhile."""
        executor = self.executor() if callable(self.executor) else self.executor
        return await IOLoop.current().run_in_executor(executor, functools.partial(fn, *args, **kwargs))

    @staticmethod
    def _expected(exc: Optional[BaseException]) -> Optional[tuple]:
        """``(status, error)`` for errors the page should simply show; None for real bugs."""
        if isinstance(exc, ConsoleError):
            return exc.status, exc.error
        for cls in type(exc).__mro__:
            mapped = _ERROR_STATUS.get(cls.__name__)
            if mapped is not None:
                return mapped
        if isinstance(exc, (ValueError, LookupError)):    # the emulator's answer to bad input
            return 400, "bad_request"
        return None

    def log_exception(self, typ: Any, value: Optional[BaseException], tb: Any) -> None:
        expected = self._expected(value)
        if expected is None:
            super().log_exception(typ, value, tb)       # a bug: tornado logs it once, with traceback
        elif expected[0] == 400:
            logger.info("console: %s %s refused: %s", self.request.method, self.request.path, value)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        expected = self._expected(exc)
        if expected is not None:
            status = expected[0]
            message = exc.message if isinstance(exc, ConsoleError) else (str(exc) or expected[1])
            body = error_json(status, expected[1], message)
            if isinstance(exc, ConsoleError) and exc.code:
                body["error_code"] = exc.code
            self.set_status(status)
            self.finish(codec.dumps(body))
            return
        self.finish(codec.dumps(error_json(status_code, "internal" if status_code >= 500 else "http_error",
                                           httputil.responses.get(status_code, "error"))))


def error_json(status: int, error: str, message: str) -> dict:
    """A console error body: IoTDA's ``error_code``/``error_msg`` plus the page's ``error``/``message``."""
    code = _ERROR_CODES.get(status) or ("IOTDA.000001" if status >= 500 else "IOTDA.000006")
    return {"error_code": code, "error_msg": message, "error": error, "message": message}


def _timeout_arg(value: Any) -> Optional[float]:
    if value is None or value == "":
        return None
    try:
        timeout = float(value)
    except (TypeError, ValueError):
        raise ConsoleError(400, "bad_request", "timeout must be a number of seconds") from None
    if not 0 < timeout <= MAX_TIMEOUT:
        raise ConsoleError(400, "bad_request", f"timeout must be in (0, {MAX_TIMEOUT:g}] seconds")
    return timeout


def _require_str(body: dict, key: str, *, optional: bool = False) -> Optional[str]:
    value = body.get(key)
    if value is None or value == "":
        if optional:
            return None
        raise ConsoleError(400, "bad_request", f"{key} is required")
    if not isinstance(value, str):
        raise ConsoleError(400, "bad_request", f"{key} must be a string")
    return value


# ---- endpoints -------------------------------------------------------------------------------

def _public_record(emulator: Any, record: Any) -> dict:
    """A device record for the page: without secrets, with its online state."""
    dev = _jsonable(record)
    for key in ("secret", "password"):       # the console never shows device secrets
        dev.pop(key, None)
    try:
        dev["online"] = bool(emulator.is_online(dev.get("device_id")))
    except Exception:  # noqa: BLE001 - a device deleted meanwhile shows as offline
        dev["online"] = False
    return dev


class DevicesHandler(_ApiHandler):
    """``GET /console/api/devices``: every registered device with its online state."""

    async def get(self) -> None:
        def listing() -> list:
            return [_public_record(self.emulator, d) for d in self.emulator.list_devices()]

        self.send_json({"devices": await self.blocking(listing)})


class DeviceHandler(_ApiHandler):
    """``GET /console/api/devices/{id}``: one device (without its secret) and its online state."""

    async def get(self, device_id: str) -> None:
        record = await self.device_checked(device_id)
        self.send_json(await self.blocking(_public_record, self.emulator, record))


class CommandHandler(_ApiHandler):
    """``POST /console/api/devices/{id}/commands`` ``{service_id, command_name, paras, timeout?}``.

    Answers ``200 {"response": {...}}`` with the device's response, ``504`` on timeout, ``409`` when
    the device is offline.
    """

    async def post(self, device_id: str) -> None:
        body = self.body_object()
        service_id = _require_str(body, "service_id", optional=True)
        command_name = _require_str(body, "command_name")
        paras = body.get("paras", {})
        if paras is None:
            paras = {}
        if not isinstance(paras, dict):
            raise ConsoleError(400, "bad_request", "paras must be a JSON object")
        timeout = _timeout_arg(body.get("timeout"))
        await self.device_checked(device_id)
        response = await self.blocking(self.emulator.send_command, device_id, service_id, command_name,
                                       paras, timeout=timeout)
        self.send_json({"response": response})


class MessageHandler(_ApiHandler):
    """``POST /console/api/devices/{id}/messages`` ``{payload, topic?, qos?, name?}`` -> ``{message_id}``.

    ``payload`` is sent as given: a string as its UTF-8 bytes, a JSON object/array as compact JSON.
    """

    async def post(self, device_id: str) -> None:
        body = self.body_object()
        payload = body.get("payload")
        if payload is None:
            raise ConsoleError(400, "bad_request", "payload is required")
        if isinstance(payload, list):
            payload = codec.dumps(payload)
        if not isinstance(payload, (str, dict)):
            raise ConsoleError(400, "bad_request", "payload must be a string or a JSON object")
        topic = _require_str(body, "topic", optional=True)
        problem = validate.topic_field_error("topic", topic)
        if problem is not None:
            raise ConsoleError(400, "bad_request", problem)
        name = _require_str(body, "name", optional=True)
        qos = body.get("qos", 1)
        if qos not in (0, 1):
            raise ConsoleError(400, "bad_request", "qos must be 0 or 1")
        await self.device_checked(device_id)
        kwargs: Dict[str, Any] = {"qos": qos}
        if topic:
            kwargs["topic"] = topic
        if name:
            kwargs["name"] = name
        message_id = await self.blocking(self.emulator.send_message, device_id, payload, **kwargs)
        self.send_json({"message_id": message_id})


class PropertiesHandler(_ApiHandler):
    """``GET .../properties?service_id=`` asks the device; ``POST .../properties`` ``{services}`` sets them."""

    async def get(self, device_id: str) -> None:
        service_id = self.get_query_argument("service_id", None) or None
        timeout = _timeout_arg(self.get_query_argument("timeout", None))
        await self.device_checked(device_id)
        result = await self.blocking(self.emulator.get_properties, device_id, service_id, timeout=timeout)
        self.send_json({"response": result})

    async def post(self, device_id: str) -> None:
        body = self.body_object()
        services = body.get("services")
        if not isinstance(services, list) or not services or not all(isinstance(s, dict) for s in services):
            raise ConsoleError(400, "bad_request",
                               'services must be a non-empty list like [{"service_id": "...", '
                               '"properties": {...}}]')
        timeout = _timeout_arg(body.get("timeout"))
        await self.device_checked(device_id)
        result = await self.blocking(self.emulator.set_properties, device_id, services, timeout=timeout)
        self.send_json({"response": result})


class ShadowHandler(_ApiHandler):
    """``GET .../shadow`` lists the shadow; ``POST .../shadow`` ``{service_id, properties}`` sets desired."""

    async def get(self, device_id: str) -> None:
        await self.device_checked(device_id)
        shadow = await self.blocking(self.emulator.shadow, device_id)
        self.send_json({"shadow": shadow})

    async def post(self, device_id: str) -> None:
        body = self.body_object()
        service_id = _require_str(body, "service_id")
        properties = body.get("properties")
        if not isinstance(properties, dict) or not properties:
            raise ConsoleError(400, "bad_request", "properties must be a non-empty JSON object")
        await self.device_checked(device_id)
        version = await self.blocking(self.emulator.set_desired, device_id, service_id, properties)
        self.send_json({"version": version})


class TraceHandler(_ApiHandler):
    """``GET /console/api/trace?device_id=&direction=&kind=&q=&after=&limit=``: trace entries after a cursor.

    Answers ``{"entries": [...oldest first], "cursor": c, "truncated": bool}``; the page passes ``cursor``
    back as ``after`` to get only newer entries. At most ``limit`` (the newest) entries are returned.
    ``device_id``, ``direction`` and ``kind`` are exact matches; ``q`` is a case-insensitive text searched in the
    device id, kind, topic and the (masked) payload of the newest :data:`SEARCH_SCAN` entries.
    """

    async def get(self) -> None:
        filters = _trace_filters(self)
        cursor = _count_arg(self.get_query_argument("after", None), "after", 0)
        limit = max(1, min(_count_arg(self.get_query_argument("limit", None), "limit", TRACE_LIMIT), TRACE_LIMIT))
        entries, cursor, truncated = await self.blocking(filtered_trace, self.emulator.core, after=cursor,
                                                         limit=limit, **filters)
        self.send_json({"entries": entries, "cursor": cursor, "truncated": truncated})


class TraceExportHandler(_ApiHandler):
    """``GET /console/api/trace/export?format=json|csv`` plus the filters of :class:`TraceHandler`: a download.

    Holds the newest :data:`EXPORT_LIMIT` matching entries, oldest first, masked as the page shows them. JSON:
    ``{"exported_at", "filters", "truncated", "entries": [...]}``; CSV: one row per entry with the columns of
    :data:`CSV_COLUMNS` (cells a spreadsheet would run as a formula get a leading ``'``).
    """

    async def get(self) -> None:
        fmt = self.get_query_argument("format", "json")
        if fmt not in ("json", "csv"):
            raise ConsoleError(400, "bad_request", "format must be json or csv")
        filters = _trace_filters(self)
        entries, _, truncated = await self.blocking(filtered_trace, self.emulator.core, after=0,
                                                    limit=EXPORT_LIMIT, **filters)
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.set_header("Content-Disposition", f'attachment; filename="iotda-trace-{stamp}.{fmt}"')
        if fmt == "json":
            self.set_header("Content-Type", "application/json; charset=UTF-8")
            self.finish(codec.dumps({"exported_at": _iso_utc(time.time()), "truncated": truncated,
                                     "filters": {k: v for k, v in filters.items() if v is not None},
                                     "entries": entries}))
            return
        self.set_header("Content-Type", "text/csv; charset=UTF-8")
        self.finish(trace_csv(entries))


#: Columns of a CSV export, in order.
CSV_COLUMNS = ("seq", "time_iso", "device_id", "direction", "kind", "topic", "encoding", "payload")


def _csv_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # a cell starting like a formula would be evaluated by a spreadsheet: device payloads are untrusted
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def trace_csv(entries: List[dict]) -> str:
    """``entries`` (as :func:`trace_entry_json` makes them) as CSV text with a header row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        writer.writerow([_csv_cell(entry.get(col)) for col in CSV_COLUMNS])
    return out.getvalue()


def _trace_filters(handler: tornado.web.RequestHandler) -> Dict[str, Optional[str]]:
    """The trace filters of a request's query (``device_id``, ``direction``, ``kind``, ``text``); 400 when bad."""
    device_id = handler.get_query_argument("device_id", None) or None
    direction = handler.get_query_argument("direction", None) or None
    if direction not in (None, "up", "down"):
        raise ConsoleError(400, "bad_request", "direction must be up or down")
    kind = handler.get_query_argument("kind", None) or None
    if kind is not None and len(kind) > 64:
        raise ConsoleError(400, "bad_request", "kind has at most 64 characters")
    text = (handler.get_query_argument("q", None) or "").strip() or None
    if text is not None and len(text) > 256:
        raise ConsoleError(400, "bad_request", "q has at most 256 characters")
    return {"device_id": device_id, "direction": direction, "kind": kind, "text": text}


def _matches(entry: dict, needle: str) -> bool:
    return any(needle in str(entry.get(key) or "").lower() for key in ("payload", "topic", "device_id", "kind"))


def filtered_trace(core: Any, *, device_id: Optional[str] = None, direction: Optional[str] = None,
                   kind: Optional[str] = None, text: Optional[str] = None, after: int = 0,
                   limit: int = TRACE_LIMIT) -> Tuple[List[dict], int, bool]:
    """``(entries, cursor, truncated)``: the newest ``limit`` trace entries after row ``after`` that match.

    Device, direction and kind are filtered in SQL (:meth:`PlatformCore.trace`); ``text`` is searched in the
    masked JSON view of the newest :data:`SEARCH_SCAN` of those (so a search never finds a masked secret).
    ``cursor`` is the newest row looked at; ``truncated`` tells that older matching entries were left out.
    """
    scan = max(SEARCH_SCAN, limit) if text else limit
    # one row more than looked at tells whether older matching rows were left out
    rows = core.trace(device_id, direction, kind, since_id=after, limit=scan + 1, newest=True)
    cursor = rows[-1].id if rows else after
    if text:
        skipped = len(rows) > scan
        needle = text.lower()
        entries = [e for e in (trace_entry_json(r) for r in rows[-scan:]) if _matches(e, needle)]
        truncated = skipped or len(entries) > limit
    else:
        truncated = len(rows) > limit
        entries = [trace_entry_json(r) for r in rows[-limit:]]
    return entries[-limit:], cursor, truncated


def _count_arg(raw: Optional[str], name: str, default: int) -> int:
    """A non-negative whole number query argument (``12`` or ``12.0``); 400 for anything else (inf, nan, -1...)."""
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or value != int(value) or value > 2 ** 63 - 1:
        raise ConsoleError(400, "bad_request", f"{name} must be a whole number >= 0")
    return int(value)


def _ota_service(emulator: Any) -> Any:
    try:
        return emulator.service("$ota")
    except Exception:  # noqa: BLE001 - KeyError / LookupError when the service is not installed
        return None


class OtaHandler(_ApiHandler):
    """``GET /console/api/ota``: the ``$ota`` platform service's tasks and packages.

    Answers ``{"available": true, "tasks": [...], "packages": [...]}``, or ``{"available": false,
    "message": ...}`` when the emulator runs without a ``$ota`` service.
    """

    async def get(self) -> None:
        service = _ota_service(self.emulator)
        if service is None:
            self.send_json({"available": False, "message": "the $ota platform service is not available"})
            return
        summary = await self.blocking(service.describe)
        summary = summary if isinstance(summary, dict) else {}
        tasks = summary.get("tasks")
        if not isinstance(tasks, list):       # a service without task summaries: its full task list
            list_tasks = getattr(service, "list_tasks", None)
            tasks = await self.blocking(list_tasks) if callable(list_tasks) else []
        packages = summary.get("packages")
        self.send_json({"available": True, "tasks": tasks,
                        "packages": packages if isinstance(packages, list) else []})


class MetaHandler(_ApiHandler):
    """``GET /console/api/meta``: what the page needs once: whether it runs behind a login, the trace kinds."""

    def get(self) -> None:
        self.send_json({"login_required": bool(_app_keys(self.emulator)), "trace_kinds": list(TRACE_KINDS)})


class LoginHandler(_ApiHandler):
    """``POST /console/api/login`` ``{access_key, secret_key}``: opens a session (when app keys are set).

    Answers ``{"login_required": bool}``; a wrong pair is a 401. The cookie is ``HttpOnly`` and
    ``SameSite=Strict`` (``Secure`` over HTTPS) and only carries a random session token.
    """

    public = True

    def post(self) -> None:
        keys = _app_keys(self.emulator)
        if not keys:
            self.send_json({"login_required": False})
            return
        body = self.body_object()
        access_key = body.get("access_key")
        secret_key = body.get("secret_key")
        expected = keys.get(access_key) if isinstance(access_key, str) else None
        if expected is None or not isinstance(secret_key, str) or \
                not hmac.compare_digest(_digest(expected), _digest(secret_key)):
            logger.info("console: login refused")
            raise ConsoleError(401, "unauthorized", "wrong access key or secret key")
        token = self.sessions.open(str(access_key), secret_key)   # a str: it named a configured key
        self.set_cookie(SESSION_COOKIE, token, path="/console", httponly=True, samesite="Strict",
                        secure=self.request.protocol == "https")
        self.send_json({"login_required": True})


class LogoutHandler(_ApiHandler):
    """``POST /console/api/logout``: ends the session of the request's cookie."""

    public = True

    def post(self) -> None:
        self.sessions.close(self.get_cookie(SESSION_COOKIE))
        self.clear_cookie(SESSION_COOKIE, path="/console")
        self.send_json({})


class _HtmlHandler(tornado.web.RequestHandler):
    """Pages: a strict Content-Security-Policy (no inline script); errors as the API's JSON."""

    def initialize(self, emulator: Any = None, sessions: Optional[ConsoleSessions] = None) -> None:  # noqa: D401
        self.emulator = emulator
        self.sessions = sessions if sessions is not None else ConsoleSessions()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(codec.dumps(error_json(status_code, "http_error", httputil.responses.get(status_code, "error"))))

    def send_page(self, name: str) -> None:
        with open(os.path.join(WEB_DIR, name), "rb") as fh:
            body = fh.read()
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Content-Security-Policy",
                        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
        self.finish(body)


class PageHandler(_HtmlHandler):
    """``GET /console``: the page itself (a redirect to the login page when app keys are set and no session)."""

    def get(self) -> None:
        keys = _app_keys(self.emulator)
        if keys and not self.sessions.valid(self.get_cookie(SESSION_COOKIE), keys):
            self.redirect("/console/login")
            return
        self.send_page("index.html")


class LoginPageHandler(_HtmlHandler):
    """``GET /console/login``: access key / secret key form (posts to ``/console/api/login``)."""

    def get(self) -> None:
        self.send_page("login.html")


class _StaticHandler(tornado.web.StaticFileHandler):
    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(codec.dumps(error_json(status_code, "http_error", httputil.responses.get(status_code, "error"))))


def console_routes(emulator: Any, executor: Any = None) -> List[tuple]:
    """Tornado routes ``(pattern, handler, kwargs)`` of the web console for ``emulator``.

    Mount them on the emulator's HTTP application. With ``emulator.app_keys`` set the JSON API needs a login
    session or a signed request (module docstring); otherwise it is open to local clients.
    ``executor`` (a ``concurrent.futures.Executor``, or a callable returning one, or None for the
    IOLoop's default) runs the blocking emulator calls.
    """
    sessions = ConsoleSessions()
    kw = {"emulator": emulator, "executor": executor, "sessions": sessions}
    page_kw = {"emulator": emulator, "sessions": sessions}
    dev = r"/console/api/devices/([A-Za-z0-9_\-]{1,128})"
    from iotda_emulator.http.console_manage import manage_routes   # it imports this module
    from iotda_emulator.http.console_platform import platform_routes   # so does this one
    return [
        (r"/console/?", PageHandler, page_kw),
        (r"/console/login/?", LoginPageHandler, page_kw),
        (r"/console/api/login/?", LoginHandler, kw),
        (r"/console/api/logout/?", LogoutHandler, kw),
        (r"/console/api/meta/?", MetaHandler, kw),
        (r"/console/static/(.*)", _StaticHandler, {"path": WEB_DIR}),
    ] + manage_routes(kw, dev) + [   # devices (list, create, delete, freeze...), charts, products, OTA, bootstrap
        (dev + r"/commands/?", CommandHandler, kw),
        (dev + r"/messages/?", MessageHandler, kw),
        (dev + r"/properties/?", PropertiesHandler, kw),
        (dev + r"/shadow/?", ShadowHandler, kw),
        (r"/console/api/trace/?", TraceHandler, kw),
        (r"/console/api/trace/export/?", TraceExportHandler, kw),
        (r"/console/api/ota/?", OtaHandler, kw),
    ] + platform_routes(kw, dev)   # remote configuration, broadcast, tunnels, async commands, groups and tags


__all__ = ["console_routes", "trace_entry_json", "ConsoleError", "WEB_DIR"]
