"""Argument checks for the public publish API: wrong types fail at the call with an error naming the parameter.

Why: without them a wrong type surfaced as ``AttributeError: 'str' object has no attribute 'to_dict'`` deep
inside the SDK, or worse, went out on the wire (a ``request_id=None`` topic, a ServiceProperty without a
service id that the platform silently drops), or blew up later on the dispatcher thread (a listener
without ``on_success``).
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Iterable, Optional, Type

if TYPE_CHECKING:
    from iot_device_sdk_python.client.request.service_property import ServiceProperty


def check_listener(listener: Any, name: str = "listener") -> None:
    """None or an object with ``on_success`` and ``on_failure`` (an ActionListener)."""
    if listener is None:
        return
    if not (callable(getattr(listener, "on_success", None)) and callable(getattr(listener, "on_failure", None))):
        raise TypeError(f"{name}: must be an ActionListener (on_success/on_failure) or None, "
                        f"got {type(listener).__name__}")


def check_request_id(request_id: Any, name: str = "request_id") -> None:
    """A non-empty str usable in a topic level (no '/', '+', '#')."""
    if not isinstance(request_id, str):
        raise TypeError(f"{name}: must be a str, got {type(request_id).__name__}")
    if not request_id or any(c in request_id for c in "/+#"):
        raise ValueError(f"{name}: must be non-empty without '/', '+' or '#', got {request_id!r}")


def check_instance(value: Any, cls: type, name: str) -> None:
    if not isinstance(value, cls):
        raise TypeError(f"{name}: must be a {cls.__name__}, got {type(value).__name__}")


_service_property_cls: Optional[Type["ServiceProperty"]] = None


def _service_property() -> Type["ServiceProperty"]:
    # imported on first use (transport must not import client at module load), then kept: an import
    # statement per call is a measurable part of report_properties (doc/performance.md)
    global _service_property_cls
    if _service_property_cls is None:
        from iot_device_sdk_python.client.request.service_property import ServiceProperty
        _service_property_cls = ServiceProperty
    return _service_property_cls


def check_service_properties(services: Any, name: str = "services", allow_empty: bool = True) -> None:
    """A list/tuple of ServiceProperty, each with a non-empty str service_id and dict properties."""
    ServiceProperty = _service_property_cls or _service_property()
    if services.__class__ is list and services:  # fast path: plain ServiceProperty items, all valid
        for sp in services:
            if sp.__class__ is not ServiceProperty:
                break
            sid = sp._service_id
            if sid.__class__ is not str or not sid or sp._properties.__class__ is not dict:
                break
        else:
            return
    if not isinstance(services, (list, tuple)):
        raise TypeError(f"{name}: must be a list of ServiceProperty, got {type(services).__name__}")
    if not services and not allow_empty:
        raise ValueError(f"{name}: must not be empty")
    for i, sp in enumerate(services):
        if not isinstance(sp, ServiceProperty):
            raise TypeError(f"{name}[{i}]: must be a ServiceProperty, got {type(sp).__name__}")
        if not isinstance(sp.service_id, str) or not sp.service_id:
            raise ValueError(f"{name}[{i}].service_id: must be a non-empty str, got {sp.service_id!r}")
        if not isinstance(sp.properties, dict):
            raise TypeError(f"{name}[{i}].properties: must be a dict, got {type(sp.properties).__name__}")


def check_str(value: Any, name: str, allow_empty: bool = False) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name}: must be a str, got {type(value).__name__}")
    if not value and not allow_empty:
        raise ValueError(f"{name}: must not be empty")


def names(items: Iterable[Any]) -> str:  # pragma: no cover - helper for messages
    return ", ".join(type(i).__name__ for i in items)


# Characters Mosquitto refuses in topic names (MQTT 3.1.1 §1.5.3: U+0000, controls, noncharacters); a
# PUBLISH or SUBSCRIBE carrying one makes the broker drop the connection, so a buffered message with such a
# topic would be re-sent after every reconnect and drop the link each time (a poison message).
_BAD_TOPIC_CHARS = re.compile(
    "[\x00-\x1f\x7f-\x9f\ufdd0-\ufdef\ufffe\uffff"
    + "".join(chr(p * 0x10000 + 0xFFFE) + chr(p * 0x10000 + 0xFFFF) for p in range(1, 17)) + "]")


def topic_problem(topic: Any) -> Optional[str]:
    """Why ``topic`` cannot go to the broker (None when it can): type, UTF-8 length, forbidden characters."""
    if not isinstance(topic, str) or not topic:
        return f"invalid topic {topic!r}"
    try:
        size = len(topic.encode("utf-8"))
    except UnicodeEncodeError:
        return "invalid topic: not encodable as UTF-8"
    if size > 65535:
        return f"invalid topic: {size} bytes of UTF-8 (at most 65535)"
    bad = _BAD_TOPIC_CHARS.search(topic)
    if bad:
        return (f"invalid topic: contains U+{ord(bad.group()):04X} (a control character or noncharacter "
                f"that the broker refuses)")
    return None
