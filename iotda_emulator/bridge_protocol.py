"""IoTDA bridges, device side: a bridge connects once and logs devices in and out over ``$oc/bridges/`` topics.

Sources and choices are in ``doc/protocol.md`` §4.6. In short (official bridge SDKs, Java ``iot-bridge-sdk`` and
C ``iota_bridge.c``; the "generic protocol" guide shows ``result_code`` 0 as success):

* CONNECT: client id ``{bridge_id}_3_{sign_type}_{YYYYMMDDHH}``, username ``bridge_id``, password the HMAC of
  the bridge's secret (AddBridge / ResetBridgeSecret) as for a device (§1.2).
* per device, under ``$oc/bridges/{bridge_id}/devices/{device_id}/``: ``sys/login/request_id={id}``
  ``{sign_type, timestamp, password}`` (the device's own secret, HMAC as at a CONNECT) answered on
  ``sys/login/response/request_id={id}`` ``{result_code}``; ``sys/logout/request_id={id}`` (empty) answered
  ``{result_code}``; ``sys/reset_secret/request_id={id}`` ``{old_secret, new_secret}`` answered
  ``{result_code, paras: {new_secret}}``; down ``sys/disconnect`` (the platform dropped the device);
  then the device topics of §2 with ``$oc/devices/{device_id}/`` replaced by that prefix, both ways.

The emulator keeps this apart from the device path: :class:`BridgeAuthenticator`, :class:`BridgeTopicRules`
and :func:`implicit_subscriptions` wrap the access front's device rules; :class:`BridgeSessions` (the core's
``bridging``) turns a logged-in device's bridge uplinks into ordinary device uplinks and its downlinks into
bridge topics. A bridge's link has the identity ``bridge:{bridge_id}`` (never a device id: those have no
``:``), so a bridge and a device of the same name never meet.
"""
from __future__ import annotations

import datetime as _dt
import hmac
import logging
import re
import threading
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from iotda_emulator import mqtt_packets as mp
from iotda_emulator.access_front import AuthDecision, hmac_password
from iotda_emulator.protocol import codec, topics
from iotda_emulator.topic_check import topic_error

logger = logging.getLogger(__name__)

PREFIX = "$oc/bridges/"
IDENTITY_PREFIX = "bridge:"
#: what the platform subscribes to: every bridge uplink
UPLINK_FILTER = PREFIX + "+/devices/+/sys/#"
LOGIN, LOGOUT, RESET_SECRET = "login", "logout", "reset_secret"
DISCONNECT = "sys/disconnect"
#: ``result_code`` values: 0 is the documented success; every refusal is 1 (our choice: IoTDA lists none)
OK, REFUSED = 0, 1

CLIENT_ID_RE = re.compile(r"^(?P<bridge_id>[A-Za-z0-9_\-]{1,36})_3_(?P<sign_type>[01])_(?P<ts>\d{10})$")
_TOPIC_RE = re.compile(r"^\$oc/bridges/(?P<bridge>[A-Za-z0-9_\-]{1,36})/devices/(?P<device>[A-Za-z0-9_\-]{1,128})/"
                       r"(?P<rest>sys/.+)$")
_SESSION_ACTIONS = (LOGIN, LOGOUT, RESET_SECRET)


def identity(bridge_id: str) -> str:
    """The access-front identity (and broker username) of a bridge's link."""
    return IDENTITY_PREFIX + bridge_id


def bridge_of(link_identity: str) -> Optional[str]:
    """The bridge id of a link identity, None for a device's link."""
    return link_identity[len(IDENTITY_PREFIX):] if link_identity.startswith(IDENTITY_PREFIX) else None


def device_root(bridge_id: str, device_id: str) -> str:
    """``$oc/bridges/{bridge_id}/devices/{device_id}/``."""
    return f"{PREFIX}{bridge_id}/devices/{device_id}/"


