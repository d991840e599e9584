"""Every IoTDA MQTT topic, built and parsed in one place.

Nothing else in the SDK or the emulator writes a ``$oc/...`` string by hand: call a builder here,
or :func:`classify` to learn what an inbound topic is. Topic layout: ``iotda-protocol.md`` §2.1.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

PREFIX = "$oc/devices/"
REQUEST_ID_MARK = "request_id="

# Kinds of topic, as returned by classify().
MESSAGES_UP = "messages_up"
MESSAGES_DOWN = "messages_down"
COMMAND = "command"
COMMAND_RESPONSE = "command_response"
PROPERTIES_REPORT = "properties_report"
GATEWAY_PROPERTIES_REPORT = "gateway_properties_report"
PROPERTIES_SET = "properties_set"
PROPERTIES_SET_RESPONSE = "properties_set_response"
PROPERTIES_GET = "properties_get"
PROPERTIES_GET_RESPONSE = "properties_get_response"
SHADOW_GET = "shadow_get"
SHADOW_GET_RESPONSE = "shadow_get_response"
EVENTS_UP = "events_up"
EVENTS_DOWN = "events_down"
BOOTSTRAP_UP = "bootstrap_up"
BOOTSTRAP_DOWN = "bootstrap_down"
USER = "user"            # $oc/devices/{id}/user/...
OTHER = "other"          # anything else (custom policy topics, broadcast, ...)

# suffix after "$oc/devices/{id}/" -> kind; the request_id-carrying ones are matched by prefix.
_FIXED = {
    "sys/messages/up": MESSAGES_UP,
    "sys/messages/down": MESSAGES_DOWN,
    "sys/properties/report": PROPERTIES_REPORT,
    "sys/gateway/sub_devices/properties/report": GATEWAY_PROPERTIES_REPORT,
    "sys/events/up": EVENTS_UP,
    "sys/events/down": EVENTS_DOWN,
    "sys/bootstrap/up": BOOTSTRAP_UP,
    "sys/bootstrap/down": BOOTSTRAP_DOWN,
}
_WITH_REQUEST_ID = (  # longest first: "commands/response/" must win over "commands/"
    ("sys/commands/response/request_id=", COMMAND_RESPONSE),
    ("sys/commands/request_id=", COMMAND),
    ("sys/properties/set/response/request_id=", PROPERTIES_SET_RESPONSE),
    ("sys/properties/set/request_id=", PROPERTIES_SET),
    ("sys/properties/get/response/request_id=", PROPERTIES_GET_RESPONSE),
    ("sys/properties/get/request_id=", PROPERTIES_GET),
    ("sys/shadow/get/response/request_id=", SHADOW_GET_RESPONSE),
    ("sys/shadow/get/request_id=", SHADOW_GET),
)

_DEVICE_ID_RE = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")


def is_valid_device_id(device_id: str) -> bool:
    """True when ``device_id`` fits IoTDA's rule (1-128 of letters, digits, ``_`` and ``-``)."""
    return isinstance(device_id, str) and bool(_DEVICE_ID_RE.match(device_id))


def device_root(device_id: str) -> str:
    """``$oc/devices/{device_id}/``: the prefix every topic of one device starts with."""
    return f"{PREFIX}{device_id}/"


# ---- uplink (device -> platform) -------------------------------------------------------------

def messages_up(device_id: str) -> str:
    return f"{PREFIX}{device_id}/sys/messages/up"


def properties_report(device_id: str) -> str:
    return f"{PREFIX}{device_id}/sys/properties/report"


def gateway_properties_report(device_id: str) -> str:
    return f"{PREFIX}{device_id}/sys/gateway/sub_devices/properties/report"


def command_response(device_id: str, request_id: str) -> str:
    return f"{PREFIX}{device_id}/sys/commands/response/request_id={request_id}"


def properties_set_response(device_id: str, request_id: str) -> str:
    return f"{PREFIX}{device_id}/sys/properties/set/response/request_id={request_id}"


def properties_get_response(device_id: str, request_id: str) -> str:
    return f"{PREFIX}{device_id}/sys/properties/get/response/request_id={request_id}"


def shadow_get(device_id: str, request_id: str) -> str:
    return f"{PREFIX}{device_id}/sys/shadow/get/request_id={request_id}"


def events_up(device_id: str) -> str:
    return f"{PREFIX}{device_id}/sys/events/up"


def bootstrap_up(device_id: str) -> str:
    return f"{PREFIX}{device_id}/sys/bootstrap/up"


# ---- downlink (platform -> device) -----------------------------------------------------------

def messages_down(device_id: str) -> str:
    return f"{PREFIX}{device_id}/sys/messages/down"


def command(device_id: str, request_id: str) -> str:
    return f"{PREFIX}{device_id}/sys/commands/request_id={request_id}"


