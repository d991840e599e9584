"""Make payloads safe to log: secrets, passwords, tokens and presigned URLs are masked.

Used for DEBUG payload logs only; nothing else in the SDK logs payloads.
"""
from __future__ import annotations

import json
import re
from typing import Any

MASK = "***"
_SENSITIVE_KEY = re.compile(
    r"(secret|password|passwd|pwd|token|authorization|signature|credential|private|key_password|"
    r"sign$|^sign_|access_?key|^url$|_url$|^urls?$)", re.IGNORECASE)
_URL = re.compile(r"(?i)\b((?:https?|ftp|wss?)://[^\s/?#\"']+)[^\s\"']*")
_MAX_LOG = 2048


def _redact_obj(obj: Any) -> Any:
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if isinstance(k, str) and _SENSITIVE_KEY.search(k) and v not in (None, ""):
                out[k] = MASK if not isinstance(v, str) or not _URL.match(v) else _URL.sub(r"\1/" + MASK, v)
            else:
                out[k] = _redact_obj(v)
        return out
    if isinstance(obj, list):
        return [_redact_obj(v) for v in obj]
    if isinstance(obj, str):
        return redact_text(obj)
    return obj


def redact_text(text: str) -> str:
    """Mask the path and query of every URL in ``text`` (presigned URLs carry credentials there)."""
    return _URL.sub(r"\1/" + MASK, text)


def redact_payload(payload: Any) -> str:
    """A printable, redacted, length-capped rendering of an MQTT payload for DEBUG logs."""
    if payload is None:
        return "<empty>"
    if isinstance(payload, (bytes, bytearray, memoryview)):
        raw = bytes(payload)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return f"<{len(raw)} bytes binary>"
    elif isinstance(payload, str):
        text = payload
    else:
        text = repr(payload)
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        out = redact_text(text)
    else:
        out = json.dumps(_redact_obj(obj), ensure_ascii=False, separators=(",", ":"))
    if len(out) > _MAX_LOG:
        out = out[:_MAX_LOG] + f"...<{len(out)} chars>"
    return out
