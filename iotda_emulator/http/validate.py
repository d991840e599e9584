"""Checks shared by every HTTP route file for strings that end up on the MQTT wire.

Each returns the message of a 400 naming the field, or None when the value is fine; the route files
raise it in their own error shape (``rest.bad_request`` or the console's error). The MQTT rules
themselves live in :mod:`iotda_emulator.topic_check` (the platform core applies them too).
"""
from __future__ import annotations

from typing import Any, Optional

from iotda_emulator.topic_check import topic_error

#: IoTDA's bound on a custom topic given through the API (``topic``, ``topic_full_name``), in UTF-8 bytes.
MAX_CUSTOM_TOPIC_BYTES = 128


def topic_field_error(field: str, value: Any, *, max_bytes: int = MAX_CUSTOM_TOPIC_BYTES) -> Optional[str]:
    """Why the topic (or topic suffix) given as ``field`` cannot be published to; None when absent or fine."""
    if value is None:
        return None
    problem = topic_error(value, max_bytes=max_bytes)
    return None if problem is None else f"'{field}' {problem}."


def topic_level_error(field: str, value: Any, *, max_bytes: int = 128) -> Optional[str]:
    """Like :func:`topic_field_error` for a value that becomes one topic level (an id or a name): no ``/`` either."""
    problem = topic_field_error(field, value, max_bytes=max_bytes)
    if problem is None and isinstance(value, str) and "/" in value:
        problem = f"'{field}' must not contain '/'."
    return problem
