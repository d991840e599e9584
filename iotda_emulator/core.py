"""The platform core: an MQTT client of the broker playing IoTDA's platform side.

It keeps the registry, shadows and message trace (sqlite3), answers device requests (shadow get),
runs platform requests with request ids and timeouts (commands, property set/get), pushes desired
properties, delivers messages and events, and dispatches ``events/up`` to the platform services
found in :mod:`iotda_emulator.services`.

Threads: paho's network thread only parses, traces and resolves pending requests; everything else
runs on one ordered dispatcher thread (uplink handling, service callbacks, online hooks) or on the
worker pool (:meth:`PlatformCore.submit`) for blocking work.
"""
from __future__ import annotations

import collections
import concurrent.futures
import functools
import json
import logging
import re
import secrets as _secrets
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.subscribeoptions import SubscribeOptions

from iotda_emulator.protocol import codec, compression, topics
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes

from iotda_emulator.broker import SERVICE_ACCOUNT, BrokerAddress
from iotda_emulator import message_log
from iotda_emulator.bridges import BridgeRegistry
from iotda_emulator import bridge_protocol
from iotda_emulator.device_policies import DevicePolicies
from iotda_emulator.groups import DeviceGroups
from iotda_emulator.message_log import MessageLog
from iotda_emulator.errors import (CommandTimeout, DeviceNotFound, DeviceOffline, EmulatorError,
                                   ShadowVersionConflict)
from iotda_emulator.products import ProductCatalog
from iotda_emulator.store import DeviceRegistry, Store
from iotda_emulator.topic_check import check_publish_topic

logger = logging.getLogger(__name__)

DESIRED_PROTECTION_S = 300.0   # doc/protocol.md §6.3: no re-delivery for 5 min after an unanswered set
_TOPIC_KINDS_CACHED = 65536     # uplink topics whose classification is remembered (cleared when full)
DISPATCH_LINGER_S = 0.001     # after a wake-up the dispatcher waits this long for more before it sleeps
READY_WAIT_S = 3.0             # a downlink to a device still subscribing waits this long for it
_TRACE_PAGE = 500              # rows wait_for_trace reads per query
VIOLATION = "violation"        # trace kind of a publish the access front refused (QoS 2, retain, > 1 MB)


@dataclass(frozen=True)
class TraceEntry:
    """One MQTT message seen by the platform (``direction`` "up" = from a device)."""

    time: float
    device_id: Optional[str]
    direction: str
    topic: str
    payload: bytes
    kind: str
    id: int = 0

    def json(self) -> Any:
        """The payload parsed as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None


class _Pending:
    """A platform request waiting for the device's answer: ``future`` resolves to the answer (a dict) or
    fails with the error; threads block on it, the asynchronous REST API awaits it without a thread."""

    __slots__ = ("device_id", "kind", "future")

    def __init__(self, device_id: str, kind: str) -> None:
        self.device_id = device_id
        self.kind = kind
        self.future: "concurrent.futures.Future[dict]" = concurrent.futures.Future()

    def finish(self, result: Optional[dict] = None, error: Optional[BaseException] = None) -> None:
        if self.future.done():
            return
        if error is not None:
            self.future.set_exception(error)
        else:
            self.future.set_result(result or {})




#: A device secret as IoTDA's ResetDeviceSecret accepts it: 8 to 32 letters, digits, '_' or '-'.
_SECRET_RE = re.compile(r"[A-Za-z0-9_\-]{8,32}")


def check_device_secret(secret: Any) -> str:
    """``secret`` when it is a valid IoTDA device secret (8-32 letters, digits, ``_``, ``-``); ValueError otherwise.

    The message never repeats the value: secrets are not echoed into logs or error bodies.
    """
    if not isinstance(secret, str) or not _SECRET_RE.fullmatch(secret):
        raise ValueError("'secret' must be a string of 8 to 32 characters: letters, digits, '_' or '-'.")
    return secret


def _check_request_id(request_id: str) -> str:
    # it becomes one topic level: no separators, wildcards or NUL
    if (not isinstance(request_id, str) or not request_id or len(request_id) > 128
            or any(c in request_id for c in "/+#?\x00")):
        raise ValueError(f"invalid request id {request_id!r}")
    return request_id


def _body(obj: Optional[str], optional: Optional[Dict[str, Any]] = None, **fields: Any) -> Dict[str, Any]:
    """A downlink JSON body in wire order: ``object_device_id`` (gateway children only), the ``optional``
    keys that are not None, then ``fields`` as given."""
    body: Dict[str, Any] = {"object_device_id": obj} if obj else {}
    body.update((k, v) for k, v in (optional or {}).items() if v is not None)
    body.update(fields)
    return body


#: uplink kinds _handle_uplink acts on itself (others go to the dispatcher only for listeners/handlers)
_HANDLED_UPLINKS = frozenset({topics.PROPERTIES_REPORT, topics.GATEWAY_PROPERTIES_REPORT, topics.SHADOW_GET,
                              topics.EVENTS_UP})

#: a properties report's first question: no row = no such device; else whether any service has desired values
_REPORT_STATE_SQL = ("SELECT EXISTS(SELECT 1 FROM shadow WHERE device_id=d.device_id AND desired <> '{}') "
                     "FROM devices d WHERE d.device_id=?")
#: one service's report into the shadow: reported properties merged over the stored ones, version + 1
_SHADOW_REPORT_SQL = (
    "INSERT INTO shadow(device_id, service_id, reported, reported_time, version) VALUES (?,?,?,?,1) "
    "ON CONFLICT(device_id, service_id) DO UPDATE SET reported=emu_merge_reported(shadow.reported, "
    "excluded.reported), reported_time=excluded.reported_time, version=shadow.version+1")


def _merge_reported(stored: Optional[str], reported: str) -> str:
    """sqlite function ``emu_merge_reported``: the stored reported JSON object updated with a report's properties
    (top-level keys replaced, as IoTDA's shadow does)."""
    merged = json.loads(stored) if stored else {}
    merged.update(json.loads(reported))
    return json.dumps(merged)


_valid_times: Dict[str, bool] = {}   # event_time strings already checked (devices repeat them; strptime is slow)


def _valid_event_time(text: Any) -> bool:
    """True when ``text`` is an IoTDA UTC time :func:`codec.parse_event_time` accepts (remembered, bounded)."""
    if not isinstance(text, str):
        return False
    ok = _valid_times.get(text)
    if ok is None:
        try:
            codec.parse_event_time(text)
            ok = True
        except ValueError:
            ok = False
        if len(_valid_times) >= 4096:
            _valid_times.clear()
        _valid_times[text] = ok
    return ok


_REQUEST_TOPICS = {topics.COMMAND: topics.command, topics.PROPERTIES_SET: topics.properties_set,
                   topics.PROPERTIES_GET: topics.properties_get}


def _within_model(services: List[dict], model: Dict[str, Dict[str, str]]) -> List[dict]:
    """The reported services and properties the product model defines (IoTDA discards the rest)."""
    kept = []
    for svc in services:
        defined = model.get(svc["service_id"])
        if defined is None:
            logger.debug("reported service %s is not in the product model: discarded", svc["service_id"])
            continue
        props = {k: v for k, v in svc["properties"].items() if k in defined}
        if len(props) < len(svc["properties"]):
            logger.debug("reported properties outside the model of %s discarded", svc["service_id"])
        if props:
            kept.append(dict(svc, properties=props))
    return kept


def _check_writable(model: Optional[Dict[str, Dict[str, str]]], service_id: Any, names: List[str],
                    what: str) -> None:
    """ValueError unless every property of ``names`` is a writable (``W``) property of ``service_id`` in the
    product ``model``; nothing is checked without a model (doc/emulator.md)."""
    if model is None:
        return
    defined = model.get(service_id) if isinstance(service_id, str) else None
    if defined is None:
        raise ValueError(f"{what}: service {service_id!r} is not in the product model")
    for name in names:
        if name not in defined:
            raise ValueError(f"{what}: property {service_id}.{name} is not in the product model")
        if "W" not in defined[name]:
            raise ValueError(f"{what}: property {service_id}.{name} is not writable (method {defined[name]})")


def _validate_shadow_keys(props: dict) -> None:
    for key in props:
        if not isinstance(key, str) or not key or any(c in key for c in ".$\x00"):
            raise ValueError(f"invalid shadow property name {key!r} (no '.', '$' or NUL)")



def _disable_nagle(client) -> None:
    """Send each small MQTT packet at once: with Nagle, a command round trip waits on delayed ACKs (~40 ms)."""
    sock = client.socket()
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):  # not a TCP socket (or already closed): nothing to tune
        pass

