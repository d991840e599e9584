"""IoTDA's MQTT topics: one catalogue, from which topics are both built and recognised.

Source: ``doc/protocol.md`` §2.1 (IoTDA API reference page iot_06_v5_3004 and the per-topic pages).
Every ``$oc/...`` string the emulator publishes or inspects comes from here.

A device topic is ``$oc/devices/{device_id}/`` followed by a path of the catalogue. Paths of
request/response pairs end with one level ``request_id={request_id}``. ``messages/up`` and
``properties/report`` may carry a ``?request_id=...`` query for tracing (§2, general rules); the C SDK
also sends ``?encoding=gzip`` there and on the gateway batch report (SDK evidence), so those three
accept a query.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, FrozenSet, List, Optional, Tuple

PREFIX = "$oc/devices/"
BROADCAST_PREFIX = "$oc/broadcast/"
REQUEST_ID_LEVEL = "request_id="

# ---- kinds (the values are also the emulator's trace kinds, so they never change) ----------------
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
USER = "user"            # $oc/devices/{id}/user/{custom}  (§4.1)
BROADCAST = "broadcast"  # $oc/broadcast/{...}             (§4.3)
OTHER = "other"          # anything else: policy topics, bridges, malformed $oc topics

UP = "up"
DOWN = "down"


@dataclass(frozen=True)
class _Entry:
    kind: str
    direction: str
    levels: Tuple[str, ...]   # path levels after "$oc/devices/{id}/", without the request_id level
    with_request_id: bool
    query_allowed: bool = False


# §2.1 rows 1-16, in the table's order.
_CATALOGUE: Tuple[_Entry, ...] = (
    _Entry(MESSAGES_UP, UP, ("sys", "messages", "up"), False, query_allowed=True),
    _Entry(MESSAGES_DOWN, DOWN, ("sys", "messages", "down"), False),
    _Entry(COMMAND, DOWN, ("sys", "commands"), True),
    _Entry(COMMAND_RESPONSE, UP, ("sys", "commands", "response"), True),
    _Entry(PROPERTIES_REPORT, UP, ("sys", "properties", "report"), False, query_allowed=True),
    _Entry(GATEWAY_PROPERTIES_REPORT, UP, ("sys", "gateway", "sub_devices", "properties", "report"), False,
           query_allowed=True),
    _Entry(PROPERTIES_SET, DOWN, ("sys", "properties", "set"), True),
    _Entry(PROPERTIES_SET_RESPONSE, UP, ("sys", "properties", "set", "response"), True),
    _Entry(PROPERTIES_GET, DOWN, ("sys", "properties", "get"), True),
    _Entry(PROPERTIES_GET_RESPONSE, UP, ("sys", "properties", "get", "response"), True),
    _Entry(SHADOW_GET, UP, ("sys", "shadow", "get"), True),
    _Entry(SHADOW_GET_RESPONSE, DOWN, ("sys", "shadow", "get", "response"), True),
    _Entry(EVENTS_UP, UP, ("sys", "events", "up"), False),
    _Entry(EVENTS_DOWN, DOWN, ("sys", "events", "down"), False),
    _Entry(BOOTSTRAP_UP, UP, ("sys", "bootstrap", "up"), False),
    _Entry(BOOTSTRAP_DOWN, DOWN, ("sys", "bootstrap", "down"), False),
)
_BY_KIND: Dict[str, _Entry] = {e.kind: e for e in _CATALOGUE}
_BY_LEVELS: Dict[Tuple[Tuple[str, ...], bool], _Entry] = {(e.levels, e.with_request_id): e for e in _CATALOGUE}

#: Kinds a device publishes / the platform publishes (the "direction" column of §2.1).
UPLINK_KINDS: FrozenSet[str] = frozenset(e.kind for e in _CATALOGUE if e.direction == UP)
DOWNLINK_KINDS: FrozenSet[str] = frozenset(e.kind for e in _CATALOGUE if e.direction == DOWN)
#: Kinds whose topic ends with a ``request_id=`` level.
REQUEST_ID_KINDS: FrozenSet[str] = frozenset(e.kind for e in _CATALOGUE if e.with_request_id)
#: Response kind -> the request kind it answers (matched by the request id in the topic, §6.1).
REQUEST_OF_RESPONSE: Dict[str, str] = {
    COMMAND_RESPONSE: COMMAND,
    PROPERTIES_SET_RESPONSE: PROPERTIES_SET,
    PROPERTIES_GET_RESPONSE: PROPERTIES_GET,
    SHADOW_GET_RESPONSE: SHADOW_GET,
}

# iot_06_v5_7010 / limits table §7.1: 1-128 letters, digits, "_" and "-".
_DEVICE_ID_RE = re.compile(r"[A-Za-z0-9_\-]{1,128}")
# One topic level must not contain separators, MQTT wildcards or NUL (MQTT 3.1.1 §4.7.3, §1.5.3).
_NOT_IN_LEVEL = frozenset("/+#\x00")


def is_valid_device_id(device_id: object) -> bool:
    """True when ``device_id`` fits IoTDA's rule for device ids (1-128 of ``A-Z a-z 0-9 _ -``)."""
    return isinstance(device_id, str) and _DEVICE_ID_RE.fullmatch(device_id) is not None