def properties_set(device_id: str, request_id: str) -> str:
    return f"{PREFIX}{device_id}/sys/properties/set/request_id={request_id}"


def properties_get(device_id: str, request_id: str) -> str:
    return f"{PREFIX}{device_id}/sys/properties/get/request_id={request_id}"


def shadow_get_response(device_id: str, request_id: str) -> str:
    return f"{PREFIX}{device_id}/sys/shadow/get/response/request_id={request_id}"


def events_down(device_id: str) -> str:
    return f"{PREFIX}{device_id}/sys/events/down"


def bootstrap_down(device_id: str) -> str:
    return f"{PREFIX}{device_id}/sys/bootstrap/down"


def user_topic(device_id: str, name: str) -> str:
    """``$oc/devices/{device_id}/user/{name}``: a product-defined custom topic."""
    return f"{PREFIX}{device_id}/user/{name.lstrip('/')}"


# ---- subscriptions ---------------------------------------------------------------------------

def device_downlink_subscriptions(device_id: str) -> list:
    """The system downlink filters a device subscribes to explicitly (design.md: needed on a plain broker)."""
    root = f"{PREFIX}{device_id}/sys/"
    return [
        root + "messages/down",
        root + "commands/#",
        root + "properties/set/#",
        root + "properties/get/#",
        root + "shadow/get/response/#",
        root + "events/down",
    ]


PLATFORM_UPLINK_FILTER = "$oc/devices/+/sys/#"   # what the platform core listens to
PLATFORM_USER_FILTER = "$oc/devices/+/user/#"    # custom topics published by devices


# ---- parsing ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class TopicInfo:
    """What :func:`classify` learned from a topic."""

    kind: str
    device_id: Optional[str] = None
    request_id: Optional[str] = None
    rest: Optional[str] = None   # the custom part of a user topic, or the whole topic for OTHER


def classify(topic: str) -> TopicInfo:
    """Tell what kind of IoTDA topic ``topic`` is, with its device id and request id.

    Unknown or foreign topics come back as kind ``OTHER`` (never an exception).
    """
    if not isinstance(topic, str) or not topic.startswith(PREFIX):
        return TopicInfo(OTHER, rest=topic if isinstance(topic, str) else None)
    body = topic[len(PREFIX):]
    slash = body.find("/")
    if slash <= 0:
        return TopicInfo(OTHER, rest=topic)
    device_id, suffix = body[:slash], body[slash + 1:]
    kind = _FIXED.get(suffix)
    if kind is not None:
        return TopicInfo(kind, device_id)
    # an optional "?request_id=..." tracing suffix on messages/up and properties/report
    base, _, query = suffix.partition("?")
    kind = _FIXED.get(base)
    if kind is not None:
        rid = query[len(REQUEST_ID_MARK):] if query.startswith(REQUEST_ID_MARK) else None
        return TopicInfo(kind, device_id, request_id=rid or None)
    for prefix, kind in _WITH_REQUEST_ID:
        if suffix.startswith(prefix):
            return TopicInfo(kind, device_id, request_id=suffix[len(prefix):])
    if suffix.startswith("user/"):
        return TopicInfo(USER, device_id, rest=suffix[len("user/"):])
    return TopicInfo(OTHER, device_id, rest=topic)


def request_id_of(topic: str) -> Optional[str]:
    """The text after the last ``request_id=`` in ``topic``, or None."""
    idx = topic.rfind(REQUEST_ID_MARK)
    if idx < 0:
        return None
    return topic[idx + len(REQUEST_ID_MARK):] or None


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT filter matching with ``+`` and ``#`` (used to route custom-topic listeners)."""
    if topic_filter == topic:
        return True
    f_parts = topic_filter.split("/")
    t_parts = topic.split("/")
    # MQTT 4.7.2: wildcards at the first level never match topics starting with '$'.
    if t_parts and t_parts[0].startswith("$") and f_parts and f_parts[0] in ("+", "#"):
        return False
    for i, part in enumerate(f_parts):
        if part == "#":
            return True
        if i >= len(t_parts):
            return False
        if part != "+" and part != t_parts[i]:
            return False
    return len(f_parts) == len(t_parts)


def policy_device_id(pattern: str, topic: str) -> Optional[str]:
    """The device id that a topic-policy pattern assigns to ``topic``, or None when it does not match.

    ``pattern`` is an MQTT filter in which the level ``%u`` stands for the device id (as in a Mosquitto ACL
    ``pattern`` line), e.g. ``policy/%u/#``. A pattern without ``%u`` never names a device.
    """
    p_parts, t_parts = pattern.split("/"), topic.split("/")
    device_id = None
    for i, part in enumerate(p_parts):
        if part == "#":
            return device_id
        if i >= len(t_parts):
            return None
        if part == "%u":
            device_id = t_parts[i] or None
        elif part != "+" and part != t_parts[i]:
            return None
    return device_id if len(p_parts) == len(t_parts) else None