def parse(topic: str) -> Optional[Tuple[str, str, str]]:
    """(bridge id, device id, ``sys/...`` rest) of a bridge device topic, or None."""
    m = _TOPIC_RE.match(topic)
    return (m.group("bridge"), m.group("device"), m.group("rest")) if m else None


def session_request(rest: str) -> Optional[Tuple[str, str]]:
    """(action, request id) for ``sys/{login|logout|reset_secret}/request_id={id}``, else None."""
    parts = rest.split("/")
    if len(parts) == 3 and parts[1] in _SESSION_ACTIONS and parts[2].startswith(topics.REQUEST_ID_LEVEL):
        request_id = parts[2][len(topics.REQUEST_ID_LEVEL):]
        if request_id:
            return parts[1], request_id
    return None


def implicit_subscriptions(link_identity: str) -> List[str]:
    """The filters the front subscribes a link to: a device's system downlinks, or a bridge's for all its devices."""
    bridge_id = bridge_of(link_identity)
    if bridge_id is None:
        return topics.implicit_subscriptions(link_identity)
    own = topics.device_root("x")
    root = f"{PREFIX}{bridge_id}/devices/+/"
    out = [root + f[len(own):] for f in topics.implicit_subscriptions("x")]
    out += [root + f"sys/{action}/response/+" for action in _SESSION_ACTIONS]
    out.append(root + DISCONNECT)
    return out


def _hour(ts: Any) -> Optional[_dt.datetime]:
    if not isinstance(ts, str) or not re.fullmatch(r"\d{10}", ts):
        return None
    try:
        return _dt.datetime.strptime(ts, "%Y%m%d%H").replace(tzinfo=_dt.timezone.utc)
    except ValueError:
        return None


def _in_tolerance(hour: _dt.datetime, tolerance_hours: float) -> bool:
    now = _dt.datetime.now(_dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
    return abs((now - hour).total_seconds()) <= tolerance_hours * 3600


# ---- access front: CONNECT and topic rules ----------------------------------------------------------

class BridgeAuthenticator:
    """A bridge's CONNECT (client id ``{bridge_id}_3_...``) against the bridge registry; anything else goes
    to ``device_auth`` (the front's :class:`~iotda_emulator.access_front.IotdaAuthenticator`).

    ``lookup_bridge(bridge_id) -> record|None`` (with ``secret``). The same rules as a device's CONNECT apply
    (keepalive 30-1200 s, username = id, ``sign_type`` 1 checks the hour): CONNACK 2 for a malformed client
    id, 4 for a wrong identity or password. A bridge authenticates by secret only.
    """

    def __init__(self, device_auth: Callable[[mp.ConnectInfo, Optional[bytes]], AuthDecision],
                 lookup_bridge: Callable[[str], Optional[dict]], sign_tolerance_hours: float = 1) -> None:
        self.device_auth = device_auth
        self.lookup_bridge = lookup_bridge
        self.sign_tolerance_hours = sign_tolerance_hours

    def __call__(self, info: mp.ConnectInfo, peer_cert_der: Optional[bytes]) -> AuthDecision:
        m = CLIENT_ID_RE.match(info.client_id)
        if m is None:
            return self.device_auth(info, peer_cert_der)
        if not 30 <= info.keepalive <= 1200:
            return AuthDecision(mp.BAD_CLIENT_ID, reason=f"keepalive {info.keepalive} outside 30-1200")
        bridge_id, ts = m.group("bridge_id"), m.group("ts")
        hour = _hour(ts)
        if hour is None:
            return AuthDecision(mp.BAD_CLIENT_ID, reason="client id is not {bridge_id}_3_{sign_type}_{YYYYMMDDHH}")
        if info.username != bridge_id:
            return AuthDecision(mp.BAD_CREDENTIALS, reason="username differs from the client id's bridge id")
        if m.group("sign_type") == "1" and not _in_tolerance(hour, self.sign_tolerance_hours):
            return AuthDecision(mp.BAD_CREDENTIALS, reason="timestamp outside the tolerance")
        bridge = self.lookup_bridge(bridge_id)
        if bridge is None:
            return AuthDecision(mp.BAD_CREDENTIALS, reason="unknown bridge")
        expected = hmac_password(bridge["secret"], ts).encode("ascii")
        if not info.password or not hmac.compare_digest(expected, info.password.strip().lower()):
            return AuthDecision(mp.BAD_CREDENTIALS, reason="wrong bridge password")
        return AuthDecision(mp.ACCEPTED, device_id=identity(bridge_id))


class BridgeTopicRules:
    """The front's topic rules: a bridge's link by :func:`check_bridge_publish` / :func:`check_bridge_subscribe`,
    a device's by the wrapped :class:`~iotda_emulator.topic_acl.TopicAuthorizer`."""

    def __init__(self, device_rules: Any) -> None:
        self.device_rules = device_rules

    def check_publish(self, link_identity: str, topic: str) -> Optional[str]:
        bridge_id = bridge_of(link_identity)
        if bridge_id is None:
            return self.device_rules.check_publish(link_identity, topic)
        return check_bridge_publish(bridge_id, topic)

    def check_subscribe(self, link_identity: str, topic_filter: str) -> Optional[str]:
        bridge_id = bridge_of(link_identity)
        if bridge_id is None:
            return self.device_rules.check_subscribe(link_identity, topic_filter)
        return check_bridge_subscribe(bridge_id, topic_filter)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.device_rules, name)