def _is_level(text: object) -> bool:
    return isinstance(text, str) and text != "" and not any(c in _NOT_IN_LEVEL for c in text)


def _level(value: object, what: str) -> str:
    if not _is_level(value):
        raise ValueError(f"{what} {value!r} cannot be one topic level")
    return value  # type: ignore[return-value]


def device_root(device_id: str) -> str:
    """``$oc/devices/{device_id}/``: the prefix every topic of one device starts with."""
    return f"{PREFIX}{_level(device_id, 'device id')}/"


def build(kind: str, device_id: str, request_id: Optional[str] = None) -> str:
    """The topic of catalogue ``kind`` for ``device_id`` (and ``request_id`` when the kind has one).

    Raises ``ValueError`` for an unknown kind, a missing or extra request id, or an id that cannot be one
    topic level.
    """
    entry = _BY_KIND.get(kind)
    if entry is None:
        raise ValueError(f"no system topic of kind {kind!r}")
    topic = device_root(device_id) + "/".join(entry.levels)
    if entry.with_request_id:
        return f"{topic}/{REQUEST_ID_LEVEL}{_level(request_id, 'request id')}"
    if request_id is not None:
        raise ValueError(f"a {kind} topic has no request id")
    return topic


# ---- builders, one per row of §2.1 ----------------------------------------------------------------

def messages_up(device_id: str) -> str:
    """Row 1: device message report."""
    return build(MESSAGES_UP, device_id)


def messages_down(device_id: str) -> str:
    """Row 2: platform message delivery."""
    return build(MESSAGES_DOWN, device_id)


def command(device_id: str, request_id: str) -> str:
    """Row 3: a command to the device; ``request_id`` is the command id."""
    return build(COMMAND, device_id, request_id)


def command_response(device_id: str, request_id: str) -> str:
    """Row 4: the device's answer to a command."""
    return build(COMMAND_RESPONSE, device_id, request_id)


def properties_report(device_id: str) -> str:
    """Row 5: property report."""
    return build(PROPERTIES_REPORT, device_id)


def gateway_properties_report(device_id: str) -> str:
    """Row 6: a gateway's batch property report for its sub-devices."""
    return build(GATEWAY_PROPERTIES_REPORT, device_id)


def properties_set(device_id: str, request_id: str) -> str:
    """Row 7: property set request."""
    return build(PROPERTIES_SET, device_id, request_id)


def properties_set_response(device_id: str, request_id: str) -> str:
    """Row 8: property set response."""
    return build(PROPERTIES_SET_RESPONSE, device_id, request_id)


