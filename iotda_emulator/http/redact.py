"""Secrets, tokens and presigned URLs taken out of what the HTTP side serves (the message trace).

The trace keeps every payload as sent (the Python API ``Emulator.trace()`` returns it raw: tests compare
exact bytes, and whoever holds the Python object holds the store and its secrets anyway). Everything
served over HTTP goes through :func:`redact_text` first, so the unauthenticated console (the default)
does not hand a local web page or process the ``deviceSecret`` of a bootstrap answer, an OTA
``access_token`` or a presigned upload URL.

Rules: in a JSON payload, the value of every key whose name mentions a secret, password, access or
refresh token, signature, credential or private key becomes :data:`MASK`; in every string (JSON or plain
text), the query string of an ``http(s)://`` URL becomes :data:`MASK` (presigned URLs carry their
signature there). Payloads that are not UTF-8 (shown base64) are served unchanged: the emulator puts no
secrets in binary payloads.
"""
from __future__ import annotations

import json
import re
from typing import Any

MASK = "***"

# Key names that carry a secret in IoTDA payloads (deviceSecret, secret, password, access_token,
# tunnel_access_token...). A bare "token" is left alone: applications use it for ordinary data.
_SECRET_KEY = re.compile(r"secret|passw|access_?token|refresh_?token|signature|credential|private_?key",
                         re.IGNORECASE)
# The query is optional in the pattern so that a URL without one is consumed and skipped, never retried from
# every later "http" inside it: with a mandatory "?" a device's "http://ahttp://a..." payload made the scan
# quadratic (128 KB took 12 s, the GIL held) whenever the console served the trace.
_URL_QUERY = re.compile(r"(https?://[^\s\"'?#]*)(\?[^\s\"'#]*)?", re.IGNORECASE)
# "key": "value" pairs in text that is not valid JSON (a truncated or hand-written payload)
_TEXT_PAIR = re.compile(r'("(?P<key>[^"\\]{1,64})"\s*:\s*)"(?:[^"\\]|\\.)*"')


def _mask_urls(text: str) -> str:
    return _URL_QUERY.sub(lambda m: f"{m.group(1)}?{MASK}" if m.group(2) is not None else m.group(0), text)


def redact_value(value: Any) -> Any:
    """``value`` (parsed JSON) with secret-named keys masked and URL query strings removed, recursively."""
    if isinstance(value, dict):
        return {k: (MASK if isinstance(k, str) and _SECRET_KEY.search(k) and v is not None else redact_value(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    if isinstance(value, str):
        return _mask_urls(value)
    return value


def redact_text(text: str) -> str:
    """A served payload text with its secrets masked (JSON with something masked is re-encoded compactly)."""
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        parsed = None
    else:
        if isinstance(parsed, (dict, list)):
            cleaned = redact_value(parsed)
            # untouched payloads are served byte for byte as sent
            return text if cleaned == parsed else json.dumps(cleaned, ensure_ascii=False, separators=(",", ":"))
    masked = _TEXT_PAIR.sub(lambda m: f'{m.group(1)}"{MASK}"' if _SECRET_KEY.search(m.group("key")) else m.group(0),
                            text)
    return _mask_urls(masked)


__all__ = ["MASK", "redact_text", "redact_value"]