def check_bridge_publish(bridge_id: str, topic: str) -> Optional[str]:
    """None when the bridge may publish ``topic``: a session request or a §2 device uplink under its own prefix."""
    problem = topic_error(topic)
    if problem is not None:
        return f"not a valid topic name: it {problem}"
    parsed = parse(topic)
    if parsed is None or parsed[0] != bridge_id:
        return "a bridge publishes only under $oc/bridges/{its id}/devices/{device_id}/sys/"
    if session_request(parsed[2]) is not None:
        return None
    kind = topics.classify(topics.device_root(parsed[1]) + parsed[2]).kind
    if kind in topics.UPLINK_KINDS and kind != topics.BOOTSTRAP_UP:
        return None
    if kind in topics.DOWNLINK_KINDS:
        return "a bridge may not publish a platform downlink topic"
    return "not an IoTDA bridge uplink topic"


def check_bridge_subscribe(bridge_id: str, topic_filter: str) -> Optional[str]:
    """None when the filter stays under ``$oc/bridges/{bridge_id}/``."""
    if not topic_filter or "\x00" in topic_filter:
        return "not a valid topic filter"
    levels = topic_filter.split("/")
    for i, lvl in enumerate(levels):
        if ("#" in lvl and (lvl != "#" or i != len(levels) - 1)) or ("+" in lvl and lvl != "+"):
            return "not a valid topic filter"
    if levels[:3] != ["$oc", "bridges", bridge_id] or len(levels) < 4:
        return "a bridge subscribes only under $oc/bridges/{its id}/"
    return None


# ---- platform core: sessions ----------------------------------------------------------------------------