def properties_get(device_id: str, request_id: str) -> str:
    """Row 9: property query request."""
    return build(PROPERTIES_GET, device_id, request_id)


def properties_get_response(device_id: str, request_id: str) -> str:
    """Row 10: property query response."""
    return build(PROPERTIES_GET_RESPONSE, device_id, request_id)


def shadow_get(device_id: str, request_id: str) -> str:
    """Row 11: the device asks for its shadow (it chooses ``request_id``)."""
    return build(SHADOW_GET, device_id, request_id)


def shadow_get_response(device_id: str, request_id: str) -> str:
    """Row 12: the platform's shadow answer, on the device's request id."""
    return build(SHADOW_GET_RESPONSE, device_id, request_id)


def events_up(device_id: str) -> str:
    """Row 13: device events (§3)."""
    return build(EVENTS_UP, device_id)


def events_down(device_id: str) -> str:
    """Row 14: platform events (§3)."""
    return build(EVENTS_DOWN, device_id)


def bootstrap_up(device_id: str) -> str:
    """Row 15: provisioning request (IoTDP only, §5)."""
    return build(BOOTSTRAP_UP, device_id)


def bootstrap_down(device_id: str) -> str:
    """Row 16: provisioning answer (IoTDP only, §5)."""
    return build(BOOTSTRAP_DOWN, device_id)


def user_topic(device_id: str, name: str) -> str:
    """Row 17: ``$oc/devices/{device_id}/user/{name}``, a product-defined custom topic (§4.1).

    A leading ``/`` of ``name`` is dropped; ``name`` may span levels but holds no wildcard or NUL.
    """
    custom = name.lstrip("/") if isinstance(name, str) else name
    if not isinstance(custom, str) or not custom or any(c in "+#\x00" for c in custom):
        raise ValueError(f"custom topic name {name!r} is not usable")
    return f"{device_root(device_id)}user/{custom}"


def broadcast(name: str) -> str:
    """Row 18: ``$oc/broadcast/{name}`` (§4.3)."""
    if not isinstance(name, str) or not name.strip("/") or any(c in "+#\x00" for c in name):
        raise ValueError(f"broadcast topic name {name!r} is not usable")
    return BROADCAST_PREFIX + name.lstrip("/")


def implicit_subscriptions(device_id: str) -> List[str]:
    """Filters covering a device's system downlinks, to which IoTDA subscribes it implicitly (§2, §9).

    Bootstrap is left out: it belongs to the provisioning service, where the device subscribes itself (§5).
    """
    root = device_root(device_id)
    out = []
    for entry in _CATALOGUE:
        if entry.direction == DOWN and entry.kind != BOOTSTRAP_DOWN:
            # "+" (one request_id level), not "#": ".../commands/#" would also match the device's own
            # ".../commands/response/..." uplinks
            out.append(root + "/".join(entry.levels) + ("/+" if entry.with_request_id else ""))
    return out


#: What the platform core subscribes to on the broker: every system uplink, and custom topics.
PLATFORM_UPLINK_FILTER = "$oc/devices/+/sys/#"
PLATFORM_USER_FILTER = "$oc/devices/+/user/#"


# ---- recognising topics ---------------------------------------------------------------------------

@dataclass(frozen=True)
class TopicInfo:
    """What :func:`classify` learned from a topic.

    ``rest`` is the custom part of a ``USER`` or ``BROADCAST`` topic, and the whole topic for ``OTHER``.
    ``device_id`` is set for device topics, also for an ``OTHER`` topic under a valid ``$oc/devices/{id}/``.
    """

    kind: str
    device_id: Optional[str] = None
    request_id: Optional[str] = None
    rest: Optional[str] = None
    #: the ``encoding`` query value of a report (``"gzip"`` for a compressed payload, §2.11), else None
    encoding: Optional[str] = None


