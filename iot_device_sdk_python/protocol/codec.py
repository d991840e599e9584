"""JSON and time helpers shared by the SDK and the emulator (``doc/protocol.md`` §6.5)."""
from __future__ import annotations

import datetime as _dt
import json
import re
import time
from typing import Any, Dict

_COMPACT = (",", ":")
# One encoder for every call: json.dumps() with non-default options builds a new JSONEncoder per call,
# which is a measurable part of each publish (doc/performance.md). With the C accelerator we call the
# C encoder exactly as JSONEncoder.encode() does (fresh circular-reference markers per call, so it is
# thread-safe and the output and errors are the same), without the two Python layers in between.
_ENCODER = json.JSONEncoder(separators=_COMPACT, ensure_ascii=False)
_c_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)
_c_encode_str = getattr(json.encoder, "c_encode_basestring", None)
if _c_make_encoder is not None and _c_encode_str is not None:
    _default = _ENCODER.default

    def _encode(obj: Any) -> str:
        return "".join(_c_make_encoder({}, _default, _c_encode_str, None, ":", ",", False, False, True)(obj, 0))
else:  # pragma: no cover - interpreters without the C accelerator
    def _encode(obj: Any) -> str:
        return _ENCODER.encode(obj)


SYSTEM_SERVICE_PREFIX = "$"

#: :func:`as_int` reads decimal strings of at most this many digits (a 64-bit integer has 19).
MAX_INT_DIGITS = 19
_INT_TEXT_RE = re.compile(r"[ \t]*[-+]?[0-9]{1,%d}[ \t]*" % MAX_INT_DIGITS)
_EVENT_TIME_RE = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_HTTPS_TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")


def is_system_service(service_id: Any) -> bool:
    """True for the platform's system services (``$device_rule``, ``$ota``, ...), whose ids start with ``$``."""
    return isinstance(service_id, str) and service_id.startswith(SYSTEM_SERVICE_PREFIX)


def dumps(obj: Any) -> str:
    """Compact JSON (no spaces, UTF-8 kept) as IoTDA payloads are sent."""
    return _encode(obj)


def dumps_bytes(obj: Any) -> bytes:
    """:func:`dumps` encoded as UTF-8 bytes, ready for an MQTT payload."""
    return _encode(obj).encode("utf-8")


class _NotJson(ValueError):
    """Raised from inside ``json.loads`` for text that Python's parser takes but JSON does not have."""


def _refuse_constant(name: str) -> Any:
    raise _NotJson(f"payload is not JSON: {name} is not a JSON value")


def loads_object(payload: Any) -> Dict[str, Any]:
    """Parse a payload (bytes or str) that must be a JSON object.

    Raises ``ValueError`` with a short reason when it is not UTF-8, not JSON (``NaN``/``Infinity``,
    which Python's ``json`` would take, are not JSON: RFC 8259), nested too deeply for the parser
    (``RecursionError`` inside ``json``) or not an object.
    """
    if isinstance(payload, (bytes, bytearray, memoryview)):
        try:
            payload = bytes(payload).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"payload is not UTF-8: {exc.reason}") from None
    if not isinstance(payload, str):
        raise ValueError(f"payload has type {type(payload).__name__}, expected bytes or str")
    try:
        obj = json.loads(payload, parse_constant=_refuse_constant) if payload else None
    except json.JSONDecodeError as exc:
        raise ValueError(f"payload is not JSON: {exc.msg} at {exc.pos}") from None
    except RecursionError:  # e.g. {"paras": [[[[...]]]]} 100,000 levels deep: untrusted input, not a bug
        raise ValueError("payload JSON is nested too deeply") from None
    except _NotJson as exc:
        raise ValueError(str(exc)) from None
    except ValueError as exc:  # e.g. an integer beyond int's digit limit (Python 3.11+)
        raise ValueError(f"payload is not usable JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"payload JSON is {type(obj).__name__}, expected an object")
    return obj


def now_ms() -> int:
    """Milliseconds since the epoch (time sync, log_report timestamps)."""
    return time.time_ns() // 1_000_000


def utc_hour_stamp(at: float | None = None) -> str:
    """UTC ``YYYYMMDDHH``: the timestamp in client ids and the HMAC password key."""
    t = _dt.datetime.fromtimestamp(time.time() if at is None else at, _dt.timezone.utc)
    return t.strftime("%Y%m%d%H")


def event_time(at: float | None = None) -> str:
    """UTC ``yyyyMMdd'T'HHmmss'Z'``: the format IoTDA documents for event_time."""
    t = _dt.datetime.fromtimestamp(time.time() if at is None else at, _dt.timezone.utc)
    return t.strftime("%Y%m%dT%H%M%SZ")


def parse_event_time(text: str) -> _dt.datetime:
    """Parse an IoTDA ``event_time`` as an aware UTC datetime.

    Accepted shapes, exactly: ``yyyyMMdd'T'HHmmss'Z'`` (what the MQTT API documents, e.g.
    ``20251212T121212Z``) and, on purpose, ``yyyy-MM-dd'T'HH:mm:ss.SSS'Z'`` (what IoTDA's HTTPS device
    API writes, doc/protocol.md §6.5). Raises ``ValueError`` on anything else, including impossible dates.
    """
    if isinstance(text, str):
        fmt = ("%Y%m%dT%H%M%SZ" if _EVENT_TIME_RE.fullmatch(text) else
               "%Y-%m-%dT%H:%M:%S.%fZ" if _HTTPS_TIME_RE.fullmatch(text) else None)
        if fmt is not None:
            try:
                return _dt.datetime.strptime(text, fmt).replace(tzinfo=_dt.timezone.utc)
            except ValueError:  # month 13, February 30, ...
                pass
    raise ValueError(f"not an IoTDA time (yyyyMMdd'T'HHmmss'Z'): {text!r}"[:120])


def rule_start_time(at: _dt.datetime) -> str:
    """UTC ``YYYY-MM-DD HH:MM:SS``: a SIMPLE_TIMER ``startTime`` as devices receive it in ``rulesInfos``
    (the application API gives the same instant as ``yyyyMMdd'T'HHmmss'Z'``)."""
    if at.tzinfo is not None:
        at = at.astimezone(_dt.timezone.utc)
    return at.strftime("%Y-%m-%d %H:%M:%S")


def as_int(value: Any) -> "int | None":
    """An integer read from untrusted JSON, or None for anything that is not one.

    Accepts ints (not bools), integral finite floats and ASCII decimal strings of at most
    :data:`MAX_INT_DIGITS` digits with an optional sign and surrounding blanks, such as ``"-12"``.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None  # NaN and infinities are not integers
    if isinstance(value, str) and _INT_TEXT_RE.fullmatch(value):
        return int(value)
    return None