class _BufferedSocket:
    """The core's broker socket with reads served from a buffer.

    paho reads a packet with a ``recv()`` for its first byte, one per length byte and one for the body, and
    goes through ``select()`` for each packet; at thousands of uplinks a second those syscalls were a large
    part of the core's CPU. Here one ``recv()`` takes whatever has arrived, and :meth:`pending` tells paho's
    loop that bytes are waiting (it asks SSL sockets the same), so it reads them without waiting in select.
    Everything else is the socket's own.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = b""
        self._pos = 0

    def recv(self, bufsize: int) -> bytes:
        if self._pos >= len(self._buf):
            data = self._sock.recv(65536)  # BlockingIOError when nothing came: paho handles it
            if not data:
                return data
            self._buf, self._pos = data, 0
        chunk = self._buf[self._pos:self._pos + bufsize]
        self._pos += len(chunk)
        return chunk

    def pending(self) -> int:
        return len(self._buf) - self._pos

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _QuietWake:
    """paho's wake-up socket (written once per queued packet to break its loop's ``select()``), silent on
    paho's own thread: that loop looks for queued packets before each select anyway, so a PUBACK queued
    from ``on_message`` needs no wake-up (two syscalls per uplink saved). Other threads still wake it."""

    def __init__(self, sock: socket.socket, loop_ident: int) -> None:
        self._sock = sock
        self._loop_ident = loop_ident

    def send(self, data: bytes) -> int:
        if threading.get_ident() == self._loop_ident:
            return len(data)
        return self._sock.send(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def _tune_paho(client: mqtt.Client) -> None:
    """Wrap the connected client's socket and wake-up socket (see :class:`_BufferedSocket`, :class:`_QuietWake`).

    Called on paho's thread from ``on_connect``. These are paho's private attributes: when a paho version
    lacks them, nothing is changed (the core works the same, only slower).
    """
    sock = getattr(client, "_sock", None)
    if isinstance(sock, socket.socket) and not hasattr(sock, "pending"):
        client._sock = _BufferedSocket(sock)
    wake = getattr(client, "_sockpairW", None)
    if isinstance(wake, socket.socket):
        client._sockpairW = _QuietWake(wake, threading.get_ident())


class PlatformCore:
    """IoTDA's platform side over MQTT. Create, then :meth:`start`; :meth:`stop` when done."""

    def __init__(self, db: Store, broker_address: Callable[[], Union[BrokerAddress, Tuple[str, int]]], *,
                 command_timeout: float = 20.0, emulator: Any = None, workers: int = 8,
                 service_account: str = SERVICE_ACCOUNT,
                 broker_epoch: Optional[Callable[[], int]] = None) -> None:
        self.db = db
        db.create_function("emu_merge_reported", 2, _merge_reported)
        self.registry = DeviceRegistry(db)
        self.products = ProductCatalog(db)
        self.groups = DeviceGroups(db)   # device groups and tags
        self.policies = DevicePolicies(db)   # device (topic) policies: topics outside $oc
        self.bridges = BridgeRegistry(db)    # bridges: the registry
        self.bridging = bridge_protocol.BridgeSessions(self)   # bridges: devices logged in through them
        self.broker_address = broker_address
        self.command_timeout = command_timeout
        self.emulator = emulator
        self.services: Dict[str, Any] = {}           # service_id -> PlatformService
        self._service_list: List[Any] = []
        self._pending: Dict[str, _Pending] = {}
        self._pending_lock = threading.Lock()
        self._changed = threading.Condition()
        self._trace_cond = threading.Condition()
        self._trace_last_id = 0
        self._ready: Dict[str, threading.Event] = {}
        self._handlers: Dict[str, List[Callable]] = collections.defaultdict(list)
        self._uplink_listeners: List[Callable] = []
        self._warned: set = set()
        self.messages = MessageLog()   # messages/down statuses, and the cache for offline devices
        # desired-property delivery: one push in flight per device; a request arriving meanwhile is
        # remembered in _desired_again and served by that push when it ends (never dropped)
        self._desired_lock = threading.Lock()
        self._desired_inflight: set = set()
        self._desired_again: set = set()
        self._desired_block: Dict[str, float] = {}
        # dispatcher hand-over: a deque, and a wake-up only while the dispatcher sleeps (not one per message)
        self._dispatch_items: "collections.deque[Optional[Tuple[Callable, tuple]]]" = collections.deque()
        self._dispatch_wake = threading.Event()
        self._dispatch_idle = False
        self._dispatcher: Optional[threading.Thread] = None
        self._topic_kinds: Dict[str, topics.TopicInfo] = {}   # uplink topic -> classify() of it (bounded)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="emu-core-worker")
        self._connected = threading.Event()
        self._disconnected = threading.Event()
        self._paho_ident: Optional[int] = None
        self._stopping = False
        #: uplinks taken from the broker (paho) and straight from an access front (:meth:`take_uplink`)
        self.uplinks_via_broker = 0
        self.uplinks_direct = 0
        #: ``direct_downlink(topic, payload) -> bool``: the access front in this process taking a downlink to a
        #: device whose link has no broker connection (``AccessFront.deliver_direct``); None: all via the broker
        self.direct_downlink: Optional[Callable[[str, bytes], bool]] = None
        #: downlinks the access front took (:attr:`direct_downlink`)
        self.downlinks_direct = 0
        #: called (paho thread, must not block) when the core loses the broker: the emulator drops the device
        #: links that have no broker connection, as the broker's loss drops the others
        self.on_broker_lost: Optional[Callable[[], None]] = None
        # which broker process the subscriptions were made on (see is_ready)
        self._broker_epoch = broker_epoch
        self._connect_epoch: Optional[int] = None
        self._subscribed_epoch: Optional[int] = None
        self.client_id = f"iotda-emulator-platform-{uuid.uuid4().hex[:12]}"
        self._transport = BrokerAddress.of(broker_address()).transport
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                                   protocol=mqtt.MQTTv5, transport=self._transport)
        self._client.username_pw_set(service_account)
        self._client.max_inflight_messages_set(200)
        self._client.reconnect_delay_set(0.2, 1)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self.registry.reset_connections()

    # ---- life cycle -------------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> "PlatformCore":
        """Connect to the broker, subscribe to every device uplink and load the platform services."""
        self._dispatcher = threading.Thread(target=self._dispatch_loop, name="emu-core-dispatch", daemon=True)
        self._dispatcher.start()
        address = BrokerAddress.of(self.broker_address())
        # paho takes a unix socket's path as the host (and wants some port)
        host, port = (address.path, 1883) if address.path else (address.host, address.port)
        # A session the broker keeps for an hour: uplinks acknowledged to devices while the core's own
        # link is down are queued for it, not dropped (a broker restart loses it: see is_ready).
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self._client.connect(host, port, keepalive=60, properties=props)
        self._client.loop_start()
        if not self._connected.wait(timeout):
            raise EmulatorError("platform core could not connect to the broker")
        self._load_services()
        return self

    def start_services(self) -> None:
        """Call ``start()`` on every platform service (errors are logged, never raised)."""
        for svc in self._service_list:
            try:
                svc.start()
            except Exception:  # noqa: BLE001 - one broken service must not stop the emulator
                logger.exception("platform service %s failed to start", type(svc).__name__)

    def stop(self) -> None:
        """Close services, disconnect and stop every thread the core started."""
        self._stopping = True
        for svc in self._service_list:
            try:
                svc.close()
            except Exception:  # noqa: BLE001
                logger.exception("platform service %s failed to close", type(svc).__name__)
        with self._pending_lock:
            waiting = list(self._pending.values())
        for p in waiting:   # outside the lock: a future's callbacks (async commands) may call end_request
            p.finish(error=EmulatorError("emulator stopped"))
        try:
            self._client.disconnect()
        except Exception:  # noqa: BLE001
            pass
        self._client.loop_stop()
        self._dispatch_items.append(None)
        self._dispatch_wake.set()
        if self._dispatcher is not None:
            self._dispatcher.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    @property
    def connected(self) -> bool:
        """True while the core is connected and subscribed to the broker."""
        return self._connected.is_set()

    def is_ready(self) -> bool:
        """True when the core is subscribed on the broker process running now.

        The access front lets devices in only then: a broker acknowledges a QoS 1 uplink only to a
        subscriber that exists, so a device admitted before the core re-subscribed after a broker restart
        would have reports acknowledged and lost. The epoch check catches the moment after a restart
        when the core has not yet noticed that its old connection is gone.
        """
        if not self._connected.is_set():
            return False
        return self._broker_epoch is None or self._subscribed_epoch == self._broker_epoch()

    def wait_connected(self, timeout: float = 10.0) -> bool:
        """Wait until the core is (re)connected and subscribed; False on timeout."""
        return self._connected.wait(timeout)

    def wait_disconnected(self, timeout: float = 10.0) -> bool:
        """Wait until the core has noticed the loss of the broker; False on timeout."""
        return self._disconnected.wait(timeout)

    def _load_services(self) -> None:
        from iotda_emulator import services as pkg
        try:
            classes = pkg.discover()
        except Exception:  # noqa: BLE001 - a broken service module: load the others one by one
            logger.exception("service discovery failed; loading service modules one by one")
            classes = self._discover_tolerant(pkg)
        for cls in classes:
            try:
                svc = cls(self)
            except Exception:  # noqa: BLE001
                logger.exception("platform service %s failed to initialise", cls.__name__)
                continue
            self._service_list.append(svc)
            for sid in cls.service_ids:
                self.services.setdefault(sid, svc)

    @staticmethod
    def _discover_tolerant(pkg) -> list:
        import importlib
        import inspect
        import pkgutil
        from iotda_emulator.services.base import PlatformService
        found = []
        for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
            if info.name == "base":
                continue
            try:
                module = importlib.import_module(f"{pkg.__name__}.{info.name}")
            except Exception:  # noqa: BLE001
                logger.exception("service module %s failed to import", info.name)
                continue
            for _, obj in inspect.getmembers(module, inspect.isclass):
                if (issubclass(obj, PlatformService) and obj is not PlatformService
                        and obj.__module__ == module.__name__ and obj.service_ids):
                    found.append(obj)
        return found

    # ---- threads ----------------------------------------------------------------------------------
    def submit(self, fn: Callable, *args, **kwargs) -> concurrent.futures.Future:
        """Run ``fn(*args, **kwargs)`` on the core's worker pool (for blocking work); exceptions are logged."""
        def _run():
            try:
                return fn(*args, **kwargs)
            except Exception:
                logger.exception("worker task %s failed", getattr(fn, "__name__", fn))
                raise
        return self._pool.submit(_run)

    def _dispatch(self, fn: Callable, *args) -> None:
        self._dispatch_items.append((fn, args))
        if self._dispatch_idle:
            self._dispatch_wake.set()

    def _dispatch_loop(self) -> None:
        items, wake = self._dispatch_items, self._dispatch_wake
        lingered: Optional[bool] = True   # None: linger once the queue is empty; True: lingered already/not now
        woke = 0.0
        while True:
            try:
                item = items.popleft()
            except IndexError:
                if lingered is False:
                    # under load items come every few 100 us: collect them for a moment instead of being
                    # woken for each one (a thread wake-up and GIL hand-over cost more than handling a report)
                    lingered = True
                    time.sleep(DISPATCH_LINGER_S)
                    continue
                # clear, then say idle, then look again: a _dispatch() in between either is seen by the
                # second look or sees idle and sets the event, so no item waits for a later one
                wake.clear()
                self._dispatch_idle = True
                if not items:
                    wake.wait()
                self._dispatch_idle = False
                # linger after this item only when wake-ups come close together (load); at a low rate a
                # linger would cost a second wake-up per item instead of saving some
                now = time.monotonic()
                lingered = None if now - woke < 2 * DISPATCH_LINGER_S else True
                woke = now
                continue
            if lingered is None:
                lingered = False
            if item is None:
                return
            fn, args = item
            try:
                fn(*args)
            except Exception:  # noqa: BLE001 - never let one message kill the dispatcher
                logger.exception("platform dispatcher: %s failed", getattr(fn, "__name__", fn))

    def _check_not_network_thread(self) -> None:
        if threading.get_ident() == self._paho_ident:
            raise EmulatorError("blocking platform call on the MQTT callback thread; use core.submit()")

    # ---- paho callbacks ---------------------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self._paho_ident = threading.get_ident()
        if reason_code.is_failure:
            logger.error("platform core refused by the broker: %s", reason_code)
            return
        if self._transport == "tcp":
            _disable_nagle(client)
        _tune_paho(client)
        self._connect_epoch = self._broker_epoch() if self._broker_epoch is not None else None
        opts = SubscribeOptions(qos=1, noLocal=True)
        filters = [topics.PLATFORM_UPLINK_FILTER, topics.PLATFORM_USER_FILTER]
        filters.append("#")   # every topic outside $oc: devices use them only where a device policy allows
        filters.append(bridge_protocol.UPLINK_FILTER)
        client.subscribe([(f, opts) for f in filters])

    def _device_of(self, info: topics.TopicInfo, topic: str) -> Optional[str]:
        """The device a topic belongs to: from ``$oc/devices/{id}/`` or a device policy's ``${devices.deviceId}``."""
        if info.device_id is not None or info.kind != topics.OTHER:
            return info.device_id
        return self.policies.device_of(topic)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        if all(not rc.is_failure for rc in reason_codes):
            logger.info("platform core connected and subscribed")
            self._subscribed_epoch = self._connect_epoch
            self._disconnected.clear()
            self._connected.set()
        else:
            logger.error("platform core subscription refused: %s", reason_codes)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected.clear()
        if not self._stopping:
            logger.warning("platform core lost the broker (%s); reconnecting", reason_code)
            if self.on_broker_lost is not None:   # before the event: kill_broker() returns with links dropping
                try:
                    self.on_broker_lost()
                except Exception:  # noqa: BLE001 - the network thread must survive anything
                    logger.exception("on_broker_lost failed")
        self._disconnected.set()

    def _on_message(self, client, userdata, msg) -> None:
        self.uplinks_via_broker += 1
        try:
            self._uplink(msg.topic, bytes(msg.payload))
        except Exception:  # noqa: BLE001 - the network thread must survive anything
            logger.exception("platform core failed on a message on %r", msg.topic)

    def take_uplink(self, topic: str, payload: bytes) -> None:
        """Take a device's own system uplink straight from an access front in this process (no broker trip).

        The front calls it on its loop thread, in the device's order, for a PUBLISH it already authorized;
        the same path as a message from the broker (traced, then handled on the dispatcher). Never raises
        and never blocks on the front (so the front can acknowledge the device right after it returns).
        """
        self.uplinks_direct += 1
        try:
            self._uplink(topic, payload)
        except Exception:  # noqa: BLE001 - the front's loop must survive anything
            logger.exception("platform core failed on a direct uplink on %r", topic)

    # ---- trace --------------------------------------------------------------------------------------
    def _trace(self, direction: str, device_id: Optional[str], kind: str, topic: str, payload: bytes) -> None:
        try:
            # batched commit (Store.deferred): a commit per message cost ~30 us; readers share the connection
            cur = self.db.deferred(
                "INSERT INTO trace(time, device_id, direction, kind, topic, payload) VALUES (?,?,?,?,?,?)",
                (time.time(), device_id, direction, kind, topic, payload))
        except Exception:  # noqa: BLE001 - e.g. the store closed during shutdown
            logger.debug("trace insert failed", exc_info=True)
            return
        with self._trace_cond:
            if cur.lastrowid and cur.lastrowid > self._trace_last_id:
                self._trace_last_id = cur.lastrowid
            self._trace_cond.notify_all()

    def trace_violation(self, device_id: Optional[str], reason: str, topic: str = "", **details: Any) -> None:
        """Record a publish the access front refused (kind ``"violation"``, direction "up").

        The payload is compact JSON ``{"reason": ..., **details}`` (never the refused payload itself).
        Safe to call from any thread (the front calls it on its loop thread).
        """
        self._trace("up", device_id, VIOLATION, topic, codec.dumps_bytes(dict(reason=reason, **details)))

    @staticmethod
    def _entry(row) -> TraceEntry:
        return TraceEntry(time=row["time"], device_id=row["device_id"], direction=row["direction"],
                          topic=row["topic"], payload=bytes(row["payload"] or b""), kind=row["kind"], id=row["id"])

    def trace(self, device_id: Optional[str] = None, direction: Optional[str] = None,
              kind: Optional[str] = None, since_id: int = 0, *, since: Optional[float] = None,
              limit: Optional[int] = None, newest: bool = False) -> List[TraceEntry]:
        """Traced messages oldest first, filtered in SQL.

        Filters: device, direction ("up"/"down"), topic kind, row id above ``since_id``, ``time`` at or
        after ``since`` (epoch seconds). ``limit`` caps the count: the oldest matching entries, or the
        newest ones (still returned oldest first) with ``newest=True``.
        """
        sql, params = "SELECT * FROM trace WHERE id > ?", [since_id]
        for col, val in (("device_id", device_id), ("direction", direction), ("kind", kind)):
            if val is not None:
                sql += f" AND {col} = ?"
                params.append(val)
        if since is not None:
            sql += " AND time >= ?"
            params.append(float(since))
        sql += " ORDER BY id DESC" if newest else " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(max(0, int(limit)))
        rows = self.db.query(sql, params)
        if newest:
            rows.reverse()
        return [self._entry(r) for r in rows]

    @property
    def last_trace_id(self) -> int:
        """Row id of the newest trace entry this core wrote (0 before any); a cursor for ``since_id``."""
        with self._trace_cond:
            return self._trace_last_id

    def wait_for_trace(self, predicate: Callable[[TraceEntry], bool], timeout: float = 10.0,
                       since_id: int = 0) -> TraceEntry:
        """The first traced message (past or future) for which ``predicate`` is true; TimeoutError after ``timeout``.

        Past entries (row id above ``since_id``) are checked once; afterwards only new entries are read,
        each time the core records one (no rescans, no polling).
        """
        deadline = time.monotonic() + timeout
        last = since_id
        while True:
            page = self.trace(since_id=last, limit=_TRACE_PAGE)  # pages: an early match skips the rest
            for entry in page:
                last = entry.id
                if predicate(entry):
                    return entry
            if len(page) == _TRACE_PAGE:
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no matching trace entry")
            with self._trace_cond:
                if self._trace_last_id <= last:
                    # bounded: rows written by another process sharing the data dir are not notified
                    self._trace_cond.wait(min(remaining, 1.0))

    # ---- registry (rules in store.DeviceRegistry; the core adds the live effects) ---------------------
    def create_device(self, device_id: Optional[str] = None, secret: Optional[str] = None, **kwargs: Any) -> dict:
        """Register a device and return its record (see :meth:`DeviceRegistry.create_device`).

        Keyword arguments: ``product_id`` (default "emu_product"), ``node_id``, ``fingerprint``,
        ``gateway_id``, ``name``, ``auth_type``.
        """
        return self.registry.create_device(device_id, secret, **kwargs)

    def get_device(self, device_id: str) -> Optional[dict]:
        """The registry record of ``device_id`` (a dict) or None."""
        return self.registry.get_device(device_id)

    def custom_topic_allowed(self, device_id: str, topic: str, action: str) -> Optional[str]:
        """None when the device may ``action`` ("publish"/"subscribe") on its custom topic ``topic``
        (``$oc/devices/{device_id}/user/...``) under its product's definitions, else a short reason
        (see :meth:`ProductCatalog.custom_topic_allowed`; cached per product, called per PUBLISH)."""
        return self.products.custom_topic_allowed(device_id, topic, action)

    def _require(self, device_id: str) -> dict:
        return self.registry.require(device_id)

    def list_devices(self) -> List[dict]:
        """Every registered device, oldest first."""
        return self.registry.list_devices()

    def children(self, gateway_id: str) -> List[dict]:
        """The sub-devices whose gateway is ``gateway_id``."""
        return self.registry.children(gateway_id)

    def update_device(self, device_id: str, **fields: Any) -> dict:
        """Change registry fields (name, secret, fingerprint, product_id, gateway_id, auth_type, node_id)."""
        return self.registry.update_device(device_id, **fields)

    def bind_fingerprint(self, device_id: str, fingerprint: str) -> None:
        """Store the certificate fingerprint of a certificate device (first connection binding)."""
        self.registry.bind_fingerprint(device_id, fingerprint)

    def delete_device(self, device_id: str) -> bool:
        """Remove a device, its shadow and its connection; True when it existed."""
        existed = self.registry.delete_device(device_id)
        self.messages.forget_device(device_id)
        self.groups.forget_device(device_id)
        self.policies.forget_target("device", device_id)
        if existed and self.emulator is not None:
            self.emulator._disconnect_device(device_id)
        return existed

    def freeze_device(self, device_id: str, frozen: bool = True) -> None:
        """Freeze (refuse its connections with CONNACK 5, drop the current one) or unfreeze a device."""
        self.registry.set_frozen(device_id, frozen)
        if frozen and self.emulator is not None:
            self.emulator._disconnect_device(device_id)

    def reset_device_secret(self, device_id: str, secret: Optional[str] = None,
                            force_disconnect: bool = False) -> str:
        """Give a secret-authenticated device a new secret (IoTDA's ResetDeviceSecret); returns the new secret.

        Without ``secret`` a random one (32 hex digits) is generated. The current connection stays up unless
        ``force_disconnect``; every later CONNECT is checked against the new secret. Raises ``ValueError``
        for an invalid secret or a certificate device, ``DeviceNotFound``. The secret is never logged.
        """
        secret = _secrets.token_hex(16) if secret is None else check_device_secret(secret)
        record = self._require(device_id)
        if record.get("auth_type") == "CERTIFICATES":
            raise ValueError(f"The device {device_id} authenticates by certificate; it has no secret to reset.")
        self.registry.update_device(device_id, secret=secret)
        if force_disconnect and self.emulator is not None:
            self.emulator._disconnect_device(device_id)
        logger.info("device %s: secret reset%s", device_id, ", connection dropped" if force_disconnect else "")
        return secret

    # ---- online state ----------------------------------------------------------------------------------
    def is_online(self, device_id: str) -> bool:
        """True while the device is connected (for a sub-device: as last set by its gateway)."""
        return self.registry.is_online(device_id)

    def wait_online(self, device_id: str, timeout: float = 10.0, online: bool = True) -> bool:
        """Wait until :meth:`is_online` equals ``online``; the final state match as a bool."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.is_online(device_id) != online:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(min(remaining, 0.5))
        return True

    def set_online(self, device_id: str, online: bool) -> None:
        """Record a device (typically a gateway's sub-device) as online/offline and run the hooks."""
        rows = self.db.query("SELECT online, gateway_id FROM devices WHERE device_id=?", (device_id,))
        if not rows:
            return
        was = bool(rows[0]["online"])
        self.registry.set_connection(device_id, online)   # also stamps IoTDA's status/active times
        with self._changed:
            self._changed.notify_all()
        if online and not was and rows[0]["gateway_id"]:
            self._dispatch(self._online_hooks, device_id)
        elif not online and was:
            self._dispatch(self._offline_hooks, device_id)

    # called by the access front on its loop thread: quick, non-blocking
    def front_online(self, device_id: str) -> None:
        """The access front accepted a connection of ``device_id``."""
        self._ready[device_id] = threading.Event()
        self.registry.set_connection(device_id, True)
        with self._changed:
            self._changed.notify_all()

    def front_ready(self, device_id: str) -> None:
        """The device has subscribed: push what waits for it and tell the services."""
        ev = self._ready.get(device_id)
        if ev is not None:
            ev.set()
        self._dispatch(self._online_hooks, device_id)

    def front_offline(self, device_id: str) -> None:
        """The device's connection ended."""
        ev = self._ready.pop(device_id, None)
        if ev is not None:
            ev.set()  # wake waiters; they re-check online
        self.registry.set_connection(device_id, False)
        with self._changed:
            self._changed.notify_all()
        self._dispatch(self._offline_hooks, device_id)

    def _online_hooks(self, device_id: str) -> None:
        self._desired_block.pop(device_id, None)
        for owner, mid, topic, payload, qos in self.messages.take_pending(device_id):  # past their ttl: TIMEOUT
            info = self.publish(topic, payload, qos)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                self.messages.mark(owner, mid, message_log.FAILED, f"not handed to the broker (rc {info.rc})")
        if self._desired_diff(device_id):
            self.submit(self._push_desired, device_id)
        for svc in self._service_list:
            try:
                svc.on_device_online(device_id)
            except Exception:  # noqa: BLE001
                logger.exception("service %s failed in on_device_online(%s)", type(svc).__name__, device_id)

    def _offline_hooks(self, device_id: str) -> None:
        for svc in self._service_list:
            try:
                svc.on_device_offline(device_id)
            except Exception:  # noqa: BLE001
                logger.exception("service %s failed in on_device_offline(%s)", type(svc).__name__, device_id)

    # ---- routing and publishing -----------------------------------------------------------------------
    def route(self, device_id: str, require_online: bool = True) -> Tuple[str, Optional[str]]:
        """(topic device id, object_device_id) to reach ``device_id``: a sub-device goes through its gateway.

        Raises DeviceNotFound, and DeviceOffline when ``require_online`` and the connection is down.
        """
        rec = self._require(device_id)
        gateway = rec.get("gateway_id")
        target, obj = (gateway, device_id) if gateway else (device_id, None)
        if require_online:
            self._wait_ready(target)
        return target, obj

    def _wait_ready(self, target: str) -> None:
        if not self.is_online(target):
            raise DeviceOffline(f"device {target} is offline")
        ev = self._ready.get(target)
        if ev is not None and not ev.is_set() and threading.get_ident() != self._paho_ident:
            ev.wait(READY_WAIT_S)
        if not self.is_online(target):
            raise DeviceOffline(f"device {target} is offline")

    def publish(self, topic: str, payload: Union[bytes, str, dict, list, None], qos: int = 1, *,
                retain: bool = False, properties: Optional[Properties] = None) -> mqtt.MQTTMessageInfo:
        """Publish from the platform (traced as "down"); dict/list payloads become compact JSON.

        ``retain``/``properties`` (MQTT 5, e.g. a message expiry) are for the broadcast service's cached
        broadcasts; device downlinks never use them.

        Raises ValueError for a topic the broker would refuse (see :mod:`iotda_emulator.topic_check`):
        handed to paho, such a QoS 1 packet would be re-sent, and the link dropped, on every reconnect.
        """
        check_publish_topic(topic)
        if isinstance(payload, (dict, list)):
            data = codec.dumps_bytes(payload)
        elif isinstance(payload, str):
            data = payload.encode("utf-8")
        else:
            data = bytes(payload or b"")
        info = topics.classify(topic)
        self._trace("down", self._device_of(info, topic), info.kind, topic, data)
        logger.debug("down %s (%d bytes)", topic, len(data))
        topic = self.bridging.downlink_topic(topic)   # a device logged in through a bridge: the bridge's topic
        if retain or properties is not None:
            return self._client.publish(topic, data, qos=qos, retain=retain, properties=properties)
        direct = self.direct_downlink
        if direct is not None and direct(topic, data):
            # the device's link has no broker subscription: the access front wrote it (QoS 0, as the implicit
            # subscription delivers); the caller gets what paho gives for a message already sent
            self.downlinks_direct += 1
            sent = mqtt.MQTTMessageInfo(0)
            sent._set_as_published()
            return sent
        return self._client.publish(topic, data, qos=qos)

    def begin_request(self, kind: str, device_id: str, request_id: Optional[str],
                      optional: Optional[Dict[str, Any]] = None, **fields: Any) -> "concurrent.futures.Future[dict]":
        """Send a platform request (body as :func:`_body`) to ``device_id`` without waiting for the answer.

        Returns a future of the device's answer. The caller must call :meth:`end_request` with the same
        ``request_id`` when it stops waiting (answer, timeout or cancellation), so the id is freed.
        """
        if kind == topics.PROPERTIES_SET:
            model = self.products.device_model(device_id)
            for svc in fields.get("services") or []:
                if isinstance(svc, dict) and not str(svc.get("service_id", "")).startswith("$"):
                    props = svc.get("properties")
                    _check_writable(model, svc.get("service_id"), list(props) if isinstance(props, dict) else [],
                                    "property set")
        target, obj = self.route(device_id)
        self._check_not_network_thread()
        pending = _Pending(target, kind)
        with self._pending_lock:
            if request_id in self._pending:
                raise EmulatorError(f"request id {request_id} is already in use by a pending request")
            self._pending[request_id] = pending
        try:
            self.publish(_REQUEST_TOPICS[kind](target, request_id), _body(obj, optional, **fields), qos=1)
        except BaseException:
            self.end_request(request_id)
            raise
        return pending.future

    def end_request(self, request_id: str) -> None:
        """Forget a request begun by :meth:`begin_request`; a late answer is then ignored."""
        with self._pending_lock:
            self._pending.pop(request_id, None)

    def _request(self, kind: str, device_id: str, timeout: Optional[float], request_id: Optional[str],
                 optional: Optional[Dict[str, Any]] = None, **fields: Any) -> dict:
        """Send a platform request (body as :func:`_body`) to ``device_id`` and wait for its answer."""
        rid = str(uuid.uuid4()) if request_id is None else _check_request_id(request_id)
        future = self.begin_request(kind, device_id, rid, optional, **fields)
        wait = self.command_timeout if timeout is None else timeout
        try:
            return self.answer_of(kind, future.result(wait))
        except concurrent.futures.TimeoutError:
            raise CommandTimeout(f"{kind} {rid} to {device_id}: no response within {wait:g} s") from None
        finally:
            self.end_request(rid)

    @staticmethod
    def answer_of(kind: str, answer: dict) -> dict:
        """The device's answer as the platform reports it: commands and property sets default to
        ``result_code`` 0 when the device left it out."""
        if kind in (topics.COMMAND, topics.PROPERTIES_SET):
            answer.setdefault("result_code", 0)
        return answer

    def send_command(self, device_id: str, service_id: Optional[str], command_name: Optional[str],
                     paras: Any, timeout: Optional[float] = None, request_id: Optional[str] = None) -> dict:
        """Send a command and wait for the response JSON (``result_code`` defaults to 0).

        ``request_id`` is the id put in the command topic (IoTDA's ``command_id``); a UUID when None.
        Raises DeviceNotFound, DeviceOffline, CommandTimeout, EmulatorError (malformed response, request id
        already pending), ValueError (request id unusable in a topic).
        """
        return self._request(topics.COMMAND, device_id, timeout, request_id,
                             {"service_id": service_id, "command_name": command_name},
                             paras=paras if paras is not None else {})

    def set_properties(self, device_id: str, services: List[dict], timeout: Optional[float] = None,
                       request_id: Optional[str] = None) -> dict:
        """Write properties; returns the device's answer (``result_code`` defaults to 0, ``result_desc``).

        ``request_id`` is the id put in the topic (a UUID when None); errors as :meth:`send_command`.
        """
        return self._request(topics.PROPERTIES_SET, device_id, timeout, request_id, services=services)

    def get_properties(self, device_id: str, service_id: Optional[str] = None,
                       timeout: Optional[float] = None, request_id: Optional[str] = None) -> dict:
        """Query properties; returns the device's answer (``services`` list).

        ``request_id`` is the id put in the topic (a UUID when None); errors as :meth:`send_command`.
        """
        return self._request(topics.PROPERTIES_GET, device_id, timeout, request_id, {"service_id": service_id})

    def send_message(self, device_id: str, payload: Union[bytes, str, dict], *, topic: Optional[str] = None,
                     qos: int = 1, name: Optional[str] = None, message_id: Optional[str] = None,
                     standard: bool = False, topic_full_name: Optional[str] = None,
                     ttl_minutes: Optional[int] = None) -> str:
        """Deliver a message (cached, up to 20, while the device is offline); returns the message id.

        See :meth:`deliver_message` for the arguments; this returns only the id.
        """
        return self.deliver_message(device_id, payload, topic=topic, qos=qos, name=name, message_id=message_id,
                                    standard=standard, topic_full_name=topic_full_name,
                                    ttl_minutes=ttl_minutes)[0]

    def deliver_message(self, device_id: str, payload: Union[bytes, str, dict], *, topic: Optional[str] = None,
                        qos: int = 1, name: Optional[str] = None, message_id: Optional[str] = None,
                        standard: bool = False, topic_full_name: Optional[str] = None,
                        ttl_minutes: Optional[int] = None, details: Optional[Dict[str, Any]] = None
                        ) -> Tuple[str, str]:
        """Deliver a message as IoTDA's CreateMessage does; returns ``(message id, status)``.

        ``status`` is ``DELIVERED`` when it was published while the device (or its gateway) was connected,
        ``PENDING`` when cached for an offline device, ``TIMEOUT`` when offline and ``ttl_minutes`` is 0
        (not cached), ``FAILED`` when the platform could not hand it to the broker.
        ``topic_full_name`` is used unchanged (any topic, policy topics included). ``topic``: None =
        ``messages/down``; a suffix becomes ``$oc/devices/{gateway or device}/user/{topic}`` (a value
        starting with ``$`` is taken as a full topic, for the Python API's older callers).
        ``standard`` wraps the payload as ``{object_device_id?, name?, id, content}`` (always for sub-devices).
        ``ttl_minutes`` bounds the time it stays cached (None: no bound beyond the 20-message cache).
        ``details`` are the application's fields kept for ListDeviceMessages (see :mod:`.message_log`).
        """
        target, obj = self.route(device_id, require_online=False)
        mid = message_id or str(uuid.uuid4())
        if topic_full_name is not None:
            dest = topic_full_name
        elif topic is None:
            dest = topics.messages_down(target)
        elif topic.startswith("$") or topic.startswith(topics.PREFIX):
            dest = topic
        else:
            dest = topics.user_topic(target, topic)
        check_publish_topic(dest)   # before caching: a cached bad topic would fail only when the device is back
        if standard or obj:
            if isinstance(payload, (bytes, bytearray)):
                content: Any = bytes(payload).decode("utf-8", "replace")
            else:
                content = payload
            data: Any = _body(obj, {"name": name}, id=mid, content=content)
        else:
            data = payload
        if isinstance(data, (dict, list)):
            data = codec.dumps_bytes(data)
        elif isinstance(data, str):
            data = data.encode("utf-8")
        if self.is_online(target):
            try:
                self._wait_ready(target)
            except DeviceOffline:
                pass
        record = functools.partial(self.messages.add, device_id, target, mid, topic=dest, data=data, qos=qos,
                                   details=details)
        if self.is_online(target):
            info = self.publish(dest, data, qos)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                logger.warning("message %s for %s not handed to the broker (rc %s)", mid, target, info.rc)
                record(message_log.FAILED, expires=None)
                return mid, message_log.FAILED
            record(message_log.DELIVERED, expires=None)
            return mid, message_log.DELIVERED
        if ttl_minutes is not None and ttl_minutes <= 0:
            logger.info("message %s for offline device %s not cached (ttl 0)", mid, target)
            record(message_log.TIMEOUT, expires=None)
            return mid, message_log.TIMEOUT
        expires = None if ttl_minutes is None else time.monotonic() + 60.0 * ttl_minutes
        record(message_log.PENDING, expires=expires)   # the 21st message of a device replaces its oldest
        logger.info("message %s for offline device %s cached", mid, target)
        return mid, message_log.PENDING

    def send_event(self, device_id: str, service_id: str, event_type: str, paras: Any,
                   object_device_id: Optional[str] = None, event_id: Optional[str] = None) -> str:
        """Publish an ``events/down`` with one service event; returns its ``event_id``.

        A sub-device's event goes through its gateway with ``object_device_id`` set to the child; a directly
        connected device's event carries its own id there (IoTDA always sets it on ``events/down``,
        doc/protocol.md §2.3). Raises DeviceNotFound / DeviceOffline.
        """
        target, obj = self.route(device_id)
        eid = event_id or str(uuid.uuid4())
        envelope = _body(object_device_id or obj or target, services=[{
            "service_id": service_id, "event_type": event_type, "event_time": codec.event_time(),
            "event_id": eid, "paras": paras if paras is not None else {}}])
        self.publish(topics.events_down(target), envelope, qos=1)
        return eid

    # ---- shadow ------------------------------------------------------------------------------------------
    def shadow(self, device_id: str, service_id: Optional[str] = None) -> List[dict]:
        """The device shadow: per service ``desired``/``reported`` ``{properties, event_time}`` and ``version``."""
        self._require(device_id)
        sql, params = "SELECT * FROM shadow WHERE device_id=?", [device_id]
        if service_id is not None:
            sql += " AND service_id=?"
            params.append(service_id)
        out = []
        for r in self.db.query(sql + " ORDER BY service_id", params):
            entry: Dict[str, Any] = {"service_id": r["service_id"]}
            for part, tcol in (("desired", "desired_time"), ("reported", "reported_time")):
                section: Dict[str, Any] = {"properties": json.loads(r[part])}
                if r[tcol]:
                    section["event_time"] = r[tcol]
                entry[part] = section
            entry["version"] = r["version"]
            out.append(entry)
        return out

    def set_desired(self, device_id: str, service_id: str, properties: dict,
                    expected_version: Optional[int] = None) -> int:
        """Merge desired property values into the shadow; pushes them when the device is online.

        Returns the service's new shadow version. A value of None removes a desired property; an empty
        ``properties`` clears the service's desired section (IoTDA's ``desired: {}``). With
        ``expected_version``, the write is refused (:class:`ShadowVersionConflict`) unless it is the
        service's current version (0 before its first change), as IoTDA's UpdateDeviceShadowDesiredData does.
        """
        self._require(device_id)
        if not isinstance(properties, dict):
            raise ValueError("properties must be a dict")
        _validate_shadow_keys(properties)
        _check_writable(self.products.device_model(device_id), service_id,
                        [k for k, v in properties.items() if v is not None], "desired values")
        with self.db.transaction() as conn:
            row = conn.execute("SELECT desired, version FROM shadow WHERE device_id=? AND service_id=?",
                               (device_id, service_id)).fetchone()
            current = row["version"] if row else 0
            if expected_version is not None and expected_version != current:
                raise ShadowVersionConflict(
                    f"shadow version {expected_version} of {service_id} is not the current version {current}")
            desired = json.loads(row["desired"]) if row and properties else {}
            for k, v in properties.items():
                if v is None:
                    desired.pop(k, None)
                else:
                    desired[k] = v
            version = current + 1
            conn.execute(
                "INSERT INTO shadow(device_id, service_id, desired, desired_time, version) VALUES (?,?,?,?,?) "
                "ON CONFLICT(device_id, service_id) DO UPDATE SET desired=excluded.desired, "
                "desired_time=excluded.desired_time, version=excluded.version",
                (device_id, service_id, json.dumps(desired), codec.event_time(), version))
        self._desired_block.pop(device_id, None)
        rec = self.get_device(device_id)
        gateway = rec.get("gateway_id") if rec else None
        if self.is_online(gateway or device_id):
            self.submit(self._push_desired, device_id)
        return version

    def delete_shadow(self, device_id: str) -> int:
        """Delete the whole shadow of ``device_id`` (IoTDA's DeleteDeviceShadow); returns the services removed."""
        removed = self.registry.clear_shadow(device_id)
        self._desired_block.pop(device_id, None)
        return removed

    def _apply_report(self, device_id: str, services: List[dict]) -> None:
        """Merge reported properties into the shadow: one upsert per service (the merge runs in sqlite,
        :func:`_merge_reported`), in the open batch transaction (committed with the trace, not per report)."""
        rows = []
        for svc in services:
            et = svc.get("event_time")
            if et is None or not _valid_event_time(et):
                et = codec.event_time()
            rows.append((device_id, svc["service_id"], json.dumps(svc["properties"]), et))
        if len(rows) == 1:
            self.db.deferred(_SHADOW_REPORT_SQL, rows[0])
            return
        with self.db.batched() as conn:   # several services: all or none
            for row in rows:
                conn.execute(_SHADOW_REPORT_SQL, row)

    def _desired_diff(self, device_id: str) -> List[dict]:
        out = []
        # only services with desired values can differ (this runs after every report: skip the others in SQL)
        for r in self.db.query("SELECT service_id, desired, reported FROM shadow WHERE device_id=? AND desired <> '{}'",
                               (device_id,)):
            desired, reported = json.loads(r["desired"]), json.loads(r["reported"])
            diff = {k: v for k, v in desired.items() if k not in reported or reported[k] != v}
            if diff:
                out.append({"service_id": r["service_id"], "properties": diff})
        return out

    def _push_desired(self, device_id: str) -> None:
        """Deliver desired values that differ from reported (worker thread; §6.3 protection window).

        One delivery per device at a time: a call made while one is in flight is not lost but makes
        that delivery compare desired and reported once more when its answer is in."""
        with self._desired_lock:
            if device_id in self._desired_inflight:
                self._desired_again.add(device_id)
                return
            self._desired_inflight.add(device_id)
        try:
            while True:
                if self._desired_block.get(device_id, 0) <= time.monotonic():
                    self._deliver_desired_once(device_id)
                with self._desired_lock:
                    if device_id not in self._desired_again:
                        self._desired_inflight.discard(device_id)
                        return
                    self._desired_again.discard(device_id)
        except BaseException:
            with self._desired_lock:
                self._desired_inflight.discard(device_id)
                self._desired_again.discard(device_id)
            raise

    def _deliver_desired_once(self, device_id: str) -> None:
        diff = self._desired_diff(device_id)
        if not diff:
            return
        try:
            self.set_properties(device_id, diff)
        except CommandTimeout:
            logger.info("desired properties of %s not acknowledged; pausing re-delivery", device_id)
            self._desired_block[device_id] = time.monotonic() + DESIRED_PROTECTION_S
        except (DeviceOffline, DeviceNotFound):
            pass
        except EmulatorError as exc:
            logger.info("desired properties of %s: %s", device_id, exc)

    # ---- uplink handling ------------------------------------------------------------------------------
    def register_topic_handler(self, kind: str, fn: Callable[[str, topics.TopicInfo, bytes], None]) -> None:
        """Call ``fn(device_id, topic_info, payload)`` on the dispatcher thread for every uplink of ``kind``."""
        self._handlers[kind].append(fn)

    def add_uplink_listener(self, fn: Callable[[str, topics.TopicInfo, bytes], None]) -> None:
        """Call ``fn(device_id, topic_info, payload)`` (dispatcher thread) for every uplink message."""
        self._uplink_listeners.append(fn)

    def remove_uplink_listener(self, fn: Callable[[str, topics.TopicInfo, bytes], None]) -> None:
        """Stop calling ``fn`` (added by :meth:`add_uplink_listener`); no error when it is not there."""
        try:
            self._uplink_listeners.remove(fn)
        except ValueError:
            pass

    def _bad(self, device_id: Optional[str], kind: str, reason: str) -> None:
        key = (device_id, kind)
        level = logging.DEBUG if key in self._warned else logging.WARNING
        self._warned.add(key)
        logger.log(level, "malformed %s from %s dropped: %s", kind, device_id, reason)

    def _json(self, device_id: Optional[str], kind: str, payload: bytes, empty_ok: bool = False) -> Optional[dict]:
        if empty_ok and not payload.strip():
            return {}
        try:
            return codec.loads_object(payload)
        except ValueError as exc:
            self._bad(device_id, kind, str(exc))
            return None

    def _uplink(self, topic: str, payload: bytes) -> None:
        if topic.startswith(bridge_protocol.PREFIX):   # a bridge's: its devices' uplinks come back here translated
            self.bridging.uplink(topic, payload)
            return
        info = self._topic_kinds.get(topic)
        if info is None:
            info = topics.classify(topic)
            if info.request_id is None:   # a device's report topics repeat; request-id topics do not
                if len(self._topic_kinds) >= _TOPIC_KINDS_CACHED:
                    self._topic_kinds.clear()
                self._topic_kinds[topic] = info
        self._trace("up", self._device_of(info, topic), info.kind, topic, payload)
        logger.debug("up %s (%d bytes)", topic, len(payload))
        kind = info.kind
        if kind in (topics.COMMAND_RESPONSE, topics.PROPERTIES_SET_RESPONSE, topics.PROPERTIES_GET_RESPONSE):
            self._response(info, payload)
        elif kind in _HANDLED_UPLINKS or self._uplink_listeners or self._handlers.get(kind):
            if (kind == topics.PROPERTIES_REPORT and info.encoding is None and self._dispatch_idle
                    and not self._dispatch_items and not self._uplink_listeners and not self._handlers.get(kind)):
                # nothing queued before it and nothing to run but the shadow update: done here, on the thread
                # that took it. A hand-over per report woke the dispatcher, whose sqlite calls then contended
                # with this thread's for the GIL: that cost more than the update (doc/performance.md)
                self._handle_uplink(info, payload)
            else:
                self._dispatch(self._handle_uplink, info, payload)
        # else: traced, nothing to run (e.g. messages/up without listeners): no hand-over to the dispatcher

    def _response(self, info: topics.TopicInfo, payload: bytes) -> None:
        expected = {topics.COMMAND_RESPONSE: topics.COMMAND, topics.PROPERTIES_SET_RESPONSE: topics.PROPERTIES_SET,
                    topics.PROPERTIES_GET_RESPONSE: topics.PROPERTIES_GET}[info.kind]
        with self._pending_lock:
            pending = self._pending.get(info.request_id or "")
            if pending is None or pending.device_id != info.device_id or pending.kind != expected:
                logger.info("%s from %s for unknown or expired request %s ignored", info.kind, info.device_id,
                            info.request_id)
                return
            self._pending.pop(info.request_id, None)
        obj = self._json(info.device_id, info.kind, payload, empty_ok=True)
        if obj is None:
            pending.finish(error=EmulatorError(f"device {info.device_id} sent a malformed {info.kind}"))
        else:
            pending.finish(result=obj)

    def _handle_uplink(self, info: topics.TopicInfo, payload: bytes) -> None:
        kind, device_id = info.kind, info.device_id
        if info.encoding is not None:   # ?encoding=gzip (doc/protocol.md §2.11): inflate, bounded, before anyone reads it
            try:
                compression.encoding_of(info.encoding)
                payload = compression.gunzip_bounded(payload)
            except ValueError as exc:
                self._bad(device_id, kind, f"encoding={info.encoding}: {exc}")
                return
        try:
            if kind == topics.PROPERTIES_REPORT:
                self._on_properties_report(device_id, payload)
            elif kind == topics.GATEWAY_PROPERTIES_REPORT:
                self._on_gateway_report(device_id, payload)
            elif kind == topics.SHADOW_GET:
                self._on_shadow_get(device_id, info, payload)
            elif kind == topics.EVENTS_UP:
                self._on_events_up(device_id, payload)
        finally:
            for fn in list(self._uplink_listeners) + list(self._handlers.get(kind, ())):
                try:
                    fn(device_id, info, payload)
                except Exception:  # noqa: BLE001
                    logger.exception("uplink handler %r failed for %s", fn, kind)

    @staticmethod
    def _service_properties(items: Any) -> Tuple[List[dict], Optional[str]]:
        if not isinstance(items, list):
            return [], "services is not a list"
        good, bad = [], None
        for svc in items:
            if (isinstance(svc, dict) and isinstance(svc.get("service_id"), str) and svc["service_id"]
                    and isinstance(svc.get("properties"), dict)):
                try:
                    _validate_shadow_keys(svc["properties"])
                except ValueError as exc:
                    bad = str(exc)
                    continue
                good.append(svc)
            else:
                bad = "a service lacks service_id or properties"
        return good, bad

    def _on_properties_report(self, device_id: str, payload: bytes) -> None:
        obj = self._json(device_id, topics.PROPERTIES_REPORT, payload)
        if obj is None:
            return
        # one statement for both: does the device exist, and has any of its services desired values
        rows = self.db.query(_REPORT_STATE_SQL, (device_id,))
        if rows:
            self._report_services(device_id, device_id, topics.PROPERTIES_REPORT, obj.get("services"),
                                  has_desired=bool(rows[0][0]))

    def _on_gateway_report(self, gateway_id: str, payload: bytes) -> None:
        obj = self._json(gateway_id, topics.GATEWAY_PROPERTIES_REPORT, payload)
        if obj is None:
            return
        devices = obj.get("devices")
        if not isinstance(devices, list):
            self._bad(gateway_id, topics.GATEWAY_PROPERTIES_REPORT, "devices is not a list")
            return
        for entry in devices:
            child = entry.get("device_id") if isinstance(entry, dict) else None
            rec = self.get_device(child) if isinstance(child, str) else None
            if rec is None or (child != gateway_id and rec.get("gateway_id") != gateway_id):
                self._bad(gateway_id, topics.GATEWAY_PROPERTIES_REPORT, f"{child!r} is not a sub-device of the gateway")
                continue
            self._report_services(gateway_id, child, topics.GATEWAY_PROPERTIES_REPORT, entry.get("services"))

    def _report_services(self, sender_id: str, device_id: str, kind: str, raw_services: Any,
                         has_desired: Optional[bool] = None) -> None:
        """Apply reported services to ``device_id``'s shadow (bad entries logged against the sender), then
        push desired values that still differ. ``has_desired`` False: no service of the device has desired
        values (a report cannot add any), so there is nothing to compare; None: not known, compare."""
        services, problem = self._service_properties(raw_services)
        if problem:
            self._bad(sender_id, kind, problem)
        model = self.products.device_model(device_id) if services else None
        if model is not None:   # IoTDA keeps only what the product model defines
            services = _within_model(services, model)
        if services:
            self._apply_report(device_id, services)
            if has_desired is not False and self._desired_diff(device_id):
                self.submit(self._push_desired, device_id)

    def _on_shadow_get(self, device_id: str, info: topics.TopicInfo, payload: bytes) -> None:
        if not info.request_id:
            self._bad(device_id, topics.SHADOW_GET, "no request id")
            return
        obj = self._json(device_id, topics.SHADOW_GET, payload, empty_ok=True) or {}
        target = obj.get("object_device_id") or device_id
        service_id = obj.get("service_id")
        shadow: List[dict] = []
        if not isinstance(target, str) or (service_id is not None and not isinstance(service_id, str)):
            self._bad(device_id, topics.SHADOW_GET, "object_device_id/service_id must be strings")
            target = device_id if not isinstance(target, str) else target
            service_id = None
        rec = self.get_device(target)
        if rec is not None and (target == device_id or rec.get("gateway_id") == device_id):
            shadow = self.shadow(target, service_id)
        else:
            self._bad(device_id, topics.SHADOW_GET, f"shadow of {target!r} not available to {device_id}")
        self.publish(topics.shadow_get_response(device_id, info.request_id),
                     {"object_device_id": target, "shadow": shadow}, qos=1)

    def _on_events_up(self, device_id: str, payload: bytes) -> None:
        obj = self._json(device_id, topics.EVENTS_UP, payload)
        if obj is None:
            return
        services = obj.get("services")
        object_device_id = obj.get("object_device_id")
        if object_device_id is not None and not isinstance(object_device_id, str):
            self._bad(device_id, topics.EVENTS_UP, "object_device_id is not a string")
            object_device_id = None
        if not isinstance(services, list):
            self._bad(device_id, topics.EVENTS_UP, "services is not a list")
            return
        for event in services:
            if not isinstance(event, dict) or not isinstance(event.get("service_id"), str):
                self._bad(device_id, topics.EVENTS_UP, "an event lacks service_id")
                continue
            svc = self.services.get(event["service_id"])
            if svc is None:
                logger.info("event for unknown service %r from %s ignored", event["service_id"], device_id)
                continue
            try:
                svc.on_event(device_id, object_device_id, event)
            except Exception:  # noqa: BLE001 - a service bug must not stop the dispatcher
                logger.exception("service %s failed on an event from %s", type(svc).__name__, device_id)