def _query_request_id(query: str) -> Tuple[bool, Optional[str], Optional[str]]:
    """(well formed, request id, encoding) for the query of a ``messages/up``-like topic."""
    request_id = encoding = None
    for pair in query.split("&"):
        key, sep, value = pair.partition("=")
        if not key or not sep:
            return False, None, None
        if key == "request_id":
            if not _is_level(value) or request_id is not None:
                return False, None, None
            request_id = value
        elif key == "encoding":
            if not value or encoding is not None:
                return False, None, None
            encoding = value
    return True, request_id, encoding


def classify(topic: object) -> TopicInfo:
    """Tell which catalogue topic ``topic`` is, with its device id and request id.

    Never raises: anything that is not exactly a documented topic (a bad device id, an empty or
    wildcard request id, extra levels, a query where none is allowed, a non-string) is ``OTHER``.
    """
    if not isinstance(topic, str):
        return TopicInfo(OTHER)
    if topic.startswith(BROADCAST_PREFIX):
        name = topic[len(BROADCAST_PREFIX):]
        return TopicInfo(BROADCAST, rest=name) if name else TopicInfo(OTHER, rest=topic)
    if not topic.startswith(PREFIX):
        return TopicInfo(OTHER, rest=topic)
    device_id, sep, path = topic[len(PREFIX):].partition("/")
    if not sep or not is_valid_device_id(device_id):
        return TopicInfo(OTHER, rest=topic)
    if path.startswith("user/"):
        custom = path[len("user/"):]
        if custom and not any(c in "+#\x00" for c in custom):
            return TopicInfo(USER, device_id, rest=custom)
        return TopicInfo(OTHER, device_id, rest=topic)
    levels = tuple(path.split("/"))
    if levels[-1].startswith(REQUEST_ID_LEVEL):
        entry = _BY_LEVELS.get((levels[:-1], True))
        request_id = levels[-1][len(REQUEST_ID_LEVEL):]
        if entry is not None and _is_level(request_id):
            return TopicInfo(entry.kind, device_id, request_id=request_id)
        return TopicInfo(OTHER, device_id, rest=topic)
    base, qmark, query = path.partition("?")
    entry = _BY_LEVELS.get((tuple(base.split("/")), False))
    if entry is not None:
        if not qmark:
            return TopicInfo(entry.kind, device_id)
        if entry.query_allowed:
            ok, request_id, encoding = _query_request_id(query)
            if ok:
                return TopicInfo(entry.kind, device_id, request_id=request_id, encoding=encoding)
    return TopicInfo(OTHER, device_id, rest=topic)


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT 3.1.1 §4.7 matching of a topic name against a filter with ``+`` and ``#``.

    A filter starting with a wildcard never matches a topic starting with ``$`` (§4.7.2), and
    ``a/#`` also matches ``a`` (§4.7.1.2).
    """
    f_levels = topic_filter.split("/")
    t_levels = topic.split("/")
    if topic.startswith("$") and f_levels[0] in ("+", "#"):
        return False
    for i, f in enumerate(f_levels):
        if f == "#":
            return i == len(f_levels) - 1
        if i >= len(t_levels):
            return False
        if f != "+" and f != t_levels[i]:
            return False
    return len(f_levels) == len(t_levels)


def policy_device_id(pattern: str, topic: str) -> Optional[str]:
    """The device id a topic-policy ``pattern`` gives ``topic``, or None when it does not match.

    ``pattern`` is an MQTT filter whose level ``%u`` stands for the device id (as in a Mosquitto ACL
    ``pattern`` line), e.g. ``policy/%u/#``; a pattern without ``%u`` names no device. This is the
    emulator's stand-in for IoTDA topic policies (§4.2), whose own wildcard syntax is not emulated.
    """
    p_levels = pattern.split("/")
    t_levels = topic.split("/")
    found: Optional[str] = None
    for i, p in enumerate(p_levels):
        if p == "#":
            return found
        if i >= len(t_levels):
            return None
        if p == "%u":
            found = t_levels[i] or None
        elif p != "+" and p != t_levels[i]:
            return None
    return found if len(p_levels) == len(t_levels) else None
