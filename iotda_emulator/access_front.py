"""The access front: IoTDA's CONNECT rules in front of Mosquitto, one link per device, fault hooks.

Devices connect here (plain TCP and TLS). The front reads the CONNECT, asks its authenticator, answers
the CONNACK itself on refusal, and on acceptance (or, for a brokerless link, once the device needs the broker:
see :class:`AccessFront`) opens a connection to Mosquitto, forwards the CONNECT
(with the username set to the authenticated device id), subscribes the device implicitly to its system
downlinks, and then forwards packets both ways, except that device PUBLISH and SUBSCRIBE packets are
checked against IoTDA's topic rules (:mod:`iotda_emulator.topic_acl`) and, when :class:`FrontLimits` are
set, IoTDA's limits (QoS 2 / RETAIN / > 1 MB close the link; an upstream rate limit drops and counts the
excess).
It runs an asyncio loop in its own daemon thread; the public methods are thread-safe.
"""
from __future__ import annotations

import asyncio
import collections
import datetime as _dt
import hashlib
import hmac
import logging
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, List, Optional, Set, Tuple

from iotda_emulator import mqtt_packets as mp
from iotda_emulator import websocket as ws
from iotda_emulator.broker import SERVICE_ACCOUNT, BrokerAddress
from iotda_emulator.protocol import topics
from iotda_emulator.topic_acl import TopicAuthorizer, filters_overlap
from iotda_emulator.topic_check import topic_error
from iotda_emulator.certs import fingerprint_sha1, fingerprint_sha256, normalize_fingerprint

logger = logging.getLogger(__name__)

MAX_PUBLISH_PAYLOAD = 1024 * 1024   # doc/protocol.md §1.5: larger publishes are rejected
_MAX_TOPIC_ALIAS = 64                # MQTT 5 aliases the front remembers per link (the broker allows 10)


@dataclass
class FrontLimits:
    """IoTDA's per-connection publish limits (``doc/protocol.md`` §1.5) enforced on device uplinks.

    ``strict``: a PUBLISH with QoS 2, the RETAIN flag or a payload above ``max_payload`` bytes closes the
    connection (MQTT 5 devices first get a DISCONNECT with the reason code). ``rate_limit``: at most this
    many PUBLISH per second per device connection (burst of one second); excess ones are acknowledged,
    dropped and counted per device, as IoTDA throttles. None = no rate limit.
    """

    strict: bool = True
    max_payload: int = MAX_PUBLISH_PAYLOAD
    rate_limit: Optional[float] = None

    @property
    def active(self) -> bool:
        return self.strict or bool(self.rate_limit)


#: ``on_violation(device_id, reason, topic, details)``: a link was closed for breaking a limit.
ViolationCallback = Callable[[str, str, str, dict], None]

_PINGRESP = 13
_PINGREQ = bytes([mp.PINGREQ << 4, 0])
_PINGRESP_RAW = bytes([_PINGRESP << 4, 0])
_DIRECT_WRITE_LIMIT = 64 * 1024   # bytes in a socket's buffer above which packets go through the queue again
_ALLOWED_TOPICS_PER_LINK = 256    # remembered allowed sys/ topics per link (cleared when full)

CLIENT_ID_RE = re.compile(r"^(?P<device_id>[A-Za-z0-9_\-]{1,128})_0_(?P<sign_type>[01])_(?P<ts>\d{10})$")


@dataclass
class AuthDecision:
    """What an authenticator decided about one CONNECT.

    ``return_code`` is the 3.1.1 CONNACK code (0 = accept). On acceptance ``device_id`` is the
    identity the link gets (the username forwarded to Mosquitto, hence the topic ACL).
    """

    return_code: int
    device_id: Optional[str] = None
    reason: str = ""


Authenticator = Callable[[mp.ConnectInfo, Optional[bytes]], AuthDecision]


def hmac_password(secret: str, timestamp: str) -> str:
    """IoTDA password: lowercase hex HMAC-SHA256 keyed by the ``YYYYMMDDHH`` timestamp over the secret."""
    return hmac.new(timestamp.encode("utf-8"), secret.encode("utf-8"), hashlib.sha256).hexdigest()


def _parse_hour(ts: str) -> Optional[_dt.datetime]:
    try:
        return _dt.datetime.strptime(ts, "%Y%m%d%H").replace(tzinfo=_dt.timezone.utc)
    except ValueError:
        return None


