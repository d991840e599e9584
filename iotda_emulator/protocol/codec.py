"""IoTDA payload JSON and time formats, as the emulator reads and writes them.

Sources: ``doc/protocol.md`` §2 (payloads are JSON objects, sent compact) and §6.5 (time formats):

* ``event_time`` and ``log_config.end_time``: UTC ``yyyyMMdd'T'HHmmss'Z'``; the HTTPS device API writes
  ``yyyy-MM-dd'T'HH:mm:ss.SSS'Z'``, which is accepted on input too;
* client id / password timestamp: UTC ``YYYYMMDDHH``;
* time sync fields and ``log_report.timestamp``: milliseconds since the epoch.

Payloads come from the network: :func:`loads_object` raises only :class:`PayloadError` (a ``ValueError``),
whatever the bytes are - invalid UTF-8, NaN, oversized integers or nesting deep enough to exhaust the
parser's recursion.
"""
from __future__ import annotations

import datetime as _dt
import json
import re
import time
from typing import Any, Optional, Tuple, Union

_UTC = _dt.timezone.utc

# One encoder shared by all calls (JSONEncoder.encode keeps no state between calls, so this is
# thread-safe); json.dumps() with options would build a new one per payload.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)

_EVENT_TIME_FORMAT = "%Y%m%dT%H%M%SZ"
_EVENT_TIME_RE = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_HTTPS_TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z")
_RULE_START_FORMAT = "%Y-%m-%d %H:%M:%S"


class PayloadError(ValueError):
    """A payload is not the JSON the protocol requires; ``str()`` is a short reason (never the payload)."""


# ---- JSON -----------------------------------------------------------------------------------------

def dumps(obj: Any) -> str:
    """Compact JSON text (``","`` and ``":"`` separators, non-ASCII kept as is), as IoTDA sends payloads."""
    return _ENCODER.encode(obj)


def dumps_bytes(obj: Any) -> bytes:
    """:func:`dumps` as UTF-8 bytes, ready to be an MQTT payload."""
    return _ENCODER.encode(obj).encode("utf-8")


def _no_constant(name: str) -> Any:
    # json accepts NaN/Infinity by default; RFC 8259 JSON has no such values
    raise PayloadError(f"payload is not JSON: {name} is not a JSON value")


# one decoder for every payload: json.loads(..., parse_constant=...) builds a new one per call
_DECODER = json.JSONDecoder(parse_constant=_no_constant)


def loads(payload: Union[bytes, bytearray, memoryview, str]) -> Any:
    """Parse a JSON payload (UTF-8 bytes or text) into any JSON value.

    Raises :class:`PayloadError` - and nothing else - when the payload is empty, not UTF-8 or not JSON.
    """
    if isinstance(payload, (bytes, bytearray, memoryview)):
        try:
            text = bytes(payload).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PayloadError(f"payload is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    elif isinstance(payload, str):
        text = payload
    else:
        raise PayloadError(f"payload is a {type(payload).__name__}, not bytes or text")
    if not text.strip():
        raise PayloadError("payload is empty")
    try:
        return _DECODER.decode(text)
    except PayloadError:
        raise
    except json.JSONDecodeError as exc:
        raise PayloadError(f"payload is not JSON: {exc.msg} at {exc.pos}") from None
    except RecursionError:
        raise PayloadError("payload is not usable JSON: nested too deeply") from None
    except ValueError as exc:   # e.g. an integer longer than int's digit limit (Python 3.11+)
        raise PayloadError(f"payload is not usable JSON: {exc}") from None


def loads_object(payload: Union[bytes, bytearray, memoryview, str]) -> dict:
    """Parse a payload that must be a JSON object (every documented IoTDA payload is one).

    Raises :class:`PayloadError` with a short reason otherwise.
    """
    obj = loads(payload)
    if not isinstance(obj, dict):
        raise PayloadError(f"payload is a JSON {_json_type(obj)}, not an object")
    return obj


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def as_int(value: Any) -> Optional[int]:
    """An integer read from untrusted JSON, or None.

    Accepts ints (not booleans), integral finite floats and ASCII decimal strings such as ``"-12"``
    (the Python SDK v1.2.0 sends ``device_send_time`` as a string, §3.3).
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None   # NaN and infinities are not integers
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?[0-9]{1,19}\s*", value):
        return int(value)
    return None


# ---- time -----------------------------------------------------------------------------------------

def now_ms() -> int:
    """Milliseconds since the epoch (time sync fields, ``log_report.timestamp``)."""
    return time.time_ns() // 1_000_000


def _utc(at: Optional[float]) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(time.time() if at is None else at, _UTC)


def utc_hour_stamp(at: Optional[float] = None) -> str:
    """UTC ``YYYYMMDDHH`` of ``at`` (epoch seconds; now when None): the client id / password timestamp."""
    return _utc(at).strftime("%Y%m%d%H")


_now_event_time: Tuple[int, str] = (-1, "")   # (epoch second, its event time): strftime per report is costly


def event_time(at: Optional[float] = None) -> str:
    """UTC ``yyyyMMdd'T'HHmmss'Z'`` of ``at`` (epoch seconds; now when None), e.g. ``20151212T121212Z``."""
    global _now_event_time
    if at is not None:
        return _utc(at).strftime(_EVENT_TIME_FORMAT)
    now = time.time()
    second, text = _now_event_time
    if int(now) != second:
        text = _utc(now).strftime(_EVENT_TIME_FORMAT)
        _now_event_time = (int(now), text)   # one tuple: a reader on another thread sees old or new, never half
    return text


def parse_event_time(text: Any) -> _dt.datetime:
    """An aware UTC datetime from ``yyyyMMdd'T'HHmmss'Z'`` or ``yyyy-MM-dd'T'HH:mm:ss[.SSS]'Z'``.

    Raises ``ValueError`` for anything else (also for impossible dates such as month 13).
    """
    if isinstance(text, str):
        try:
            if _EVENT_TIME_RE.fullmatch(text):
                return _dt.datetime.strptime(text, _EVENT_TIME_FORMAT).replace(tzinfo=_UTC)
            match = _HTTPS_TIME_RE.fullmatch(text)
            if match:
                fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if match.group(1) else "%Y-%m-%dT%H:%M:%SZ"
                return _dt.datetime.strptime(text, fmt).replace(tzinfo=_UTC)
        except ValueError:
            pass
    raise ValueError(f"not an IoTDA UTC time (yyyyMMdd'T'HHmmss'Z'): {text!r}"[:120])


def rule_start_time(at: _dt.datetime) -> str:
    """UTC ``YYYY-MM-DD HH:MM:SS``: a ``SIMPLE_TIMER`` ``startTime`` as devices receive it in ``rulesInfos``.

    §3.8 has no device-side page; the format is the one Huawei's SDKs parse (doc/protocol.md §3.8).
    A naive datetime is taken as UTC.
    """
    if at.tzinfo is not None:
        at = at.astimezone(_UTC)
    return at.strftime(_RULE_START_FORMAT)


def parse_rule_start_time(text: Any) -> _dt.datetime:
    """The aware UTC datetime of a ``SIMPLE_TIMER`` ``startTime`` (``YYYY-MM-DD HH:MM:SS``); ValueError otherwise."""
    if isinstance(text, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}", text):
        try:
            return _dt.datetime.strptime(text, _RULE_START_FORMAT).replace(tzinfo=_UTC)
        except ValueError:
            pass
    raise ValueError(f"not a 'YYYY-MM-DD HH:MM:SS' time: {text!r}"[:120])
