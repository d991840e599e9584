"""JSON and time helpers shared by the SDK and the emulator (``iotda-protocol.md`` §6.5)."""
from __future__ import annotations

import datetime as _dt
import json
import time
from typing import Any

_COMPACT = (",", ":")
# One encoder for every call: json.dumps() with non-default options builds a new JSONEncoder per call,
# which is a measurable part of each publish (doc/performance.md). With the C accelerator we call the
# C encoder exactly as JSONEncoder.encode() does (fresh circular-reference markers per call, so it is
# thread-safe and the output and errors are the same), without the two Python layers in between.
_ENCODER = json.JSONEncoder(separators=_COMPACT, ensure_ascii=False)
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_c_encode_str = getattr(json.encoder, "c_encode_basestring", None)
if _c_make_encoder is not None and _c_encode_str is not None:
    _default = _ENCODER.default

    def _encode(obj: Any) -> str:
        return "".join(_c_make_encoder({}, _default, _c_encode_str, None, ":", ",", False, False, True)(obj, 0))
else:  # pragma: no cover - interpreters without the C accelerator
    _encode = _ENCODER.encode


def dumps(obj: Any) -> str:
    """Compact JSON (no spaces, UTF-8 kept) as IoTDA payloads are sent."""
    return _encode(obj)


def dumps_bytes(obj: Any) -> bytes:
    """:func:`dumps` encoded as UTF-8 bytes, ready for an MQTT payload."""
    return _encode(obj).encode("utf-8")


def loads_object(payload: Any) -> dict:
    """Parse a payload (bytes or str) that must be a JSON object.

    Raises ``ValueError`` with a short reason when it is not UTF-8, not JSON, nested too deeply for the
    parser (``RecursionError`` inside ``json``) or not an object.
    """
    if isinstance(payload, (bytes, bytearray, memoryview)):
        try:
            payload = bytes(payload).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"payload is not UTF-8: {exc.reason}") from None
    if not isinstance(payload, str):
        raise ValueError(f"payload has type {type(payload).__name__}, expected bytes or str")
    try:
        obj = json.loads(payload) if payload else None
    except json.JSONDecodeError as exc:
        raise ValueError(f"payload is not JSON: {exc.msg} at {exc.pos}") from None
    except RecursionError:  # e.g. {"paras": [[[[...]]]]} 100,000 levels deep: untrusted input, not a bug
        raise ValueError("payload JSON is nested too deeply") from None
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
    """Parse ``yyyyMMdd'T'HHmmss'Z'`` (also the dashed ``yyyy-MM-dd'T'HH:mm:ss[.SSS]'Z'`` form) as aware UTC.

    Raises ``ValueError`` on anything else.
    """
    if not isinstance(text, str):
        raise ValueError("event time must be a string")
    for fmt in ("%Y%m%dT%H%M%SZ", "%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return _dt.datetime.strptime(text, fmt).replace(tzinfo=_dt.timezone.utc)
        except ValueError:
            continue
    raise ValueError(f"not an IoTDA time: {text!r}")


def rule_start_time(at: _dt.datetime) -> str:
    """UTC ``YYYY-MM-DD HH:MM:SS``: a SIMPLE_TIMER ``startTime`` as devices receive it in ``rulesInfos``
    (the application API gives the same instant as ``yyyyMMdd'T'HHmmss'Z'``)."""
    if at.tzinfo is not None:
        at = at.astimezone(_dt.timezone.utc)
    return at.strftime("%Y-%m-%d %H:%M:%S")


def as_int(value: Any) -> "int | None":
    """An integer read from untrusted JSON: ints (not bools), integral floats and decimal strings such as
    ``"-12"``; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None