class IotdaAuthenticator:
    """The standard IoTDA rules (``doc/protocol.md`` §1.2-1.5) against the emulator's registry.

    ``lookup(device_id) -> dict|None`` returns the registry record; ``bind(device_id, fingerprint)``
    stores the fingerprint of a certificate device's first connection. ``cert_check(cert_der)``, when given,
    returns None for a client certificate from a trusted device CA, else the reason to refuse it
    (``iotda_emulator.device_ca.DeviceCaRegistry.check``).
    """

    def __init__(self, lookup: Callable[[str], Optional[dict]], bind: Callable[[str, str], None],
                 sign_tolerance_hours: float = 1,
                 cert_check: Optional[Callable[[bytes], Optional[str]]] = None) -> None:
        self.lookup = lookup
        self.bind = bind
        self.sign_tolerance_hours = sign_tolerance_hours
        self.cert_check = cert_check

    def __call__(self, info: mp.ConnectInfo, peer_cert_der: Optional[bytes]) -> AuthDecision:
        if not 30 <= info.keepalive <= 1200:
            return AuthDecision(mp.BAD_CLIENT_ID, reason=f"keepalive {info.keepalive} outside 30-1200")
        m = CLIENT_ID_RE.match(info.client_id)
        hour = _parse_hour(m.group("ts")) if m else None
        if not m or hour is None:
            return AuthDecision(mp.BAD_CLIENT_ID, reason="client id is not {device_id}_0_{sign_type}_{YYYYMMDDHH}")
        device_id, ts = m.group("device_id"), m.group("ts")
        if info.username != device_id:
            return AuthDecision(mp.BAD_CREDENTIALS, reason="username differs from the client id's device id")
        if device_id == SERVICE_ACCOUNT:
            return AuthDecision(mp.BAD_CREDENTIALS, reason="reserved name")
        if m.group("sign_type") == "1":
            now = _dt.datetime.now(_dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
            if abs((now - hour).total_seconds()) > self.sign_tolerance_hours * 3600:
                return AuthDecision(mp.BAD_CREDENTIALS, reason="timestamp outside the tolerance")
        record = self.lookup(device_id)
        if record is None:
            return AuthDecision(mp.BAD_CREDENTIALS, reason="unknown device")
        if info.password is not None and info.password != b"":
            secret = record.get("secret")
            if not secret:
                return AuthDecision(mp.BAD_CREDENTIALS, reason="device has no secret")
            expected = hmac_password(secret, ts).encode("ascii")
            if not hmac.compare_digest(expected, info.password.strip().lower()):
                return AuthDecision(mp.BAD_CREDENTIALS, reason="wrong password")
        else:
            if peer_cert_der is None:
                return AuthDecision(mp.BAD_CREDENTIALS, reason="no password and no client certificate")
            untrusted = self.cert_check(peer_cert_der) if self.cert_check is not None else None
            if untrusted:
                return AuthDecision(mp.BAD_CREDENTIALS, reason=untrusted)
            registered = normalize_fingerprint(record.get("fingerprint"))
            if registered:
                actual = fingerprint_sha1(peer_cert_der) if len(registered) == 40 else fingerprint_sha256(peer_cert_der)
                if not hmac.compare_digest(registered, actual):
                    return AuthDecision(mp.BAD_CREDENTIALS, reason="certificate fingerprint mismatch")
            elif record.get("auth_type") == "CERTIFICATES":
                self.bind(device_id, fingerprint_sha256(peer_cert_der))
            else:
                return AuthDecision(mp.BAD_CREDENTIALS, reason="secret device connected without a password")
        if record.get("frozen"):
            return AuthDecision(mp.NOT_AUTHORIZED, reason="device frozen")
        return AuthDecision(mp.ACCEPTED, device_id=device_id)


# ---- links ---------------------------------------------------------------------------------------

@dataclass
class _SubRecord:
    """A SUBSCRIBE sent to the broker whose SUBACK is still to come.

    ``device_pid`` None: the front's own (implicit) subscription, whose SUBACK the device never sees.
    Otherwise ``codes`` holds the device's answer with None where the broker's code goes (refused
    filters already carry their failure code).
    """

    device_pid: Optional[int]
    codes: List[Optional[int]]


class _Link:
    """One accepted device connection and its Mosquitto connection."""

    def __init__(self, device_id: str, level: int, client_writer: asyncio.StreamWriter) -> None:
        self.device_id = device_id
        self.level = level
        self.client_writer = client_writer
        self.broker_writer: Optional[asyncio.StreamWriter] = None
        self.gate = asyncio.Event()
        self.gate.set()
        self.delay = 0.0
        self.closed = asyncio.Event()
        self.ready = False
        self.connected_at = time.time()
        self.tokens = 0.0            # rate limit bucket (PUBLISH allowed now)
        self.tokens_at = 0.0         # monotonic time of the last refill
        self.throttle_logged = False
        # subscriptions: SUBACK/UNSUBACK come back in the order the SUBSCRIBE/UNSUBSCRIBE went out
        self.sub_fifo: Deque[_SubRecord] = collections.deque()
        self.unsub_fifo: Deque[None] = collections.deque()
        self.explicit: Dict[str, int] = {}             # the device's own filters -> QoS asked (max 1)
        self.implicit: Dict[str, Optional[int]] = {}   # implicit filter -> QoS the broker holds for it
        self.aliases: Dict[int, str] = {}              # MQTT 5: topic alias -> topic, as the device set them
        self.next_pid = 0
        # bytes queued toward each side (bounded: see AccessFront.max_queued_bytes)
        self.down_bytes = 0
        self.up_bytes = 0
        self.up_room = asyncio.Event()
        self.up_room.set()
        # a writer task holds a packet it took from its queue but has not written yet: no direct writes
        self.up_busy = False
        self.down_busy = False
        # topics under the device's own sys/ that it was allowed to publish: that decision depends on the
        # topic alone, so it is not asked again (bounded; request-id topics make many distinct ones)
        self.sys_prefix = topics.device_root(device_id) + "sys/"
        self.allowed_topics: Set[bytes] = set()
        # direct hand-off to the platform (AccessFront.platform_intake): raw topic -> topic, "" = not one of the
        # device's own system uplinks (bounded like allowed_topics)
        self.direct_topics: Dict[bytes, str] = {}
        # a PUBLISH of this link went through Mosquitto: every later one does too, so that the platform never
        # sees a direct uplink before one sent earlier on the slower path
        self.via_broker = False
        # the broker must see traffic from this link within 1.5 x keep-alive even when every device packet is
        # handed over directly: the front pings it (and swallows the PINGRESP) at most every quarter keep-alive,
        # on a hand-over; so the broker's idle deadline is at least 1.25 x keep-alive after the device's last
        # packet, and a device sending within its keep-alive (MQTT 3.1.1 §3.1.2.10) is never dropped for it
        self.ping_every = 0.0
        self.pinged_at = time.monotonic()
        self.own_pings = 0
        # queues toward the broker / the device (the broker's stays None while the link is brokerless)
        self.up_q: Optional[asyncio.Queue] = None
        self.down_q: Optional[asyncio.Queue] = None
        # brokerless link (AccessFront.brokerless_links): the CONNECT to send when the broker is needed after all,
        # the device's keep-alive (the front enforces it until then), when it last sent something, the timer
        self.connect_raw: Optional[bytes] = None
        self.keepalive = 0
        self.last_seen = time.monotonic()
        self.watchdog: Optional[asyncio.TimerHandle] = None
        self.broker_tasks: List[asyncio.Task] = []
        # AccessFront._take_fast may serve this link's packets as they arrive (set by the reading task while it
        # waits with nothing buffered; cleared as soon as anything goes the ordinary way)
        self.fast = False

    def abort(self) -> None:
        """Close both sides at once (RST where possible)."""
        self.closed.set()
        self.gate.set()
        self.up_room.set()
        for w in (self.client_writer, self.broker_writer):
            if w is not None:
                try:
                    w.transport.abort()
                except Exception:  # noqa: BLE001 - already closed
                    pass

    def front_pid(self) -> int:
        """A packet id for the front's own SUBSCRIBE (the broker answers in order, so reuse is harmless)."""
        self.next_pid = self.next_pid % 0xFFFF + 1
        return self.next_pid


class AccessFront:
    """The devices' entry point: plain and TLS listeners in front of Mosquitto.

    ``broker_address()`` returns Mosquitto's :class:`~iotda_emulator.broker.BrokerAddress` (or a
    (host, port) tuple); ``authenticator(connect_info, peer_cert_der)`` returns an :class:`AuthDecision`.

    Implicit subscription: right after the broker accepts a device, the front subscribes it, at QoS 0,
    to ``implicit_topics(device_id)`` (IoTDA's system downlinks), as IoTDA does for every device; the
    device never sees that SUBACK. A device that subscribes itself still gets its QoS: the implicit
    filters it overlaps are raised to that QoS, so the broker delivers each message once at the QoS the
    device asked for (Mosquitto sends one copy per client, at the QoS of the first filter it finds).

    Topic rules: ``topic_authorizer`` (a :class:`~iotda_emulator.topic_acl.TopicAuthorizer`) decides each
    device PUBLISH and SUBSCRIBE filter. A refused PUBLISH closes the link (MQTT 3.1.x has no negative
    PUBACK; an MQTT 5 QoS 1 publish gets PUBACK 0x87 instead); a refused filter gets SUBACK 0x80 (0x87).
    Either is logged once per device and reason and reported through ``on_violation``.

    Admission: with ``platform_ready`` given, a device is let in only while it returns True (for up to
    ``hold_timeout`` the CONNECT waits; then CONNACK 3): the broker must never acknowledge a QoS 1 uplink
    before the platform is subscribed to receive it.

    Memory: a CONNECT is read with a ``MAX_CONNECT`` cap, at most ``max_pending_connects`` connections
    may be unauthenticated at once, and at most ``max_queued_bytes`` wait toward a device that does not
    read (the link is then closed as a slow consumer); toward the broker the device is read no faster
    than the broker takes it.

    Direct uplinks: with ``platform_intake`` (the platform core in the same process), a device's own system
    uplinks (``$oc/devices/{own id}/sys/...`` of the uplink kinds, which only the platform may receive) are
    handed to it on the loop thread instead of going through Mosquitto, and a QoS 1 one is acknowledged to
    the device right after; everything else (custom and policy topics, RETAIN, QoS 2, MQTT 5 properties,
    packets held by fault hooks) still goes through the broker, and once one PUBLISH of a link did, the
    rest of that link's do too (the platform sees a device's messages in the order sent).

    Brokerless links (``brokerless_links``, with ``platform_intake``): a device link opens its Mosquitto
    connection only when the device needs the broker: its first packet the front does not handle itself (a
    SUBSCRIBE/UNSUBSCRIBE, a PUBLISH not handed over directly, anything else). Until then the front sends the
    CONNACK, answers PINGREQ, ends the link on DISCONNECT, drops a device silent for 1.5 x its keep-alive, and
    the platform's downlinks to the device come through :meth:`deliver_direct` (written as QoS 0 PUBLISH,
    as the implicit subscription delivers them). A CONNECT with a will, clean session 0 or MQTT 5, and a link
    whose implicit filters are not all under its own ``$oc/devices/{id}/`` (a bridge), open the broker at once.
    Reports such a link already decided, and PINGREQs, are served as the bytes arrive (:meth:`_take_fast`).

    Callbacks (run on the front's loop thread, must not block): ``on_online(device_id)`` after the broker
    accepted the link, ``on_ready(device_id)`` once the implicit subscription is in place,
    ``on_offline(device_id)`` when its current link ends.
    """

    def __init__(self, broker_address: Callable[[], Any], authenticator: Authenticator, *,
                 host: str = "127.0.0.1", port: Optional[int] = 0, tls_port: Optional[int] = None,
                 ssl_context: Optional[ssl.SSLContext] = None,
                 on_online: Optional[Callable[[str], None]] = None,
                 on_ready: Optional[Callable[[str], None]] = None,
                 on_offline: Optional[Callable[[str], None]] = None,
                 implicit_topics: Optional[Callable[[str], List[str]]] = None,
                 connect_timeout: float = 10.0, name: str = "access-front",
                 limits: Optional[FrontLimits] = None, on_violation: Optional[ViolationCallback] = None,
                 topic_authorizer: Optional[TopicAuthorizer] = None,
                 platform_ready: Optional[Callable[[], bool]] = None, hold_timeout: float = 3.0,
                 service_account: str = SERVICE_ACCOUNT, max_pending_connects: int = 256,
                 max_queued_bytes: int = 8 * 1024 * 1024, ws_port: Optional[int] = None,
                 ws_path: str = "/mqtt",
                 platform_intake: Optional[Callable[[str, bytes], None]] = None,
                 brokerless_links: bool = False) -> None:
        self.broker_address = broker_address
        self.authenticator = authenticator
        self.host = host
        self._want_port = port
        self._want_tls_port = tls_port
        #: MQTT over WebSocket with TLS (wss), on a listener of its own (iotda_emulator/websocket.py)
        self._want_ws_port = ws_port
        self.ws_path = ws_path
        self.ssl_context = ssl_context
        self.on_online = on_online
        self.on_ready = on_ready
        self.on_offline = on_offline
        self.implicit_topics = implicit_topics or topics.implicit_subscriptions
        self.connect_timeout = connect_timeout
        self.name = name
        self.port: Optional[int] = None
        self.tls_port: Optional[int] = None
        self.ws_port: Optional[int] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._servers: List[asyncio.AbstractServer] = []
        self._links: Dict[str, _Link] = {}
        self._conn_tasks: Set[asyncio.Task] = set()
        self._fault_delay: Dict[str, float] = {}
        #: uplink limits (None = forward everything); may be replaced before links are made
        self.limits = limits
        self.on_violation = on_violation
        self.topic_authorizer = topic_authorizer
        self.platform_ready = platform_ready
        self.hold_timeout = hold_timeout
        self.service_account = service_account
        self.max_pending_connects = max_pending_connects
        self.max_queued_bytes = max_queued_bytes
        self._pending_connects = 0
        self._overload_logged = False
        self._throttled: Dict[str, int] = {}
        self._violation_logged: Set[Tuple[str, str]] = set()
        #: ``platform_intake(topic, payload)``: the platform core in this process (``PlatformCore.take_uplink``);
        #: when set, a device's own system uplinks skip Mosquitto (see :meth:`_hand_over`). None: all via the broker
        self.platform_intake = platform_intake
        #: device PUBLISH packets handed straight to ``platform_intake``; of them, served as they arrived
        #: (:meth:`_take_fast`, no wake-up of the link's reading task)
        self.direct_uplinks = 0
        self.fast_uplinks = 0
        #: brokerless links (needs ``platform_intake``, and the platform handing its downlinks to
        #: :meth:`deliver_direct`): see the class docstring
        self.brokerless_links = bool(brokerless_links)
        #: brokerless links by device id, until the broker has their implicit subscription (written on the loop
        #: thread only; :meth:`deliver_direct` reads it from the platform's threads)
        self._direct_links: Dict[str, _Link] = {}
        #: platform downlinks written to devices by the front itself (:meth:`deliver_direct`)
        self.direct_downlinks = 0
        #: links that were accepted without a broker connection / opened one later
        self.brokerless_accepted = 0
        self.brokerless_opened = 0

    # ---- life cycle -------------------------------------------------------------------------------
    def start(self) -> "AccessFront":
        """Bind the listeners and start serving (returns once bound)."""
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,), name=self.name, daemon=True)
        self._thread.start()
        started.wait()
        fut = asyncio.run_coroutine_threadsafe(self._bind(), self._loop)
        try:
            fut.result(timeout=10)
        except BaseException:
            self.stop()
            raise
        return self

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(started.set)
        self._loop.run_forever()
        try:  # the authenticator runs in the default executor: join its threads
            self._loop.run_until_complete(self._loop.shutdown_default_executor())
        finally:
            self._loop.close()

    async def _bind(self) -> None:
        if self._want_port is not None:
            srv = await asyncio.start_server(lambda r, w: self._spawn(r, w, False), self.host, self._want_port)
            self._servers.append(srv)
            self.port = srv.sockets[0].getsockname()[1]
        if self._want_tls_port is not None:
            if self.ssl_context is None:
                raise ValueError("tls_port needs an ssl_context")
            srv = await asyncio.start_server(lambda r, w: self._spawn(r, w, True), self.host,
                                             self._want_tls_port, ssl=self.ssl_context,
                                             ssl_handshake_timeout=self.connect_timeout)
            self._servers.append(srv)
            self.tls_port = srv.sockets[0].getsockname()[1]
        if self._want_ws_port is not None:
            if self.ssl_context is None:
                raise ValueError("ws_port needs an ssl_context (IoTDA serves MQTT over WebSocket with TLS only)")
            srv = await asyncio.start_server(lambda r, w: self._spawn(r, w, True, websocket=True), self.host,
                                             self._want_ws_port, ssl=self.ssl_context,
                                             ssl_handshake_timeout=self.connect_timeout)
            self._servers.append(srv)
            self.ws_port = srv.sockets[0].getsockname()[1]

    def stop(self) -> None:
        """Close the listeners and every link, and stop the loop thread."""
        loop = self._loop
        if loop is None or not loop.is_running():
            return
        async def _shutdown() -> None:
            for srv in self._servers:
                srv.close()
            for link in list(self._links.values()):
                link.abort()
            tasks = [t for t in self._conn_tasks if not t.done()]
            for t in tasks:
                t.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=2)
        try:
            asyncio.run_coroutine_threadsafe(_shutdown(), loop).result(timeout=5)
        except Exception:  # noqa: BLE001 - best effort at shutdown
            logger.debug("front shutdown incomplete", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._servers = []
        self._links = {}

    # ---- fault hooks (thread-safe) ----------------------------------------------------------------
    def _call(self, fn, *args):
        if self._loop is None or not self._loop.is_running():
            return None
        async def _do():
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(_do(), self._loop).result(timeout=5)

    def pause(self, device_id: str) -> bool:
        """Stop forwarding the device's traffic both ways without closing anything (half-open link)."""
        def _p():
            link = self._links.get(device_id)
            if link:
                link.gate.clear()
            return link is not None
        return bool(self._call(_p))

    def resume(self, device_id: str) -> bool:
        """Forward again (held packets are delivered in order)."""
        def _r():
            link = self._links.get(device_id)
            if link:
                link.gate.set()
            return link is not None
        return bool(self._call(_r))

    def delay(self, device_id: str, seconds: float) -> None:
        """Add ``seconds`` of latency to every packet of the device, both ways (0 removes it).

        Applies to the current link and to later links of the same device.
        """
        def _d():
            self._fault_delay[device_id] = max(0.0, float(seconds))
            link = self._links.get(device_id)
            if link:
                link.delay = self._fault_delay[device_id]
        self._call(_d)

    def cut(self, device_id: str) -> bool:
        """Close the device's link abruptly on both sides; True when there was one."""
        def _c():
            link = self._links.get(device_id)
            if link:
                link.abort()
            return link is not None
        return bool(self._call(_c))

    def connected(self) -> List[str]:
        """Device ids with a link through this front."""
        return list(self._call(lambda: list(self._links)) or [])

    def subscribers(self, topic: str) -> List[str]:
        """Device ids with a link through this front whose own SUBSCRIBE filters match ``topic``
        (the implicit system subscriptions are not counted); used for broadcast limits."""
        def _s():
            return [d for d, link in self._links.items()
                    if any(topics.topic_matches(f, topic) for f in link.explicit)]
        return list(self._call(_s) or [])

    def throttled(self, device_id: Optional[str] = None) -> int:
        """PUBLISH packets dropped by the rate limit: of ``device_id``, or of every device when None."""
        counts = dict(self._throttled)  # plain dict reads are atomic enough for counters
        return counts.get(device_id, 0) if device_id is not None else sum(counts.values())

    # ---- connections ------------------------------------------------------------------------------
    def _spawn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tls: bool,
               websocket: bool = False) -> None:
        if self._pending_connects >= self.max_pending_connects:
            # a flood of sockets that never authenticate: refuse new ones instead of holding them all
            if not self._overload_logged:
                self._overload_logged = True
                logger.warning("%s: %d connections are waiting to authenticate; new ones are closed",
                               self.name, self._pending_connects)
            writer.transport.abort()
            return
        self._pending_connects += 1
        task = asyncio.ensure_future(self._handle_ws(reader, writer) if websocket else self._handle(reader, writer, tls))
        self._conn_tasks.add(task)
        task.add_done_callback(self._conn_tasks.discard)

    async def _handle_ws(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A wss connection: the WebSocket handshake, then the same path as a TLS connection."""
        try:
            opened = await ws.accept(reader, writer, self.ws_path, self.connect_timeout)
        except BaseException:
            self._pending_connects -= 1
            raise
        if opened is None:
            self._pending_connects -= 1
            return
        mqtt_reader, mqtt_writer, pump = opened
        try:
            await self._handle(mqtt_reader, mqtt_writer, True)  # counts the pending connect down
        finally:
            pump.cancel()

    async def _refuse(self, writer: asyncio.StreamWriter, code: int, level: int) -> None:
        try:
            writer.write(mp.connack(code, level))
            await asyncio.wait_for(writer.drain(), 2)
        except Exception:  # noqa: BLE001 - the peer may already be gone
            pass
        _close(writer)

    async def _admit(self, writer: asyncio.StreamWriter, reader: asyncio.StreamReader,
                     tls: bool) -> Optional[Tuple[mp.Packet, mp.ConnectInfo, str]]:
        """Read and check the CONNECT: (packet, info, device id) when accepted; None once answered/closed."""
        peer = writer.get_extra_info("peername")
        try:
            pkt = await asyncio.wait_for(mp.read_packet(reader, mp.MAX_CONNECT), self.connect_timeout)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, mp.PacketError, ConnectionError, OSError) as exc:
            logger.info("%s: dropped %s before CONNECT: %s", self.name, peer, type(exc).__name__)
            _close(writer)
            return None
        if pkt is None or pkt.type != mp.CONNECT:
            logger.info("%s: %s did not start with CONNECT; closed", self.name, peer)
            _close(writer)
            return None
        try:
            info = mp.parse_connect(pkt.body)
        except mp.PacketError as exc:
            logger.info("%s: malformed CONNECT from %s: %s", self.name, peer, exc)
            _close(writer)
            return None
        if info.protocol_level not in (3, 4, 5) or info.protocol_name not in ("MQTT", "MQIsdp"):
            await self._refuse(writer, mp.BAD_PROTOCOL, 4)
            return None
        cert_der = None
        if tls:
            sslobj = writer.get_extra_info("ssl_object")
            cert_der = sslobj.getpeercert(binary_form=True) if sslobj is not None else None
        loop = asyncio.get_running_loop()
        try:
            decision = await loop.run_in_executor(None, self.authenticator, info, cert_der)
        except Exception:  # noqa: BLE001 - an authenticator bug must not kill the front
            logger.exception("%s: authenticator failed for client id %r", self.name, info.client_id)
            decision = AuthDecision(mp.SERVER_UNAVAILABLE, reason="authenticator error")
        if decision.return_code == mp.ACCEPTED and (
                not decision.device_id or decision.device_id in (SERVICE_ACCOUNT, self.service_account)):
            decision = AuthDecision(mp.BAD_CREDENTIALS, reason="no usable identity")
        if decision.return_code == mp.ACCEPTED and info.will_flag and self.topic_authorizer is not None:
            # the broker would publish the will for the device later: the same topic rules apply to it
            why = self.topic_authorizer.check_publish(decision.device_id, info.will_topic or "")
            if why is not None:
                decision = AuthDecision(mp.NOT_AUTHORIZED, reason=f"will topic refused: {why}")
        if decision.return_code == mp.ACCEPTED and not await self._platform_up():
            decision = AuthDecision(mp.SERVER_UNAVAILABLE, reason="the platform is not ready")
        if decision.return_code != mp.ACCEPTED:
            logger.info("%s: refused client id %r from %s: CONNACK %d (%s)", self.name, info.client_id, peer,
                        decision.return_code, decision.reason)
            await self._refuse(writer, decision.return_code, info.protocol_level)
            return None
        return pkt, info, decision.device_id

    async def _platform_up(self) -> bool:
        """Wait (up to ``hold_timeout``) until the platform can receive what the broker acknowledges."""
        if self.platform_ready is None:
            return True
        deadline = time.monotonic() + self.hold_timeout
        while not self.platform_ready():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def _open_broker(self) -> Tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        address = BrokerAddress.of(self.broker_address())
        if address.path:
            return await asyncio.wait_for(_open_unix(address.path), 5)
        return await asyncio.wait_for(asyncio.open_connection(address.host, address.port), 5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tls: bool) -> None:
        try:
            admitted = await self._admit(writer, reader, tls)
        finally:
            self._pending_connects -= 1
            if self._pending_connects < self.max_pending_connects // 2:
                self._overload_logged = False
        if admitted is None:
            return
        pkt, info, device_id = admitted
        implicit = list(dict.fromkeys(self.implicit_topics(device_id)))
        brokerless = self._may_skip_broker(info, device_id, implicit)
        b_reader = b_writer = None
        if not brokerless:
            try:
                b_reader, b_writer = await self._open_broker()
            except (OSError, asyncio.TimeoutError) as exc:
                logger.warning("%s: broker unreachable for %s: %s", self.name, device_id, exc)
                await self._refuse(writer, mp.SERVER_UNAVAILABLE, info.protocol_level)
                return
        link = _Link(device_id, info.protocol_level, writer)
        link.broker_writer = b_writer
        link.delay = self._fault_delay.get(device_id, 0.0)
        old = self._links.get(device_id)
        self._links[device_id] = link
        if old is not None:
            logger.info("%s: %s connected again; closing its older connection", self.name, device_id)
            old.abort()
            if self._direct_links.get(device_id) is old:   # the platform's next downlinks are the new link's
                del self._direct_links[device_id]
        try:
            if brokerless:
                await self._serve_brokerless(link, info, pkt, implicit, reader)
            else:
                await self._serve(link, info, pkt, reader, writer, b_reader, b_writer)
        except asyncio.CancelledError:
            pass
        except Exception:  # noqa: BLE001
            logger.exception("%s: link of %s failed", self.name, device_id)
        finally:
            link.abort()
            if link.watchdog is not None:
                link.watchdog.cancel()
            if self._direct_links.get(device_id) is link:
                del self._direct_links[device_id]
            if self._links.get(device_id) is link:
                del self._links[device_id]
                if link.connected_at:
                    self._notify(self.on_offline, device_id)

    def _may_skip_broker(self, info: mp.ConnectInfo, device_id: str, implicit: List[str]) -> bool:
        """True when the link may start without a Mosquitto connection (see the class docstring).

        A will must be published by the broker, a persistent session (clean session 0) lives there, and an
        MQTT 5 CONNACK carries the broker's own limits (topic aliases, receive maximum): those open it at once.
        """
        if not self.brokerless_links or self.platform_intake is None:
            return False
        if info.protocol_level not in (3, 4) or info.will_flag or not info.clean_session:
            return False
        root = f"{topics.PREFIX}{device_id}/"   # not device_root(): a bridge's identity is no topic level
        return all(f.startswith(root) for f in implicit)

    async def _serve_brokerless(self, link: _Link, info: mp.ConnectInfo, pkt: mp.Packet, implicit: List[str],
                                reader: asyncio.StreamReader) -> None:
        """Serve a link without a broker connection until the device needs one (:meth:`_open_late`)."""
        link.connect_raw = pkt.raw if info.username == link.device_id else mp.encode_connect(
            mp.with_username(info, link.device_id))
        link.keepalive = info.keepalive
        writer = link.client_writer
        writer.write(mp.connack(mp.ACCEPTED, link.level))
        await writer.drain()
        self.brokerless_accepted += 1
        logger.info("%s: %s online (no broker link yet)", self.name, link.device_id)
        link.down_q = asyncio.Queue()
        link.implicit = {f: 0 for f in implicit}
        if self._links.get(link.device_id) is link:
            # before the platform hears of the device: it may send at once
            self._direct_links[link.device_id] = link
        self._notify(self.on_online, link.device_id)
        self._mark_ready(link)
        if link.keepalive:
            link.last_seen = time.monotonic()
            link.watchdog = asyncio.get_running_loop().call_later(1.5 * link.keepalive, self._watch, link)
        self._install_fast_path(link, reader)
        tasks = [asyncio.ensure_future(c) for c in (
            self._read_device(link, reader, None, link.down_q),
            self._write_side(link, writer, link.down_q, False), link.closed.wait())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            tasks += link.broker_tasks
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _install_fast_path(self, link: _Link, reader: asyncio.StreamReader) -> None:
        """Serve a brokerless link's plain system uplinks and PINGREQs as they arrive (:meth:`_take_fast`),
        instead of waking its reading task for each. Plain TCP and TLS stream links only (not WebSocket)."""
        try:
            proto = link.client_writer.transport.get_protocol()
        except (NotImplementedError, AttributeError):   # the WebSocket link's own transport
            return
        if not isinstance(proto, asyncio.StreamReaderProtocol) or getattr(proto, "_stream_reader", None) is not reader:
            return
        limits = self.limits if self.limits is not None and self.limits.active else None
        if limits is not None and limits.rate_limit:
            return   # throttling counts every PUBLISH: the ordinary path does it
        max_payload = limits.max_payload if limits is not None and limits.strict else None
        ordinary = proto.data_received

        def data_received(data: bytes) -> None:
            if link.fast:
                pos = self._take_fast(link, data, max_payload)
                if pos == len(data):
                    return
                link.fast = False   # the rest, and everything after it, in order through the reading task
                data = data[pos:]
            ordinary(data)

        proto.data_received = data_received  # type: ignore[method-assign]

    def _take_fast(self, link: _Link, data: bytes, max_payload: Optional[int]) -> int:
        """Serve the packets at the start of ``data`` that need nothing but a hand-over to the platform (a PUBLISH
        already decided for this link: allowed, one of its own system uplinks, QoS 0/1, no RETAIN, within the
        payload limit) or a PINGREQ (answered); return how many bytes were served. The first other packet, an
        incomplete one, or a link state the ordinary path must see (paused, delayed, closing, given a broker link,
        a (un)subscribe in flight) stops it:
        the rest goes through the reading task, which takes exactly the decisions :meth:`_from_device` takes."""
        pos, n = 0, len(data)
        while pos < n:
            if (self.platform_intake is None or link.closed.is_set() or link.broker_writer is not None or link.delay
                    or not link.gate.is_set() or link.via_broker or link.sub_fifo or link.unsub_fifo):
                return pos
            got = mp.next_packet(data, pos)
            if got is None:
                return pos
            pkt, end = got
            fb = pkt.first_byte
            if fb == 0xC0 and not pkt.body:   # PINGREQ
                link.last_seen = time.monotonic()
                self._to_device(link, link.down_q, _PINGRESP_RAW)
                pos = end
                continue
            if fb >> 4 != mp.PUBLISH or fb & 0x05 or (max_payload is not None and len(pkt.body) > max_payload):
                return pos
            body = pkt.body
            raw_topic = _topic_bytes(body)
            topic = link.direct_topics.get(raw_topic)
            if not topic or (self.topic_authorizer is not None and raw_topic not in link.allowed_topics):
                return pos   # not yet decided for this link (or not a direct one): the ordinary path decides
            got = _packet_id_and_payload(body, raw_topic, (fb >> 1) & 0x03, link.level)
            if got is None:
                return pos
            pid, start = got
            link.last_seen = time.monotonic()
            self.fast_uplinks += 1
            self._intake(link, topic, body[start:], pid, link.down_q)
            pos = end
        return pos

    def _watch(self, link: _Link) -> None:
        """Keep-alive of a brokerless link (MQTT 3.1.1 §3.1.2.10): end it after 1.5 x keep-alive of silence."""
        link.watchdog = None
        if link.closed.is_set() or link.broker_writer is not None:
            return   # gone, or the broker enforces it now
        limit = 1.5 * link.keepalive
        idle = time.monotonic() - link.last_seen
        if idle < limit:
            link.watchdog = asyncio.get_running_loop().call_later(limit - idle, self._watch, link)
            return
        logger.info("%s: %s sent nothing for %.0f s (keep-alive %d s); closed", self.name, link.device_id, idle,
                    link.keepalive)
        self._to_device(link, link.down_q, None)   # ends the link; held while paused, as the broker's close is

    async def _open_late(self, link: _Link) -> bool:
        """Give a brokerless link its Mosquitto connection (the device sent something only the broker handles).

        The front's implicit SUBSCRIBE goes first; until its SUBACK the platform keeps handing downlinks to
        :meth:`deliver_direct` (queued toward the device like the broker's, so their order holds). False when
        the broker cannot be had (the link is then ended).
        """
        try:
            b_reader, b_writer = await self._open_broker()
        except (OSError, asyncio.TimeoutError) as exc:
            logger.warning("%s: broker unreachable for %s: %s", self.name, link.device_id, exc)
            return False
        ack = None
        try:
            b_writer.write(link.connect_raw or b"")
            ack = await asyncio.wait_for(mp.read_packet(b_reader), self.connect_timeout)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, mp.PacketError, ConnectionError, OSError):
            pass
        if ack is None or ack.type != mp.CONNACK or mp.connack_code(ack) != 0 or link.closed.is_set():
            if not link.closed.is_set():
                logger.warning("%s: the broker did not accept the link of %s (%s); closed", self.name,
                               link.device_id, "no CONNACK" if ack is None or ack.type != mp.CONNACK
                               else f"CONNACK {mp.connack_code(ack)}")
            _close(b_writer)
            return False
        self.brokerless_opened += 1
        logger.debug("%s: %s now has a broker link", self.name, link.device_id)
        link.broker_writer, link.connect_raw = b_writer, None
        if link.watchdog is not None:   # the broker enforces the keep-alive from now on
            link.watchdog.cancel()
            link.watchdog = None
        link.ping_every, link.pinged_at = link.keepalive / 4, time.monotonic()
        link.up_q = asyncio.Queue()
        if link.implicit:
            self._send_implicit(link, link.up_q, list(link.implicit), list(link.implicit.values()))
        link.broker_tasks = [asyncio.ensure_future(c) for c in (
            self._write_side(link, b_writer, link.up_q, True),
            self._read_broker(link, b_reader, link.down_q, link.up_q))]
        for t in link.broker_tasks:
            t.add_done_callback(lambda _t, closed=link.closed: closed.set())
        return True

    def deliver_direct(self, topic: str, payload: bytes) -> bool:
        """Write a platform downlink to a brokerless link of this front (thread-safe); False when none takes it.

        Taken when ``topic`` is under ``$oc/devices/{id}/`` of a device whose link has no broker subscription
        yet and one of its implicit filters matches it; the device gets it as a QoS 0 PUBLISH, in order with
        everything else the front sends it. Otherwise the caller publishes through the broker as before.
        """
        if not self._direct_links or not topic.startswith(topics.PREFIX):
            return False
        link = self._direct_links.get(topic[len(topics.PREFIX):].partition("/")[0])
        if link is None or not any(topics.topic_matches(f, topic) for f in link.implicit):
            return False
        raw = mp.encode_publish(topic, payload, 0)
        try:
            self._loop.call_soon_threadsafe(self._deliver, link, raw)
        except RuntimeError:   # the front is stopping: its links are gone
            return False
        return True

    def drop_brokerless(self) -> None:
        """Close every link that has no broker connection (thread-safe, returns at once): the broker is gone,
        which drops every other link; a device is not to see the platform's outage differently by its link."""
        def _drop() -> None:
            gone = [link for link in self._links.values() if link.broker_writer is None]
            for link in gone:
                link.abort()
            if gone:
                logger.info("%s: broker lost; closed %d links without a broker connection", self.name, len(gone))
        loop = self._loop
        if loop is not None and loop.is_running():
            try:
                loop.call_soon_threadsafe(_drop)
            except RuntimeError:   # stopping
                pass

    def _deliver(self, link: _Link, raw: bytes) -> None:
        if link.closed.is_set() or link.down_q is None:
            return   # the device left in between: dropped, as the broker drops QoS 0 to a gone client
        self.direct_downlinks += 1
        self._to_device(link, link.down_q, raw)

    async def _serve(self, link: _Link, info: mp.ConnectInfo, pkt: mp.Packet, reader, writer, b_reader,
                     b_writer) -> None:
        raw = pkt.raw if info.username == link.device_id else mp.encode_connect(mp.with_username(info, link.device_id))
        b_writer.write(raw)
        await b_writer.drain()
        ack = await asyncio.wait_for(mp.read_packet(b_reader), self.connect_timeout)
        if ack is None or ack.type != mp.CONNACK:
            await self._refuse(writer, mp.SERVER_UNAVAILABLE, info.protocol_level)
            link.connected_at = 0
            return
        writer.write(ack.raw)
        await writer.drain()
        if mp.connack_code(ack) != 0:
            link.connected_at = 0
            return
        logger.info("%s: %s online", self.name, link.device_id)
        self._notify(self.on_online, link.device_id)
        link.ping_every, link.pinged_at = info.keepalive / 4, time.monotonic()
        link.keepalive = info.keepalive
        up_q: asyncio.Queue = asyncio.Queue()
        down_q: asyncio.Queue = asyncio.Queue()
        link.up_q, link.down_q = up_q, down_q
        # the implicit subscription goes out before any packet of the device, so it is in place before
        # anything the device does (and before the platform, told on its SUBACK, sends anything)
        implicit = list(dict.fromkeys(self.implicit_topics(link.device_id)))
        link.implicit = {f: 0 for f in implicit}
        if implicit:
            self._send_implicit(link, up_q, implicit)
        else:
            self._mark_ready(link)
        tasks = [asyncio.ensure_future(c) for c in (
            self._read_device(link, reader, up_q, down_q), self._write_side(link, b_writer, up_q, True),
            self._read_broker(link, b_reader, down_q, up_q), self._write_side(link, writer, down_q, False),
            link.closed.wait())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # ---- queues -------------------------------------------------------------------------------------
    @staticmethod
    def _direct(link: _Link, writer: Optional[asyncio.StreamWriter], q: asyncio.Queue, busy: bool) -> bool:
        """True when a packet may be written at once instead of through the queue and its writer task: nothing
        queued or held before it, no fault delay or pause, and the socket's buffer (bounded) nearly empty."""
        return (not busy and q.empty() and not link.delay and link.gate.is_set() and writer is not None
                and not writer.transport.is_closing()
                and writer.transport.get_write_buffer_size() < _DIRECT_WRITE_LIMIT)

    def _to_broker(self, link: _Link, q: asyncio.Queue, raw: Optional[bytes]) -> None:
        if raw is not None and self._direct(link, link.broker_writer, q, link.up_busy):
            link.broker_writer.write(raw)
            return
        if raw is not None:
            link.up_bytes += len(raw)
            if link.up_bytes > self.max_queued_bytes:
                link.up_room.clear()
        q.put_nowait((time.monotonic() + link.delay, raw))

    def _to_device(self, link: _Link, q: asyncio.Queue, raw: Optional[bytes]) -> bool:
        """Queue ``raw`` for the device; False (and the link closed) when the device stopped reading."""
        if raw is not None and self._direct(link, link.client_writer, q, link.down_busy):
            link.client_writer.write(raw)
            return True
        if raw is not None:
            link.down_bytes += len(raw)
            if link.down_bytes > self.max_queued_bytes and link.gate.is_set():
                # not while paused: a half-open link holds its traffic on purpose (fault injection)
                self._report(link, "slow_consumer", "", queued_bytes=link.down_bytes)
                link.closed.set()
                return False
        q.put_nowait((time.monotonic() + link.delay, raw))
        return True

    async def _write_side(self, link: _Link, writer: asyncio.StreamWriter, q: asyncio.Queue,
                          upstream: bool) -> None:
        while True:
            due, raw = await q.get()
            if upstream:
                link.up_busy = True
            else:
                link.down_busy = True
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            while not link.gate.is_set():  # paused: hold everything, including the close
                await link.gate.wait()
            if link.closed.is_set():
                return
            if raw is None:
                return
            writer.write(raw)
            if upstream:
                link.up_busy = False
            else:
                link.down_busy = False
            await writer.drain()
            if upstream:
                link.up_bytes -= len(raw)
                if link.up_bytes <= self.max_queued_bytes:
                    link.up_room.set()
            else:
                link.down_bytes -= len(raw)

    # ---- device -> broker -----------------------------------------------------------------------------
    async def _read_device(self, link: _Link, reader: asyncio.StreamReader, up_q: asyncio.Queue,
                           down_q: asyncio.Queue) -> None:
        limits = self.limits if self.limits is not None and self.limits.active else None
        packets = mp.PacketReader(reader)
        try:
            while True:
                await link.up_room.wait()   # back-pressure: read the device no faster than the broker takes it
                # nothing read and not yet handled: new data may be served as it arrives (_install_fast_path)
                link.fast = link.broker_writer is None and packets.idle
                try:
                    batch = await packets.read_packets()
                except mp.PacketTooLarge as exc:
                    if limits is not None and limits.strict and exc.first_byte >> 4 == mp.PUBLISH:
                        await self._violate(link, "payload_too_large", "", exc.first_byte, size=exc.length)
                    raise
                finally:
                    link.fast = False   # until this batch is handled (or the link ends): nothing may overtake it
                if link.gate.is_set():   # a paused link's packets do not count for its keep-alive
                    link.last_seen = time.monotonic()
                # link.up_q: a brokerless link gets one when it opens its broker connection
                if not batch or await self._from_device(link, batch, limits, link.up_q, down_q):
                    break
        except (asyncio.IncompleteReadError, mp.PacketError, ConnectionError, OSError) as exc:
            logger.debug("%s: device side of %s ended: %s", self.name, link.device_id, type(exc).__name__)
        if link.up_q is not None:
            self._to_broker(link, link.up_q, None)
        else:   # brokerless: end after what is queued toward the device (held while paused)
            self._to_device(link, down_q, None)
        await asyncio.Event().wait()  # stay pending: the writer side ends the link after draining

    async def _from_device(self, link: _Link, batch: List[mp.Packet], limits: Optional[FrontLimits],
                           up_q: asyncio.Queue, down_q: asyncio.Queue) -> bool:
        """Check and forward the packets of one read, consecutive plain ones in one write; True: end the link."""
        run: List[bytes] = []
        for pkt in batch:
            ptype = pkt.type
            if up_q is None and ptype != mp.PUBLISH:   # brokerless: what the front answers itself
                if ptype == mp.PINGREQ:
                    self._to_device(link, down_q, _PINGRESP_RAW)
                    continue
                if ptype == mp.DISCONNECT:
                    return True
            if ptype == mp.PUBLISH:
                if limits is not None and limits.strict and (pkt.first_byte & 0x05 or len(pkt.body) > limits.max_payload):
                    self._flush_up(link, up_q, run)
                    if await self._check_strict(link, pkt, limits):
                        return True
                if self.topic_authorizer is not None and (
                        link.level == 5 or _topic_bytes(pkt.body) not in link.allowed_topics):  # 5: aliases
                    self._flush_up(link, up_q, run)
                    if not await self._check_topic(link, pkt, down_q):
                        if link.closed.is_set():
                            return True
                        continue
                if limits is not None and limits.rate_limit and not self._take_token(link, limits.rate_limit):
                    self._throttle(link, pkt, down_q)
                    continue
                if self.platform_intake is not None and not link.via_broker:
                    self._flush_up(link, up_q, run)
                    if await self._hand_over(link, pkt, up_q, down_q):
                        continue
                    link.via_broker = True
            if up_q is None:   # brokerless, and this packet needs the broker
                if link.closed.is_set() or not await self._open_late(link):
                    return True
                up_q = link.up_q
            if ptype == mp.SUBSCRIBE:
                self._flush_up(link, up_q, run)
                self._device_subscribe(link, pkt, up_q, down_q)
                continue
            elif ptype == mp.UNSUBSCRIBE:
                self._flush_up(link, up_q, run)
                self._device_unsubscribe(link, pkt, up_q)
                continue
            run.append(pkt.raw)
        self._flush_up(link, up_q, run)
        return False

    async def _hand_over(self, link: _Link, pkt: mp.Packet, up_q: asyncio.Queue, down_q: asyncio.Queue) -> bool:
        """Give an authorized device PUBLISH straight to ``platform_intake`` when it is one of the device's own
        system uplinks and nothing makes the broker path differ; True when it was handed over (and acknowledged).

        False leaves it to Mosquitto: another topic, RETAIN, QoS 2, MQTT 5 properties (topic aliases included),
        a malformed header, or packets queued, delayed or paused before it (fault hooks, back-pressure).
        """
        fb = pkt.first_byte
        qos = (fb >> 1) & 0x03
        if fb & 0x01 or qos > 1:
            return False
        body = pkt.body
        raw_topic = _topic_bytes(body)
        topic = link.direct_topics.get(raw_topic)
        if topic is None:
            topic = self._direct_topic(link, raw_topic)
        if not topic:
            return False
        got = _packet_id_and_payload(body, raw_topic, qos, link.level)
        if got is None:
            return False
        pid, pos = got
        if link.sub_fifo or link.unsub_fifo:
            # a (UN)SUBSCRIBE is still on its way through the broker: the platform's answers to this uplink
            # must find the subscriptions the device made before it, as they would via the broker
            deadline = time.monotonic() + self.connect_timeout
            while (link.sub_fifo or link.unsub_fifo) and not link.closed.is_set():
                if time.monotonic() >= deadline:
                    return False
                await asyncio.sleep(0.001)
        if link.broker_writer is None:   # brokerless: fault hooks hold or delay packets on the broker path only
            if link.delay or not link.gate.is_set():
                return False
        elif not self._direct(link, link.broker_writer, up_q, link.up_busy):
            return False
        elif link.ping_every:
            now = time.monotonic()
            if now - link.pinged_at >= link.ping_every:
                link.pinged_at = now
                link.own_pings += 1
                link.broker_writer.write(_PINGREQ)
        self._intake(link, topic, body[pos:], pid, down_q)
        return True

    def _intake(self, link: _Link, topic: str, payload: bytes, pid: Optional[int], down_q: asyncio.Queue) -> None:
        """Hand a device's system uplink to ``platform_intake``, then acknowledge it to the device (QoS 1)."""
        self.direct_uplinks += 1
        try:
            self.platform_intake(topic, payload)   # PlatformCore.take_uplink never raises; another might
        except Exception:  # noqa: BLE001 - taken as the broker would have: acknowledged, the failure logged
            logger.exception("%s: platform intake failed on %r", self.name, topic)
        if pid is not None:
            self._to_device(link, down_q, mp.encode_puback(pid))

    @staticmethod
    def _direct_topic(link: _Link, raw_topic: bytes) -> str:
        """``raw_topic`` decoded when it is one of ``link``'s device's own system uplink topics, else ""
        (remembered per link either way)."""
        try:
            topic = raw_topic.decode("utf-8")
        except UnicodeDecodeError:
            topic = ""
        if topic and (topic_error(topic) is not None or not topic.startswith(link.sys_prefix)):
            topic = ""
        if topic:
            info = topics.classify(topic)
            if info.kind not in topics.UPLINK_KINDS or info.device_id != link.device_id:
                topic = ""
        if len(link.direct_topics) >= _ALLOWED_TOPICS_PER_LINK:
            link.direct_topics.clear()
        link.direct_topics[raw_topic] = topic
        return topic

    def _flush_up(self, link: _Link, up_q: asyncio.Queue, run: List[bytes]) -> None:
        if run:
            self._to_broker(link, up_q, run[0] if len(run) == 1 else b"".join(run))
            run.clear()

    async def _check_topic(self, link: _Link, pkt: mp.Packet, down_q: asyncio.Queue) -> bool:
        """True when the device may publish ``pkt``; otherwise refuse it as IoTDA would and return False."""
        try:
            topic, qos, pid = mp.publish_topic_qos_pid(pkt.first_byte, pkt.body)
        except mp.PacketError:
            return True  # malformed: Mosquitto closes the connection for it
        if link.level == 5:
            # MQTT 5 topic aliases: the same rules for a publish that names its topic by alias alone
            try:
                alias = mp.publish_topic_alias(pkt.first_byte, pkt.body)
            except mp.PacketError:
                return True  # malformed: Mosquitto closes the connection for it
            if alias is not None:
                if topic:
                    if alias <= _MAX_TOPIC_ALIAS:  # Mosquitto refuses larger ones itself (max_topic_alias 10)
                        link.aliases[alias] = topic
                else:
                    topic = link.aliases.get(alias, "")
                    if not topic:
                        return True  # an alias never set: a protocol error Mosquitto answers
        try:
            reason = self.topic_authorizer.check_publish(link.device_id, topic)
        except Exception:  # noqa: BLE001 - a broken check must not open the gate or kill the link task
            logger.exception("%s: topic check failed for %s", self.name, link.device_id)
            reason = "topic check failed"
        if reason is None:
            if topic.startswith(link.sys_prefix):  # decided by the topic alone: remember it for this link
                if len(link.allowed_topics) >= _ALLOWED_TOPICS_PER_LINK:
                    link.allowed_topics.clear()
                link.allowed_topics.add(topic.encode("utf-8"))
            return True
        if link.level == 5 and qos == 1 and pid is not None:
            # MQTT 5 can refuse one publish and keep the connection
            self._report(link, "topic_not_allowed", topic, why=reason, qos=qos)
            self._to_device(link, down_q, mp.encode_puback(pid, mp.RC_NOT_AUTHORIZED))
            return False
        await self._violate(link, "topic_not_allowed", topic, pkt.first_byte, why=reason)
        return False

    def _device_subscribe(self, link: _Link, pkt: mp.Packet, up_q: asyncio.Queue, down_q: asyncio.Queue) -> None:
        """Forward the device's SUBSCRIBE without the filters it may not have, then re-level the implicit ones."""
        try:
            sub = mp.parse_subscribe_full(pkt.body, link.level)
        except mp.PacketError:
            self._to_broker(link, up_q, pkt.raw)  # Mosquitto closes the connection for it
            return
        refused = mp.RC_NOT_AUTHORIZED if link.level == 5 else mp.SUBACK_FAILURE
        codes: List[Optional[int]] = []
        allowed: List[Tuple[str, int]] = []
        for flt, opts in sub.entries:
            reason = None
            if self.topic_authorizer is not None:
                try:
                    reason = self.topic_authorizer.check_subscribe(link.device_id, flt)
                except Exception:  # noqa: BLE001
                    logger.exception("%s: subscribe check failed for %s", self.name, link.device_id)
                    reason = "topic check failed"
            if reason is not None:
                self._report(link, "subscribe_not_allowed", flt, why=reason)
                codes.append(refused)
                continue
            codes.append(None)
            allowed.append((flt, opts))
            link.explicit[flt] = min(opts & 0x03, 1)
            if flt in link.implicit:
                link.implicit[flt] = min(opts & 0x03, 1)  # the broker now holds the device's own choice
        if not allowed:
            self._to_device(link, down_q, mp.encode_suback(sub.packet_id, [c or 0 for c in codes], link.level))
            return
        raw = pkt.raw if len(allowed) == len(sub.entries) else mp.encode_subscribe(
            sub.packet_id, allowed, link.level, sub.properties)
        link.sub_fifo.append(_SubRecord(sub.packet_id, codes))
        self._to_broker(link, up_q, raw)
        self._relevel_implicit(link, up_q)

    def _device_unsubscribe(self, link: _Link, pkt: mp.Packet, up_q: asyncio.Queue) -> None:
        try:
            _, filters = mp.parse_unsubscribe(pkt.body, link.level)
        except mp.PacketError:
            filters = []
        for flt in filters:
            link.explicit.pop(flt, None)
            if flt in link.implicit:
                link.implicit[flt] = None   # the broker dropped it with the device's own subscription
        link.unsub_fifo.append(None)
        self._to_broker(link, up_q, pkt.raw)
        self._relevel_implicit(link, up_q)

    def _relevel_implicit(self, link: _Link, up_q: asyncio.Queue) -> None:
        """Make the broker hold each implicit filter at the highest QoS of the device's overlapping filters."""
        change = []
        for flt, held in link.implicit.items():
            want = max([q for f, q in link.explicit.items() if filters_overlap(f, flt)], default=0)
            if held != want:
                change.append((flt, want))
                link.implicit[flt] = want
        if change:
            self._send_implicit(link, up_q, [f for f, _ in change], [q for _, q in change])

    def _send_implicit(self, link: _Link, up_q: asyncio.Queue, filters: List[str],
                       qos: Optional[List[int]] = None) -> None:
        entries = list(zip(filters, qos or [0] * len(filters)))
        link.sub_fifo.append(_SubRecord(None, []))
        self._to_broker(link, up_q, mp.encode_subscribe(link.front_pid(), entries, link.level))

    # ---- broker -> device -----------------------------------------------------------------------------
    async def _read_broker(self, link: _Link, reader: asyncio.StreamReader, down_q: asyncio.Queue,
                           up_q: asyncio.Queue) -> None:
        packets = mp.PacketReader(reader)
        try:
            while True:
                batch = await packets.read_packets()
                if not batch:
                    break
                run: List[bytes] = []   # what goes to the device from this read, in order, in one write
                for pkt in batch:
                    ptype = pkt.type
                    if ptype == mp.PUBLISH:
                        try:
                            topic, qos, pid = mp.publish_topic_qos_pid(pkt.first_byte, pkt.body)
                        except mp.PacketError:
                            topic, qos, pid = "", 0, None
                        if qos < 2 and topics.classify(topic).kind in topics.UPLINK_KINDS:
                            # the device's own uplink matched one of its wildcards: IoTDA never echoes it
                            if pid is not None:  # acknowledge for the device so the broker's inflight slot frees
                                self._to_broker(link, up_q, mp.encode_puback(pid))
                            continue
                    elif ptype == mp.SUBACK:
                        pkt_raw = self._on_suback(link, pkt)
                        if pkt_raw is not None:
                            run.append(pkt_raw)
                        continue
                    elif ptype == mp.UNSUBACK and link.unsub_fifo:
                        link.unsub_fifo.popleft()
                    elif ptype == _PINGRESP and link.own_pings:
                        link.own_pings -= 1   # answers the front's own keep-alive ping (see _hand_over)
                        continue
                    run.append(pkt.raw)
                if run and not self._to_device(link, down_q, run[0] if len(run) == 1 else b"".join(run)):
                    break
        except (asyncio.IncompleteReadError, mp.PacketError, ConnectionError, OSError) as exc:
            logger.debug("%s: broker side of %s ended: %s", self.name, link.device_id, type(exc).__name__)
        down_q.put_nowait((time.monotonic() + link.delay, None))
        await asyncio.Event().wait()  # stay pending: the writer side ends the link after draining

    def _on_suback(self, link: _Link, pkt: mp.Packet) -> Optional[bytes]:
        """The SUBACK to pass to the device (None: it answered the front's own SUBSCRIBE)."""
        if not link.sub_fifo:
            return pkt.raw
        record = link.sub_fifo.popleft()
        if record.device_pid is None:
            if self._direct_links.get(link.device_id) is link:
                # the broker holds the implicit subscription now: the platform's next downlinks go through it
                del self._direct_links[link.device_id]
            self._mark_ready(link)
            return None
        if all(c is None for c in record.codes):
            return pkt.raw
        try:
            _, granted = mp.parse_suback(pkt.body, link.level)
        except mp.PacketError:
            return pkt.raw
        it = iter(granted)
        codes = [next(it, mp.SUBACK_FAILURE) if c is None else c for c in record.codes]
        return mp.encode_suback(record.device_pid, codes, link.level)

    def _mark_ready(self, link: _Link) -> None:
        if link.ready or link.closed.is_set() or self._links.get(link.device_id) is not link:
            return
        link.ready = True
        self._notify(self.on_ready, link.device_id)

    # ---- uplink limits ------------------------------------------------------------------------------
    async def _check_strict(self, link: _Link, pkt: mp.Packet, limits: FrontLimits) -> bool:
        """Close the link when ``pkt`` (a device PUBLISH) breaks a strict limit; True when it did."""
        fb = pkt.first_byte
        try:
            topic, qos, _ = mp.publish_topic_qos_pid(fb, pkt.body)
        except mp.PacketError:
            topic, qos = "", (fb >> 1) & 0x03
        if qos >= 2:
            await self._violate(link, "qos_not_supported", topic, fb, qos=qos)
            return True
        if fb & 0x01:
            await self._violate(link, "retain_not_supported", topic, fb)
            return True
        try:
            size = mp.publish_payload_size(fb, pkt.body, link.level)
        except mp.PacketError:
            return False  # malformed: Mosquitto closes the connection for it
        if size > limits.max_payload:
            await self._violate(link, "payload_too_large", topic, fb, size=size)
            return True
        return False

    def _report(self, link: _Link, reason: str, topic: str, **details: Any) -> None:
        """Log (once per device and reason) and report through ``on_violation`` a refused packet."""
        key = (link.device_id, reason)
        level = logging.DEBUG if key in self._violation_logged else logging.WARNING
        self._violation_logged.add(key)
        why = details.get("why")
        logger.log(level, "%s: %s: %s on %r%s", self.name, link.device_id, reason.replace("_", " "), topic,
                   f" ({why})" if why else "")
        if self.on_violation is not None:
            try:
                self.on_violation(link.device_id, reason, topic, details)
            except Exception:  # noqa: BLE001
                logger.exception("%s: violation callback failed", self.name)

    async def _violate(self, link: _Link, reason: str, topic: str, first_byte: int, **details) -> None:
        """Report a violation, then close the device's link (MQTT 5: with a DISCONNECT saying why)."""
        details.setdefault("qos", (first_byte >> 1) & 0x03)
        details.setdefault("retain", bool(first_byte & 0x01))
        self._report(link, reason, topic, connection_closed=True, **details)
        if link.level == 5:  # MQTT 5 can say why
            code = {"qos_not_supported": mp.RC_QOS_NOT_SUPPORTED, "retain_not_supported": mp.RC_RETAIN_NOT_SUPPORTED,
                    "payload_too_large": mp.RC_PACKET_TOO_LARGE}.get(reason, mp.RC_NOT_AUTHORIZED)
            try:
                link.client_writer.write(mp.encode_disconnect(code))
                await asyncio.wait_for(link.client_writer.drain(), 1)
            except Exception:  # noqa: BLE001 - the device may be gone already
                pass
        link.closed.set()

    @staticmethod
    def _take_token(link: _Link, rate: float) -> bool:
        now = time.monotonic()
        if link.tokens_at == 0.0:
            link.tokens, link.tokens_at = float(rate), now
        else:
            link.tokens = min(float(rate), link.tokens + (now - link.tokens_at) * rate)
            link.tokens_at = now
        if link.tokens >= 1.0:
            link.tokens -= 1.0
            return True
        return False

    def _throttle(self, link: _Link, pkt: mp.Packet, down_q: asyncio.Queue) -> None:
        """Drop a PUBLISH over the rate limit; a QoS 1 one is still acknowledged (no retransmission)."""
        self._throttled[link.device_id] = self._throttled.get(link.device_id, 0) + 1
        if not link.throttle_logged:
            link.throttle_logged = True
            logger.info("%s: %s exceeds the upstream rate limit; excess publishes dropped", self.name,
                        link.device_id)
        if (pkt.first_byte >> 1) & 0x03 == 1:
            try:
                _, _, pid = mp.publish_topic_qos_pid(pkt.first_byte, pkt.body)
            except mp.PacketError:
                return
            if pid is not None:
                self._to_device(link, down_q, mp.encode_puback(pid))

    def _notify(self, cb: Optional[Callable[[str], None]], device_id: str) -> None:
        if cb is None:
            return
        try:
            cb(device_id)
        except Exception:  # noqa: BLE001
            logger.exception("%s: callback %r failed for %s", self.name, cb, device_id)


async def _open_unix(path: str) -> Tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to the broker's unix socket, retrying while its listen backlog is full.

    A non-blocking ``connect()`` on a unix socket completes at once or fails with EAGAIN when the listener's
    backlog is full; asyncio takes EAGAIN for "in progress" and hands back a socket that was never connected
    (the link then failed with EINVAL on its first read). Seen with a few hundred devices connecting at once.
    """
    delay = 0.005
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.connect(path)
        except BlockingIOError:
            sock.close()
            await asyncio.sleep(delay)   # the caller's timeout bounds the retries
            delay = min(delay * 2, 0.2)
            continue
        except BaseException:
            sock.close()
            raise
        return await asyncio.open_unix_connection(sock=sock)


def _packet_id_and_payload(body: bytes, raw_topic: bytes, qos: int, level: int) -> Optional[Tuple[Optional[int], int]]:
    """(packet id, or None at QoS 0; where the payload starts) of a PUBLISH body whose topic is ``raw_topic``;
    None when it is malformed (no or a zero packet id: Mosquitto closes the connection for it) or, in MQTT 5,
    carries properties."""
    pos = 2 + len(raw_topic)
    pid = None
    if qos:
        if len(body) < pos + 2:
            return None
        pid = (body[pos] << 8) | body[pos + 1]
        if not pid:
            return None
        pos += 2
    if level == 5:
        if len(body) <= pos or body[pos]:
            return None   # properties (or none at all: malformed)
        pos += 1
    return pid, pos


def _topic_bytes(body: bytes) -> bytes:
    """The raw topic name of a PUBLISH body (b"" when the body is too short for it: never a remembered topic, so a
    malformed PUBLISH takes the path where Mosquitto judges it)."""
    if len(body) < 2:
        return b""
    end = 2 + ((body[0] << 8) | body[1])
    return body[2:end] if end <= len(body) else b""


def _close(writer: asyncio.StreamWriter) -> None:
    try:
        writer.close()
    except Exception:  # noqa: BLE001
        pass
