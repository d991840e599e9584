"""What the broker accepts as a PUBLISH topic: one rule set for the REST API, the console and the core.

MQTT 3.1.1 §1.5.3 / §4.7 and Mosquitto's UTF-8 check: a topic name is non-empty UTF-8 of at most 65535
bytes, without U+0000, surrogates (U+D800-U+DFFF), control characters (U+0001-U+001F, U+007F-U+009F) or
non-characters (U+FDD0-U+FDEF, U+xFFFE/U+xFFFF), and without the wildcards ``+``/``#`` (filters only).
Mosquitto drops the connection of a client publishing anything else; a QoS 1 packet paho already queued
would then be re-sent, and refused, on every reconnect. So nothing reaches paho unless it passes here.
"""
from __future__ import annotations

from typing import Any, Optional

#: Longest MQTT string (a two-byte length prefix).
MAX_TOPIC_BYTES = 65535


def _bad_char(ch: str) -> Optional[str]:
    cp = ord(ch)
    if cp == 0:
        return "NUL"
    if cp < 0x20 or 0x7F <= cp <= 0x9F:
        return f"control character U+{cp:04X}"
    if 0xD800 <= cp <= 0xDFFF:
        return f"surrogate U+{cp:04X}"
    if 0xFDD0 <= cp <= 0xFDEF or (cp & 0xFFFF) >= 0xFFFE:
        return f"non-character U+{cp:04X}"
    if ch in "+#":
        return f"wildcard {ch!r}"
    return None


def topic_error(topic: Any, *, max_bytes: int = MAX_TOPIC_BYTES) -> Optional[str]:
    """Why ``topic`` cannot be published to (a short phrase), or None when it can."""
    if not isinstance(topic, str):
        return "must be a string"
    if not topic:
        return "must not be empty"
    for ch in topic:
        problem = _bad_char(ch)
        if problem is not None:
            return f"must not contain {problem}"
    size = len(topic.encode("utf-8"))   # cannot fail: surrogates were refused above
    if size > max_bytes:
        return f"must be at most {max_bytes} bytes of UTF-8 (got {size})"
    return None


def check_publish_topic(topic: Any) -> str:
    """``topic`` when the broker will accept it in a PUBLISH; ``ValueError`` saying why not otherwise."""
    problem = topic_error(topic)
    if problem is not None:
        raise ValueError(f"invalid MQTT topic {topic!r}: it {problem}")
    return topic