class BridgeSessions:
    """Which device is logged in through which bridge, and the translation both ways (``core.bridging``).

    Front callbacks (``on_online``/``on_ready``/``on_offline``) take every link: a device's go on to the core,
    a bridge's end logs its devices out. A device logged in through a bridge is online for the platform
    exactly as if connected (``core.front_online``/``front_ready``), its uplinks are handled as its own and
    every platform publish to ``$oc/devices/{id}/sys/...`` goes to ``$oc/bridges/{bridge}/devices/{id}/sys/...``.
    """

    def __init__(self, core: Any) -> None:
        self.core = core
        self._lock = threading.Lock()
        self._bridge_of: Dict[str, str] = {}       # device id -> bridge id it is logged in through
        self.online: Set[str] = set()               # bridges with a link
        self._logged: Set[Tuple[str, str]] = set()  # (bridge, reason) already logged at INFO

    # -- front callbacks (front loop thread: quick) --
    def on_online(self, link_identity: str) -> None:
        bridge_id = bridge_of(link_identity)
        if bridge_id is not None:
            self.online.add(bridge_id)
            logger.info("bridge %s connected", bridge_id)
            return
        with self._lock:
            old = self._bridge_of.pop(link_identity, None)
        if old is not None:   # the device connected by itself: its bridge session ends (our choice)
            self._tell_disconnect(old, link_identity)
        self.core.front_online(link_identity)

    def on_ready(self, link_identity: str) -> None:
        if bridge_of(link_identity) is None:
            self.core.front_ready(link_identity)

    def on_offline(self, link_identity: str) -> None:
        bridge_id = bridge_of(link_identity)
        if bridge_id is None:
            self.core.front_offline(link_identity)
            return
        self.online.discard(bridge_id)
        with self._lock:
            gone = [d for d, b in self._bridge_of.items() if b == bridge_id]
            for d in gone:
                del self._bridge_of[d]
        for d in gone:
            self.core.front_offline(d)
        logger.info("bridge %s disconnected (%d devices logged out)", bridge_id, len(gone))

    # -- management --
    def bridge_of_device(self, device_id: str) -> Optional[str]:
        """The bridge ``device_id`` is logged in through, or None."""
        return self._bridge_of.get(device_id)

    def drop_device(self, device_id: str) -> None:
        """End a device's bridge session from the platform side (freeze, delete, forced secret reset): the bridge
        gets ``sys/disconnect`` and the device goes offline."""
        with self._lock:
            bridge_id = self._bridge_of.pop(device_id, None)
        if bridge_id is not None:
            self._tell_disconnect(bridge_id, device_id)
            self.core.front_offline(device_id)

    def disconnect(self, bridge_id: str) -> None:
        """Drop the bridge's link (DeleteBridge, ResetBridgeSecret with ``force_disconnect``): its devices go offline."""
        emulator = self.core.emulator
        if emulator is not None:
            emulator._disconnect_device(identity(bridge_id))

    # -- traffic --
    def downlink_topic(self, topic: str) -> str:
        """Where a platform publish to ``topic`` goes: the bridge's topic for a device logged in through one."""
        if not self._bridge_of or not topic.startswith(topics.PREFIX):
            return topic
        device_id, _, rest = topic[len(topics.PREFIX):].partition("/")
        bridge_id = self._bridge_of.get(device_id)
        if bridge_id is None or not rest.startswith("sys/"):
            return topic
        return device_root(bridge_id, device_id) + rest

    def uplink(self, topic: str, payload: bytes) -> None:
        """A bridge's publish (core network thread): session requests to the dispatcher, device uplinks translated."""
        parsed = parse(topic)
        if parsed is None:
            self._note("?", "malformed bridge topic dropped")
            return
        bridge_id, device_id, rest = parsed
        request = session_request(rest)
        if request is not None:
            self.core._dispatch(self._session, bridge_id, device_id, request[0], request[1], payload)
            return
        if self._bridge_of.get(device_id) != bridge_id:
            self._note(bridge_id, "uplink of a device not logged in through this bridge dropped")
            return
        self.core._uplink(topics.device_root(device_id) + rest, payload)

    def _note(self, bridge_id: str, reason: str) -> None:
        key = (bridge_id, reason)
        level = logging.DEBUG if key in self._logged else logging.INFO
        self._logged.add(key)
        logger.log(level, "bridge %s: %s", bridge_id, reason)

    def _tell_disconnect(self, bridge_id: str, device_id: str) -> None:
        try:
            self.core.publish(device_root(bridge_id, device_id) + DISCONNECT, b"", qos=0)
        except Exception:  # noqa: BLE001 - best effort: the bridge may be gone
            logger.debug("disconnect notice to bridge %s failed", bridge_id, exc_info=True)

    def _session(self, bridge_id: str, device_id: str, action: str, request_id: str, payload: bytes) -> None:
        """Answer a login / logout / reset_secret (dispatcher thread)."""
        paras: Optional[dict] = None
        try:
            if action == LOGIN:
                why = self._login(bridge_id, device_id, payload)
            elif action == LOGOUT:
                why = self._logout(bridge_id, device_id)
            else:
                why, paras = self._reset_secret(bridge_id, device_id, payload)
        except Exception:  # noqa: BLE001 - answer, never kill the dispatcher
            logger.exception("bridge %s: %s of %s failed", bridge_id, action, device_id)
            why = "internal error"
        body: Dict[str, Any] = {"result_code": OK if why is None else REFUSED}
        if paras is not None:
            body["paras"] = paras
        if why is not None:
            self._note(bridge_id, f"{action} refused: {why}")
        else:
            logger.info("bridge %s: %s of %s", bridge_id, action, device_id)
        self.core.publish(device_root(bridge_id, device_id) + f"sys/{action}/response/request_id={request_id}", body)

    def _login(self, bridge_id: str, device_id: str, payload: bytes) -> Optional[str]:
        if self.core.bridges.get_bridge(bridge_id) is None:
            return "the bridge no longer exists"
        try:
            obj = codec.loads_object(payload)
        except ValueError:
            return "payload is not a JSON object"
        sign_type, ts, password = obj.get("sign_type"), obj.get("timestamp"), obj.get("password")
        hour = _hour(ts)
        if sign_type not in (0, 1) or isinstance(sign_type, bool) or hour is None or not isinstance(password, str):
            return "needs sign_type 0 or 1, timestamp YYYYMMDDHH and password"
        tolerance = getattr(self.core.emulator, "sign_tolerance_hours", 1)
        if sign_type == 1 and not _in_tolerance(hour, tolerance):
            return "timestamp outside the tolerance"
        record = self.core.get_device(device_id)
        if record is None:
            return "unknown device"
        secret = record.get("secret")
        if not secret or record.get("auth_type") == "CERTIFICATES":
            return "device has no secret"
        expected = hmac_password(secret, str(ts)).encode("ascii")   # ts: checked by _hour above
        if not hmac.compare_digest(expected, password.strip().lower().encode("utf-8", "replace")):
            return "wrong device password"
        if record.get("frozen"):
            return "device frozen"
        with self._lock:
            current = self._bridge_of.get(device_id)
            if current is None and self.core.is_online(device_id):
                return "device is connected by itself"
            self._bridge_of[device_id] = bridge_id
        if current == bridge_id:
            return None   # logged in already: nothing changes
        if current is not None:
            self._tell_disconnect(current, device_id)   # moved to another bridge: the first one is told
        else:
            self.core.front_online(device_id)
        self.core.front_ready(device_id)
        return None

    def _logout(self, bridge_id: str, device_id: str) -> Optional[str]:
        with self._lock:
            mine = self._bridge_of.get(device_id) == bridge_id
            if mine:
                del self._bridge_of[device_id]
        if mine:
            self.core.front_offline(device_id)
        return None   # logging out a device that is not logged in succeeds (our choice: idempotent)

    def _reset_secret(self, bridge_id: str, device_id: str, payload: bytes) -> Tuple[Optional[str], Optional[dict]]:
        if self._bridge_of.get(device_id) != bridge_id:
            return "device not logged in through this bridge", None
        try:
            obj = codec.loads_object(payload)
        except ValueError:
            return "payload is not a JSON object", None
        old, new = obj.get("old_secret"), obj.get("new_secret")
        record = self.core.get_device(device_id) or {}
        if not isinstance(old, str) or not record.get("secret") or not hmac.compare_digest(
                old.encode("utf-8", "replace"), str(record["secret"]).encode("utf-8")):
            return "old_secret does not match", None
        try:
            secret = self.core.reset_device_secret(device_id, new if new is not None else None)
        except (ValueError, TypeError):
            return "new_secret is not a valid secret", None
        return None, {"new_secret": secret}
