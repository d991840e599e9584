"""Every IoTDA MQTT topic, built and parsed in one place.

Nothing else in the SDK or the emulator writes a ``$oc/...`` string by hand: call a builder here,
or :func:`classify` to learn what an inbound topic is. Topic layout: ``doc/protocol.md`` §2.1.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Optional

from paho.mqtt.client import topic_matches_sub

PREFIX = "$oc/devices/"
REQUEST_ID_MARK = "request_id="
#: Broadcast topics (doc/protocol.md §4.3): the whole topic starts with this; devices only subscribe.
BROADCAST_PREFIX = "$oc/broadcast/"

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


#: Query appended to a report topic whose payload is gzip-compressed (doc/protocol.md §2.11).
GZIP_QUERY = "?encoding=gzip"


def gzip_topic(report_topic: str) -> str:
    """``report_topic`` (``messages/up``, ``properties/report`` or the gateway batch report) marked as gzip."""
    return report_topic + GZIP_QUERY


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

def device_downlink_subscriptions(device_id: str) -> List[str]:
    """The system downlink filters a device subscribes to explicitly (doc/protocol.md §2: needed on a plain broker)."""
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


# A request id is exactly one topic level: no separator, no MQTT wildcard, no NUL, and no "?" (the topics
# that carry a request id in their path take no query, doc/protocol.md §2).
_NOT_IN_REQUEST_ID = frozenset("/+#?\x00")
# Report topics whose "?" query IoTDA documents (doc/protocol.md §2, §2.11), and the values it may carry.
_QUERY_KINDS = frozenset({MESSAGES_UP, PROPERTIES_REPORT, GATEWAY_PROPERTIES_REPORT})
_ENCODINGS = ("gzip",)


def _is_request_id(text: str) -> bool:
    return bool(text) and not any(c in _NOT_IN_REQUEST_ID for c in text)


def _query_request_id(query: str) -> "tuple[bool, Optional[str]]":
    """``(well formed, request id)`` of a report topic's query: ``&``-separated ``request_id={id}`` and
    ``encoding=gzip``, each at most once; any other parameter makes the topic unknown."""
    request_id: Optional[str] = None
    seen = set()
    for pair in query.split("&"):
        key, sep, value = pair.partition("=")
        if not sep or key in seen:
            return False, None
        seen.add(key)
        if key == "request_id" and _is_request_id(value):
            request_id = value
        elif not (key == "encoding" and value in _ENCODINGS):
            return False, None
    return True, request_id


def classify(topic: str) -> TopicInfo:
    """Tell what kind of IoTDA topic ``topic`` is, with its device id and request id.

    Only the exact topics of doc/protocol.md §2.1 get a system kind: an invalid device id, an empty
    request id or one holding ``/``, ``+``, ``#``, ``?`` or NUL, extra levels, or a ``?`` query other than
    ``request_id={id}``/``encoding=gzip`` on ``messages/up`` and the two property reports make the
    topic ``OTHER`` (never an exception). ``device_id`` is None when the id is not a valid IoTDA one.
    """
    if not isinstance(topic, str) or not topic.startswith(PREFIX):
        return TopicInfo(OTHER, rest=topic if isinstance(topic, str) else None)
    device_id, sep, suffix = topic[len(PREFIX):].partition("/")
    if not sep or not is_valid_device_id(device_id):
        return TopicInfo(OTHER, rest=topic)
    kind = _FIXED.get(suffix)
    if kind is not None:
        return TopicInfo(kind, device_id)
    base, qmark, query = suffix.partition("?")
    kind = _FIXED.get(base)
    if kind is not None:
        ok, rid = _query_request_id(query) if kind in _QUERY_KINDS else (False, None)
        if ok:
            return TopicInfo(kind, device_id, request_id=rid)
        return TopicInfo(OTHER, device_id, rest=topic)
    for prefix, kind in _WITH_REQUEST_ID:
        if suffix.startswith(prefix):
            rid = suffix[len(prefix):]
            if _is_request_id(rid):
                return TopicInfo(kind, device_id, request_id=rid)
            return TopicInfo(OTHER, device_id, rest=topic)
    if suffix.startswith("user/") and len(suffix) > len("user/"):
        return TopicInfo(USER, device_id, rest=suffix[len("user/"):])
    return TopicInfo(OTHER, device_id, rest=topic)


def request_id_of(topic: str) -> Optional[str]:
    """The request id of ``topic``, or None.

    For an ``$oc/devices/...`` topic it is the one :func:`classify` finds (None for a malformed topic);
    for any other topic, the text after the last ``request_id=``.
    """
    if isinstance(topic, str) and topic.startswith(PREFIX):
        return classify(topic).request_id
    idx = topic.rfind(REQUEST_ID_MARK)
    if idx < 0:
        return None
    return topic[idx + len(REQUEST_ID_MARK):] or None


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT filter matching with ``+`` and ``#`` (used to route custom-topic listeners).

    paho's ``topic_matches_sub`` (which also keeps first-level wildcards off ``$`` topics, MQTT 4.7.2).
    """
    return topic_matches_sub(topic_filter, topic)


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
