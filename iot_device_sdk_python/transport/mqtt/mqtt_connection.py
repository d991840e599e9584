"""MQTT transport on paho-mqtt 2.x (upstream ``transport.mqtt.mqtt_connection``).

What it does beyond (and instead of) upstream, on purpose:

* ``connect()`` returns an ``int`` (see :meth:`MqttConnection.connect`), waits for CONNACK with a bound
  (``MqttConnectConf.timeout``), never sleeps a fixed time, and never retries a credential refusal.
* paho's auto-reconnect is off: every attempt needs a fresh hour stamp in client id and password, so the
  SDK runs its own reconnect thread (``backoff.ReconnectBackoff``: exponential backoff with jitter over
  consecutive failed attempts; a connection that succeeded resets it). ``close()`` never reconnects and
  leaves no thread running.
* System downlink topics and custom topics are subscribed explicitly and restored on every reconnect.
* TLS through an ``ssl.SSLContext``: chain and host name verified, TLS 1.2 minimum, X.509 client
  certificates with an optional key password.
* Every publish returns a :class:`PublishHandle`; its ActionListener/handle is resolved on PUBACK (QoS 1)
  or write (QoS 0) even when the ack races the registration.
* Offline buffer (``max_buffer_message``): a bounded FIFO; when full the OLDEST message is dropped and its
  listener/handle told ``on_failure``; QoS 1 messages still unacknowledged when the link drops go back
  into the buffer (or fail when buffering is off). The buffer is flushed in order after reconnect,
  before any new publish goes out.
* Inbound messages and every listener call run on the device's dispatcher thread, never on paho's.
"""
from __future__ import annotations

import collections
import itertools
import logging
import socket
import ssl
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Set, Tuple, cast

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from iot_device_sdk_python.client.connect_auth_info import ConnectAuthInfo
from iot_device_sdk_python.client.mqtt_connect_conf import MqttConnectConf
from iot_device_sdk_python.protocol import codec, topics
from iot_device_sdk_python.transport.action_listener import ActionListener
from iot_device_sdk_python.transport.arg_check import topic_problem
from iot_device_sdk_python.transport.connect_action_listener import ConnectActionListener
from iot_device_sdk_python.transport.connect_listener import ConnectListener
from iot_device_sdk_python.transport.connection import Connection
from iot_device_sdk_python.transport.dispatcher import Dispatcher
from iot_device_sdk_python.client.mqtt_v5_data import MqttV5Data
from iot_device_sdk_python.errors import ConnectRefusedError
from iot_device_sdk_python.transport.mqtt import credentials, mqtt5, network
from iot_device_sdk_python.transport.mqtt.backoff import ReconnectBackoff
from iot_device_sdk_python.transport.offline_queue import BufferMetrics
from iot_device_sdk_python.transport.outbox import OutgoingMessage, Outbox
from iot_device_sdk_python.transport.publish_handle import PublishError, PublishHandle
from iot_device_sdk_python.transport.raw_message import RawMessage
from iot_device_sdk_python.transport.raw_message_listener import RawMessageListener
from iot_device_sdk_python.utils.redact import redact_payload

_logger = logging.getLogger(__name__)

# paho (v5-numbered) CONNACK reason codes -> MQTT 3.1.1 CONNACK codes returned by connect()
_CONNACK_BY_NAME = {
    "Unsupported protocol version": 1,
    "Client identifier not valid": 2,
    "Server unavailable": 3,
    "Bad user name or password": 4,
    "Not authorized": 5,
}
_CONNACK_BY_VALUE = {132: 1, 133: 2, 136: 3, 134: 4, 135: 5}


def _tcp_socket(client: mqtt.Client) -> Optional[socket.socket]:
    """The TCP (or TLS) socket under the client; for a WebSocket link the one paho's wrapper holds."""
    sock: Any = client.socket()
    if sock is not None and not isinstance(sock, socket.socket):
        sock = getattr(sock, "_socket", None)  # paho's _WebsocketWrapper keeps the real socket there
    return sock if isinstance(sock, socket.socket) else None


def _set_tcp_nodelay(client: mqtt.Client) -> None:
    """Turn Nagle off: paho writes each MQTT packet on its own, and a
    command response written right after the command's PUBACK otherwise waits for the server's delayed
    ACK (~40 ms on Linux) - see doc/performance.md."""
    sock = _tcp_socket(client)
    if sock is None:
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):  # not TCP (unix socket, websocket wrapper): nothing to do
        pass


#: one outgoing message and its handle (defined with the outbox that owns it; the old name stays importable)
_Out = OutgoingMessage


_MQTT_OK = MQTTErrorCode.MQTT_ERR_SUCCESS

#: topics already validated by ``topic_problem`` (str values; bounded, cleared when full)
_TOPIC_CACHE_MAX = 256


class _Attempt:
    """State of one connection attempt, shared with paho callbacks through ``userdata``."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.connack: Optional[int] = None
        self.lost = False
        self.established = False
        self.sub_mids: Set[int] = set()
        self.connected_at = 0.0
        # MQTT 5 only: the session state (aliases) and the CONNACK reason of a refusal
        self.v5: Optional[mqtt5.V5Session] = None
        self.connack_reason: Any = None


class MqttConnection(Connection):
    """One device's MQTT link to the platform (or to the provisioning server in bs_mode 1/2).

    ``connect()`` result codes (also the ``token`` given to ``ConnectActionListener.on_failure``):

    ======  =========================================================================
    0       connected (CONNACK accepted, subscriptions acknowledged, buffer flushed)
    1       CONNACK refused: unacceptable protocol version            (not retried)
    2       CONNACK refused: client id rejected / keepalive out of range (not retried)
    3       CONNACK refused: server unavailable                       (retried)
    4       CONNACK refused: bad user name or password                (not retried)
    5       CONNACK refused: not authorized (e.g. frozen device)      (not retried)
    -1      network error, TLS handshake/verification failure, no CONNACK within
            ``MqttConnectConf.timeout``, connection closed meanwhile   (retried)
    -2      local configuration error: CA/certificate/key file missing or unreadable,
            wrong key password, bad group secret                     (not retried)
    ======  =========================================================================

    "Retried" means: when ``reconnect_on_failure`` is True, the connection keeps trying in the background
    (``connect_complete(reconnect=...)`` tells when it succeeds); ``close()`` stops it.
    """

    MQTT_THREAD_NAME = "MqttThread"
    CONNECT_TYPE = credentials.CONNECT_TYPE

    CONNECT_SUCCESS = 0
    CONNECT_ERR_NETWORK = -1
    CONNECT_ERR_CONFIG = -2
    NON_RETRYABLE_CODES = frozenset({1, 2, 4, 5, -2})
    #: close() waits at most this long for in-flight messages to be acknowledged
    CLOSE_DRAIN_SECONDS = 2.0

    def __init__(self, connect_auth_info: ConnectAuthInfo, mqtt_connect_conf: MqttConnectConf,
                 raw_msg_listener: Optional[RawMessageListener], dispatcher: Optional[Dispatcher] = None,
                 subscribe_system_topics: Optional[bool] = None) -> None:
        self._auth = connect_auth_info
        self._conf = mqtt_connect_conf
        self._raw_msg_listener = raw_msg_listener
        self._own_dispatcher = dispatcher is None
        self._dispatcher = dispatcher or Dispatcher(f"iot-dispatch-{connect_auth_info.id}")
        # system topics are for the platform connection; a provisioning connection subscribes itself
        self._subscribe_system = subscribe_system_topics

        self._lock = threading.RLock()
        self._drained = threading.Condition(self._lock)  # notified when an in-flight message is acked
        self._drain_waiters = 0  # close() waiting on _drained: only then does a PUBACK notify it
        self._ok_topics: Dict[str, bool] = {}  # topics that passed topic_problem() (hot-path cache)
        self._handle_runner = self._run_handle_callback  # one bound method, not a new one per handle
        self._connect_lock = threading.Lock()
        self._closed = threading.Event()
        self._client: Optional[mqtt.Client] = None
        self._attempt: Optional[_Attempt] = None
        self._online = False
        # the client while online, else None: one reference the publish hot path reads without the lock.
        # Always written under self._lock together with _client/_online (so it equals
        # ``self._client if self._online else None`` at every moment a lock holder could observe)
        self._live: Optional[mqtt.Client] = None
        self._v5_on = False  # the current client speaks MQTT 5 (its _Attempt.v5 holds the session)
        self._ever_connected = False
        self._pending: Dict[int, _Out] = {}
        self._early_acks: Dict[int, float] = {}  # mid -> when paho reported it before _track() saw it
        self._early_refusals: Dict[int, Any] = {}  # MQTT 5: mid -> reason code of such an early PUBACK refusal
        self._early_limit = 64  # prune _early_acks when it grows past this (see _on_publish)
        self._seq = itertools.count()
        self._subscriptions: "collections.OrderedDict[str, int]" = collections.OrderedDict()
        self._connect_listeners: List[ConnectListener] = []
        self._connect_action_listener: Optional[ConnectActionListener] = None
        self._internal_action_listeners: List[ConnectActionListener] = []
        self._reconnect_thread: Optional[threading.Thread] = None
        self._backoff = ReconnectBackoff(connect_auth_info.min_backoff, connect_auth_info.max_backoff)
        self._last_error: Optional[BaseException] = None
        # durable offline queue, buffer metrics, half-open watchdog, clock
        self._clock = time.time  # wall clock for the client-id hour stamp (tests inject another)
        self._ack_ref = 0.0  # monotonic time of the last PUBACK (or of the first message in flight)
        self._watchdog_thread: Optional[threading.Thread] = None
        queue_path = getattr(connect_auth_info, "offline_queue_path", None)
        qmax = getattr(connect_auth_info, "offline_queue_max", None)
        if qmax is not None and (isinstance(qmax, bool) or not isinstance(qmax, int) or qmax <= 0):
            raise ValueError(f"offline_queue_max: must be an int > 0 or None, got {qmax!r}")
        # every message from publish to the broker's answer (buffer, durable file, write-ahead): one owner
        self._outbox = Outbox(self._lock, queue_path, qmax, lambda: self._auth.max_buffer_message or 0,
                              self._fail_overflow, f"device {connect_auth_info.id}")
        self._buffer = self._outbox.buffer  # the same deque, never replaced (read under the lock)
        # with a durable queue every QoS 1 message is committed to the file before it is sent
        self._write_ahead = bool(queue_path)
        ack = getattr(connect_auth_info, "ack_timeout", None)
        if ack is not None and (isinstance(ack, bool) or not isinstance(ack, (int, float)) or ack <= 0):
            raise ValueError(f"ack_timeout: must be a positive number of seconds or None, got {ack!r}")
        self._ack_timeout = ack
        if queue_path:
            self._open_offline_queue()

    # ---- public API ------------------------------------------------------------------------------

    def connect(self) -> int:
        """Connect once, blocking for at most about ``MqttConnectConf.timeout`` seconds.

        Returns 0 on success or one of the codes in the class docstring. A retryable failure with
        ``reconnect_on_failure`` starts background reconnection. Calling it while connected returns 0;
        while another attempt runs, -1.
        """
        if self._online:
            return 0
        self._closed.clear()
        self._start_reliability()
        rc = self._connect_once(reconnect=False)
        if rc != 0:
            self._backoff.failed()
        if rc != 0 and rc not in self.NON_RETRYABLE_CODES and self._auth.reconnect_on_failure:
            self._start_reconnect_thread()
        return rc

    def publish_message(self, raw_message: RawMessage,
                        message_publish_listener: Optional[ActionListener] = None) -> PublishHandle:
        """Publish ``raw_message`` (QoS from the message), or buffer it while offline.

        Returns a :class:`PublishHandle`; ``message_publish_listener`` (if any) is told the same outcome
        on the dispatcher thread.
        """
        problem = self._check_message(raw_message)
        if problem:
            bm = _Out(getattr(raw_message, "topic", None), getattr(raw_message, "payload", None),
                      getattr(raw_message, "qos", None), message_publish_listener, next(self._seq),
                      self._handle_runner)
            self._fail(bm, PublishError.REASON_INVALID, problem, log_topic=getattr(raw_message, "topic", "?"))
            return bm
        bm = _Out(raw_message.topic, raw_message.payload, raw_message.qos, message_publish_listener,
                  next(self._seq), self._handle_runner)
        v5_data = getattr(raw_message, "v5_data", None)
        if v5_data is not None:
            problem = self._check_v5_data(v5_data)
            if problem:
                self._fail(bm, PublishError.REASON_INVALID, problem)
                return bm
            bm._o_props = v5_data
        return self._publish_out(bm)

    def _check_v5_data(self, v5_data: Any) -> Optional[str]:
        """Why ``v5_data`` cannot be sent (None when it can): MQTT 5 properties need an MQTT 5 connection."""
        if not isinstance(v5_data, MqttV5Data):
            return f"v5_data: a MqttV5Data expected, got {type(v5_data).__name__}"
        if self._conf.protocol_version != MqttConnectConf.MQTT_V5:
            return "v5_data: MQTT 5 properties need MqttConnectConf.protocol_version = MQTT_V5"
        try:
            v5_data.check()
        except ValueError as exc:
            return str(exc)
        return None

    def _publish_fast(self, topic: str, payload: Any, qos: Any, listener: Optional[ActionListener],
                      v5_data: Optional[MqttV5Data] = None) -> PublishHandle:
        """SDK use (DeviceClient): :meth:`publish_message` without building a RawMessage first.

        ``payload`` must be str or bytes (DeviceClient guarantees it); topic and ``qos`` are validated as
        in :meth:`publish_message` (same errors). Same steps as ``_publish_out``/``_send``, inlined: this
        runs once per report and every Python call level costs (doc/performance.md).
        """
        if topic.__class__ is not str or v5_data is not None:
            return self.publish_message(RawMessage(topic, payload, qos, v5_data), listener)
        bm = handle = _Out(topic, payload, qos, listener, next(self._seq), self._handle_runner)
        if topic not in self._ok_topics or qos not in (0, 1):
            problem = self._check_topic_qos(topic, qos)
            if problem:
                self._fail(bm, PublishError.REASON_INVALID, problem)
                return handle
        if self._write_ahead and qos == 1:
            self._outbox.write_ahead(bm)  # on disk before it can leave: a crash from here on loses nothing
        lock = self._lock
        # online: the client without taking the lock (one atomic read of a reference that is only
        # written under the lock; taking the lock here contended with paho's thread in _on_publish)
        client = self._live
        if client is None:
            with lock:  # offline (or just changing): decide under the lock, as before
                client = self._live
                if client is None:
                    self._buffer_or_fail_locked(bm, "not connected")
                    return handle
        try:
            if self._v5_on:  # MQTT 5: topic aliases (this client's session)
                info = self._publish_v5(client, bm)
            else:
                info = client.publish(topic, payload, qos)
        except (ValueError, TypeError) as exc:  # too large, bad payload: not retryable
            self._fail(bm, PublishError.REASON_INVALID, f"publish rejected: {exc}", exc)
            return handle
        if info.rc != _MQTT_OK:
            with lock:
                self._buffer_or_fail_locked(bm, "connection lost while publishing")
            return handle
        if _logger.isEnabledFor(logging.DEBUG):
            _logger.debug("publish mid=%s topic=%s payload=%s", info.mid, topic, redact_payload(payload))
        self._track(client, bm, info.mid)
        return handle

    def _publish_out(self, bm: _Out) -> PublishHandle:
        handle = bm
        if self._write_ahead and bm._o_qos == 1:
            self._outbox.write_ahead(bm)
        with self._lock:
            client = self._client if self._online else None
            if client is None:
                self._buffer_or_fail_locked(bm, "not connected")
                return handle
        if not self._send(client, bm):
            with self._lock:
                self._buffer_or_fail_locked(bm, "connection lost while publishing")
        return handle

    def close(self) -> None:
        """Disconnect for good: no reconnect, buffered and in-flight messages fail with reason
        ``closed``, and the paho and reconnect threads are joined."""
        with self._lock:  # give in-flight messages a moment to be acknowledged (graceful close)
            deadline = time.monotonic() + self.CLOSE_DRAIN_SECONDS
            self._drain_waiters += 1
            try:
                while self._online and self._pending and time.monotonic() < deadline:
                    self._drained.wait(max(0.0, deadline - time.monotonic()))
            finally:
                self._drain_waiters -= 1
        self._closed.set()
        with self._lock:
            client, self._client = self._client, None
            self._online = False
            self._live = None
            attempt = self._attempt
            dropped = self._claim_pending() + list(self._buffer)
            self._buffer.clear()
        if attempt is not None:
            with attempt.cond:
                attempt.lost = True
                attempt.cond.notify_all()
        for bm in sorted(dropped, key=lambda b: b._o_seq):
            self._fail(bm, PublishError.REASON_CLOSED, "connection closed before the message was sent")
        if client is not None:
            self._retire(client)
        thread = self._reconnect_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(10)
        self._stop_reliability()
        if self._own_dispatcher:
            self._dispatcher.stop()

    def is_connected(self) -> bool:
        """True while connected and usable (CONNACK accepted, subscriptions restored)."""
        return self._online

    def add_connect_listener(self, connect_listener: ConnectListener) -> None:
        """Add a :class:`ConnectListener` (many allowed, duplicates ignored)."""
        if connect_listener is not None and connect_listener not in self._connect_listeners:
            self._connect_listeners.append(connect_listener)

    def set_connect_action_listener(self, connect_action_listener: ConnectActionListener) -> None:
        """Set the user's :class:`ConnectActionListener` (one slot; SDK-internal ones are kept apart)."""
        self._connect_action_listener = connect_action_listener

    def add_internal_connect_action_listener(self, listener: ConnectActionListener) -> None:
        """SDK use: a ConnectActionListener that does not occupy the user's slot (e.g. device logs)."""
        if listener not in self._internal_action_listeners:
            self._internal_action_listeners.append(listener)

    def subscribe_topic(self, topic: str, qos: int = 1) -> bool:
        """Subscribe now when connected, and after every reconnect. Returns False on an immediate error."""
        if not isinstance(topic, str) or not topic:
            raise ValueError("topic must be a non-empty str")
        bad = topic_problem(topic)  # else every reconnect would be dropped
        if bad:
            raise ValueError(f"topic: {bad}")
        qos = 1 if qos not in (0, 1) else qos
        with self._lock:
            self._subscriptions[topic] = qos
            client = self._client if self._online else None
        if client is None:
            return True
        rc, _mid = client.subscribe(topic, qos)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            _logger.warning("subscribe to %s failed now (rc=%s); it is retried after reconnect", topic, rc)
            return False
        return True

    def unsubscribe_topic(self, topic: str) -> None:
        """Forget a custom subscription (and unsubscribe when connected)."""
        with self._lock:
            self._subscriptions.pop(topic, None)
            client = self._client if self._online else None
        if client is not None:
            client.unsubscribe(topic)

    def get_buffered_count(self) -> int:
        """Messages waiting in the offline buffer."""
        with self._lock:
            return len(self._buffer)

    @property
    def dispatcher(self) -> Dispatcher:
        return self._dispatcher

    @property
    def last_error(self) -> Optional[BaseException]:
        """The exception of the last failed attempt, if any (for diagnostics)."""
        return self._last_error

    def _get_paho_client(self) -> Optional[mqtt.Client]:
        """The current paho client (tests and diagnostics)."""
        return self._client

    def _set_connect_auth_info(self, connect_auth_info: ConnectAuthInfo) -> None:
        """SDK use: switch to new settings (after bootstrap); takes effect on the next attempt."""
        self._auth = connect_auth_info
        self._backoff = ReconnectBackoff(connect_auth_info.min_backoff, connect_auth_info.max_backoff)

    # ---- upstream-named protected helpers -------------------------------------------------------------

    def _is_connecting(self) -> bool:
        return self._connect_lock.locked()

    def _release_connecting_flag(self) -> None:
        if self._connect_lock.locked():
            try:
                self._connect_lock.release()
            except RuntimeError:
                pass

    # upstream-named helpers; the rules live in transport/mqtt/credentials.py

    def _generate_client_id(self, timestamp: str) -> str:
        """The MQTT client id for an attempt made in hour ``timestamp`` (``YYYYMMDDHH``)."""
        return credentials.client_id(self._auth, timestamp, self.CONNECT_TYPE)

    def _password(self, timestamp: str) -> Optional[str]:
        return credentials.password(self._auth, timestamp)

    def _ca_file(self) -> Optional[str]:
        return credentials.ca_file(self._auth)

    def _ssl_connect_config(self, ca_certs: Optional[str], cert_file: Optional[str], keyfile: Optional[str]) -> ssl.SSLContext:
        """An SSLContext that verifies chain and host name, TLS 1.2+, with an optional client cert."""
        return credentials.ssl_context(ca_certs, cert_file, keyfile, self._auth.key_password)

    def _mqtt_with_ssl_connect_config(self, client: mqtt.Client) -> None:
        auth = self._auth
        x509 = auth.auth_type == ConnectAuthInfo.X509_AUTH
        client.tls_set_context(self._ssl_connect_config(self._ca_file(), auth.cert_path if x509 else None,
                                                        auth.key_path if x509 else None))

    def _set_callback(self, client: mqtt.Client) -> None:
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe

    # ---- connecting ---------------------------------------------------------------------------------

    def _host(self) -> str:
        host = str(self._auth.server_uri)
        if "://" in host:  # tolerate "ssl://host" as in an upstream docstring
            host = host.split("://", 1)[1]
        return host.rstrip("/")

    def _system_topics(self) -> List[str]:
        subscribe = self._subscribe_system
        if subscribe is None:
            subscribe = self._auth.bs_mode == ConnectAuthInfo.BS_MODE_DIRECT_CONNECT
        return topics.device_downlink_subscriptions(cast(str, self._auth.id)) if subscribe else []

    def _connect_once(self, reconnect: bool) -> int:
        if not self._connect_lock.acquire(blocking=False):
            _logger.warning("device %s: a connection attempt is already running", self._auth.id)
            return self.CONNECT_ERR_NETWORK
        try:
            if self._online:
                return 0  # someone else connected meanwhile: nothing to notify
            if self._closed.is_set():
                return self.CONNECT_ERR_NETWORK
            try:
                rc, err = self._attempt_connect()
            except Exception as exc:  # a bug must not kill the reconnect thread; report it as a failure
                _logger.exception("device %s: unexpected error while connecting", self._auth.id)
                rc, err = self.CONNECT_ERR_NETWORK, exc
            self._last_error = err
            if rc != 0:
                self._notify_attempt_failed(rc, err)
            return rc
        finally:
            self._connect_lock.release()

    def _attempt_connect(self) -> Tuple[int, Optional[Exception]]:
        auth, conf = self._auth, self._conf
        timeout = float(conf.timeout)
        deadline = time.monotonic() + timeout
        with self._lock:
            old, self._client = self._client, None
            self._live = None
        if old is not None:
            self._retire(old)
        stamp = codec.utc_hour_stamp(self._clock())
        try:
            client_id = self._generate_client_id(stamp)
            password = self._password(stamp)
            v5 = conf.protocol_version == MqttConnectConf.MQTT_V5
            transport = network.paho_transport(auth)
            if v5:  # MQTT 5 has clean start (given to connect()) instead of clean session
                client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5,
                                     transport=transport, reconnect_on_failure=False)
            else:
                client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True,
                                     protocol=mqtt.MQTTv311, transport=transport, reconnect_on_failure=False)
            client.username_pw_set(auth.id, password)
            if auth.use_tls():
                self._mqtt_with_ssl_connect_config(client)
            network.configure(client, auth)  # WebSocket path/headers, proxy
        except (OSError, ValueError, ssl.SSLError) as exc:
            _logger.error("device %s: cannot prepare the connection: %s", auth.id, exc)
            return self.CONNECT_ERR_CONFIG, exc
        inflight = auth.inflight_messages
        if isinstance(inflight, int) and inflight >= 0:
            client.max_inflight_messages_set(inflight)
        client.connect_timeout = max(0.5, timeout)
        attempt = _Attempt()
        client.user_data_set(attempt)
        self._set_callback(client)
        # opt-in: one shared epoll loop instead of a paho thread per device
        network_loop = getattr(conf, "network_loop", None)
        if network_loop is not None:
            network_loop.attach(client)
        with self._lock:
            if self._closed.is_set():
                return self.CONNECT_ERR_NETWORK, None
            self._client = client
            self._attempt = attempt
            self._v5_on = v5
            self._requeue_pending_locked("new connection")  # normally empty: the loss requeued them
            self._early_acks.clear()
            self._early_refusals.clear()
        host, port = self._host(), int(cast(int, auth.port))  # both checked by DeviceClient
        _logger.info("device %s: connecting to %s:%s (tls=%s, %s%s)", auth.id, host, port, auth.use_tls(),
                     network.describe(auth), ", MQTT 5" if v5 else "")
        try:
            if v5:
                client.connect(host, port, int(conf.keep_alive_time), clean_start=True)
            else:
                client.connect(host, port, int(conf.keep_alive_time))
        except (OSError, ValueError) as exc:  # refused, unreachable, TLS verification, timeout
            _logger.warning("device %s: connection to %s:%s failed: %s", auth.id, host, port, exc)
            self._abandon(client)
            return self.CONNECT_ERR_NETWORK, exc
        _set_tcp_nodelay(client)
        if network_loop is None:
            client.loop_start()
        with attempt.cond:
            while attempt.connack is None and not attempt.lost:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                attempt.cond.wait(remaining)
            code, lost = attempt.connack, attempt.lost
        if code is None or lost and code == 0:
            _logger.warning("device %s: no CONNACK within %.1f s", auth.id, timeout)
            self._abandon(client)
            return self.CONNECT_ERR_NETWORK, TimeoutError("no CONNACK") if code is None else ConnectionError("connection lost")
        if code != 0:
            value, name = mqtt5.reason(attempt.connack_reason)
            _logger.error("device %s: connection refused by the server, CONNACK code %s (%s)", auth.id, code, name)
            self._abandon(client)
            # reason_code: the MQTT 5 reason code (on 3.1.1, paho's MQTT 5 number for the return code)
            return code, ConnectRefusedError(code, reason_code=value, reason_name=name)
        # restore subscriptions before anything else goes out, and wait (bounded) for the SUBACKs
        with self._lock:
            wanted = [(t, 1) for t in self._system_topics()] + list(self._subscriptions.items())
        with attempt.cond:
            for topic, qos in wanted:
                rc, mid = client.subscribe(topic, qos)
                if rc == MQTTErrorCode.MQTT_ERR_SUCCESS and mid is not None:
                    attempt.sub_mids.add(mid)
            while attempt.sub_mids and not attempt.lost:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    _logger.warning("device %s: %d subscription(s) not acknowledged in time",
                                    auth.id, len(attempt.sub_mids))
                    break
                attempt.cond.wait(remaining)
            if attempt.lost:
                self._abandon(client)
                return self.CONNECT_ERR_NETWORK, ConnectionError("connection lost while subscribing")
        # flush the offline buffer in order; new publishes keep queueing behind it until we go online
        while True:
            with self._lock:
                if attempt.lost or self._client is not client:
                    break
                if not self._buffer:
                    attempt.established = True
                    attempt.connected_at = time.monotonic()
                    self._backoff.succeeded()  # a link that came up is not a failure (issue 14)
                    self._online = True
                    self._live = client
                    reconnect, self._ever_connected = self._ever_connected, True
                    # queued under the lock so that a quick loss is always reported after this
                    self._notify_connected(reconnect)
                    break
                bm = self._buffer.popleft()
            if not self._send(client, bm):
                with self._lock:
                    self._insert_locked(bm)
                break
        if not attempt.established:
            self._abandon(client)
            return self.CONNECT_ERR_NETWORK, ConnectionError("connection lost while flushing the buffer")
        _logger.info("device %s: connected to %s:%s", auth.id, host, port)
        return 0, None

    def _abandon(self, client: mqtt.Client) -> None:
        with self._lock:
            if self._client is client:
                self._client = None
                self._online = False
                self._live = None
                self._requeue_pending_locked("connection attempt failed")
        self._retire(client)

    @staticmethod
    def _retire(client: mqtt.Client) -> None:
        """Disconnect a paho client and join its network thread (never from that thread)."""
        try:
            client.disconnect()
        except Exception:  # already gone: nothing to do
            pass
        network_loop = getattr(client, "_iot_shared_loop", None)  # SharedNetworkLoop.attach() sets it
        try:
            if network_loop is not None:
                network_loop.detach(client)
            else:
                client.loop_stop()
        except Exception:
            _logger.debug("stopping the network loop failed", exc_info=True)
        try:  # a client whose TCP connect failed still owns its socket pair
            client._reset_sockets()  # noqa: SLF001 - paho has no public way to release them
        except Exception:
            pass

    @property
    def backoff(self) -> ReconnectBackoff:
        """The reconnect delay policy (its ``history`` holds the delays used; diagnostics)."""
        return self._backoff

    def _start_reconnect_thread(self) -> None:
        with self._lock:
            if self._closed.is_set() or self._reconnect_thread is not None:
                return  # a running loop re-checks the state before it exits
            self._reconnect_thread = threading.Thread(target=self._reconnect_loop, daemon=True,
                                                      name=f"iot-reconnect-{self._auth.id}")
            self._reconnect_thread.start()

    def _reconnect_loop(self) -> None:
        me = threading.current_thread()
        while True:
            with self._lock:
                if self._closed.is_set() or self._online:
                    if self._reconnect_thread is me:
                        self._reconnect_thread = None
                    return
            delay = self._backoff.next_delay()
            _logger.info("device %s: reconnecting in %.2f s (%d failed attempt(s) in a row)", self._auth.id, delay,
                         self._backoff.consecutive_failures)
            if self._closed.wait(delay):
                continue
            rc = self._connect_once(reconnect=True)
            if rc != 0:
                self._backoff.failed()
            if rc in self.NON_RETRYABLE_CODES:
                _logger.error("device %s: reconnect refused with code %s; giving up", self._auth.id, rc)
                with self._lock:
                    if self._reconnect_thread is me:
                        self._reconnect_thread = None
                return

    # ---- durable offline queue, metrics, half-open watchdog ------------------------------------------------

    def get_buffer_metrics(self) -> BufferMetrics:
        """Counters of the offline buffer: queued, sent, dropped, restored, size, durable."""
        return self._outbox.snapshot()

    def _buffer_limit(self) -> int:
        return self._outbox.limit()

    def _open_offline_queue(self) -> None:
        """Open the durable queue: what an earlier process left goes in front of the buffer."""
        self._seq = itertools.count(self._outbox.open(next(self._seq)))

    def _start_reliability(self) -> None:
        if self._write_ahead and not self._outbox.durable:
            self._open_offline_queue()
        if self._ack_timeout:
            with self._lock:
                if self._watchdog_thread is None or not self._watchdog_thread.is_alive():
                    self._watchdog_thread = threading.Thread(target=self._watchdog_loop, daemon=True,
                                                             name=f"iot-watchdog-{self._auth.id}")
                    self._watchdog_thread.start()

    def _stop_reliability(self) -> None:
        thread, self._watchdog_thread = self._watchdog_thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)
        self._outbox.close()

    def _forget_row(self, bm: _Out, sent: bool) -> None:
        self._outbox.forget(bm, sent)

    def _watchdog_loop(self) -> None:
        """Drop a link on which no PUBACK arrived for ``ack_timeout`` s while messages were in flight."""
        timeout = float(self._ack_timeout or 0)  # the watchdog only runs when ack_timeout is set
        step = max(0.05, min(1.0, timeout / 4))
        while not self._closed.wait(step):
            with self._lock:
                client = self._client if self._online else None
                waiting = len(self._pending)
                stale = waiting > 0 and time.monotonic() - self._ack_ref > timeout
                if stale:
                    self._ack_ref = time.monotonic()  # one drop per stall
            if client is not None and stale:
                self._drop_link(client, f"no PUBACK for {timeout:g} s with {waiting} message(s) in flight")

    def _drop_link(self, client: mqtt.Client, why: str) -> None:
        """Shut the socket down so paho reports the loss at once (re-queue and reconnect follow)."""
        _logger.warning("device %s: the link looks half-open (%s); dropping it", self._auth.id, why)
        sock = _tcp_socket(client)
        if sock is None:
            return
        try:  # the plain socket's shutdown: an SSLSocket's own would unwrap under paho's feet
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except (OSError, TypeError, ValueError):
            pass

    # ---- publishing -------------------------------------------------------------------------------

    def _check_message(self, raw: Any) -> Optional[str]:
        topic = getattr(raw, "topic", None)
        qos = getattr(raw, "qos", None)
        if topic.__class__ is not str or topic not in self._ok_topics or qos not in (0, 1):
            problem = self._check_topic_qos(topic, qos)
            if problem:
                return problem
        if not isinstance(raw.payload, (str, bytes, bytearray, type(None), int, float)):
            return f"payload of type {type(raw.payload).__name__} (str or bytes expected)"
        return None

    def _check_topic_qos(self, topic: Any, qos: Any) -> Optional[str]:
        """Why ``topic``/``qos`` cannot be published (None when they can); remembers good topics."""
        if not isinstance(topic, str) or not topic or "+" in topic or "#" in topic:
            return f"invalid topic {topic!r}"
        if topic not in self._ok_topics:
            bad = topic_problem(topic)  # no poison message for the broker
            if bad:
                return bad
            if topic.__class__ is str:  # a str subclass could compare equal yet differ: never cached
                ok = self._ok_topics
                if len(ok) >= _TOPIC_CACHE_MAX:
                    ok.clear()  # e.g. one topic per command response: keep the cache small
                ok[topic] = True
        if qos not in (0, 1):
            return f"invalid qos {qos!r} (0 or 1)"
        return None

    def _send(self, client: mqtt.Client, bm: _Out) -> bool:
        """Hand ``bm`` to paho. False when paho did not take it (no connection); True otherwise."""
        try:
            if self._v5_on:
                info = self._publish_v5(client, bm)
            else:
                info = client.publish(bm._o_topic, bm._o_payload, bm._o_qos)
        except (ValueError, TypeError) as exc:  # too large, bad payload: not retryable
            self._fail(bm, PublishError.REASON_INVALID, f"publish rejected: {exc}", exc)
            return True
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return False
        if _logger.isEnabledFor(logging.DEBUG):
            _logger.debug("publish mid=%s topic=%s payload=%s", info.mid, bm._o_topic,
                          redact_payload(bm._o_payload))
        self._track(client, bm, info.mid)
        return True

    @staticmethod
    def _publish_v5(client: mqtt.Client, bm: _Out) -> mqtt.MQTTMessageInfo:
        """Publish on an MQTT 5 client: its session adds the message's properties and topic alias."""
        attempt = client.user_data_get()
        data = getattr(bm, "_o_props", None)
        session = attempt.v5 if isinstance(attempt, _Attempt) else None
        if session is None:  # CONNACK not yet processed (cannot happen once online): no alias
            return client.publish(bm._o_topic, bm._o_payload, bm._o_qos,
                                  properties=mqtt5.to_paho(data) if data is not None else None)
        return session.publish(client, bm._o_topic, bm._o_payload, bm._o_qos, data)

    def topic_aliases(self) -> Dict[str, int]:
        """MQTT 5: topic -> alias agreed on the current connection (empty without aliases; diagnostics)."""
        client = self._client
        attempt = client.user_data_get() if client is not None else None
        session = attempt.v5 if isinstance(attempt, _Attempt) else None
        return session.aliases if session is not None else {}

    def _track(self, client: mqtt.Client, bm: _Out, mid: int) -> None:
        """Hold ``bm`` in the pending map until paho reports ``mid`` (PUBACK at QoS 1, write at QoS 0).

        No lock: paho's thread claims entries in :meth:`_on_publish` at the same moment, and this was the
        last lock the two threads took on every message (doc/performance.md, "Lock-free pending map").
        Instead every party claims an entry only with one atomic ``dict.pop``
        (this method, ``_on_publish``, the requeue on a lost link, ``close()``), so exactly one of them
        resolves or requeues each message:

        - an ack that comes before the entry (paho may write a QoS 0 message, or even receive the
          PUBACK, before ``publish()`` has returned) leaves a mark in ``_early_acks`` and looks again;
          this side looks for the mark before inserting and again after;
        - a link lost or replaced meanwhile (``attempt.lost`` is set before the requeue runs, ``_client``
          is changed before ``close()``/a new attempt claims the map): whoever runs second finds either
          the entry or the flag, never neither.
        """
        early = self._early_acks
        if early and early.pop(mid, None) is not None:  # paho was quicker (typical for QoS 0)
            self._succeed_early(bm, mid)
            return
        pending = self._pending
        if not pending and self._ack_timeout:  # (reliability helper) the ack watchdog counts from here
            self._ack_ref = time.monotonic()
        pending[mid] = bm
        if self._client is not client or client.user_data_get().lost:
            # the link went away after publish(): take the message back unless the requeue already did
            self._early_acks.pop(mid, None)
            if pending.pop(mid, None) is bm:
                with self._lock:
                    self._buffer_or_fail_locked(bm, "connection lost while publishing")
            return
        if self._early_acks and self._early_acks.pop(mid, None) is not None:  # acked while inserting
            if pending.pop(mid, None) is bm:
                self._succeed_early(bm, mid)

    def _succeed_early(self, bm: _Out, mid: int) -> None:
        """Resolve ``bm`` whose ack came before _track(): a success, unless it was an MQTT 5 refusal."""
        if self._early_refusals:
            refusal = self._early_refusals.pop(mid, None)
            if refusal is not None:
                self._fail_refused(bm, refusal)
                return
        self._succeed(bm, mid)

    def _buffer_or_fail_locked(self, bm: _Out, why: str) -> None:
        if self._closed.is_set():
            self._fail(bm, PublishError.REASON_CLOSED, "the connection is closed")
            return
        limit = self._buffer_limit()
        if limit <= 0:
            if self._link_coming_up_locked():
                # IoTDA pushes commands and property sets right after CONNACK, before connect() has restored
                # the subscriptions: an answer made then joins the flush that precedes going online
                self._buffer.append(bm)
                return
            self._fail(bm, PublishError.REASON_OFFLINE, f"{why} and the offline buffer is disabled")
            return
        self._insert_locked(bm)

    def _link_coming_up_locked(self) -> bool:
        """True between an accepted CONNACK and the moment the attempt marks the link online."""
        client = self._client
        if client is None or self._closed.is_set():
            return False
        attempt = client.user_data_get()
        return isinstance(attempt, _Attempt) and attempt.connack == 0 and not attempt.lost

    def _insert_locked(self, bm: _Out) -> None:
        """Put ``bm`` in the outbox's buffer at its place by sequence number; the oldest is dropped when full."""
        if self._buffer_limit() <= 0:
            self._fail(bm, PublishError.REASON_OFFLINE, "connection lost and the offline buffer is disabled")
            return
        self._outbox.insert(bm)

    def _fail_overflow(self, bm: _Out, text: str) -> None:
        self._fail(bm, PublishError.REASON_BUFFER_OVERFLOW, text)

    def _claim_pending(self) -> List[_Out]:
        """Take every in-flight message out of the pending map (by ``pop``: see :meth:`_track`), oldest first."""
        pending = self._pending
        claimed = [bm for bm in (pending.pop(mid, None) for mid in pending.copy()) if bm is not None]
        claimed.sort(key=lambda b: b._o_seq)
        return claimed

    def _requeue_pending_locked(self, why: str) -> None:
        for bm in self._claim_pending():
            self._insert_locked(bm)

    def _succeed(self, bm: _Out, mid: int) -> None:
        if bm._o_counted or bm._o_rowid is not None:  # buffered or written ahead: counters, durable row
            self._outbox.forget(bm, sent=True)
        bm._o_payload = None  # delivered: a handle the caller keeps must not keep the payload alive
        bm._set_success(mid)
        listener = bm._o_listener
        if listener is not None:
            if self._pending:  # more outcomes follow soon: one dispatcher wake-up for the batch (see _on_publish)
                self._dispatcher.submit_batched(self._call_success, listener, mid)
            else:
                self._dispatcher.submit(self._call_success, listener, mid)

    def _fail(self, bm: _Out, reason: str, text: str, cause: Optional[BaseException] = None,
              log_topic: Any = None, reason_code: Optional[int] = None) -> None:
        if reason == PublishError.REASON_CLOSED and bm._o_rowid is not None:
            text += "; it stays in the offline queue file and is sent by the next connection"
        else:  # a failed message leaves the durable queue
            self._forget_row(bm, sent=False)
        exc = PublishError(reason, text, reason_code)
        if cause is not None:
            exc.__cause__ = cause
        topic = bm._o_topic if log_topic is None else log_topic
        if reason in (PublishError.REASON_OFFLINE, PublishError.REASON_CLOSED):
            _logger.info("publish to %s not sent: %s", topic, text)
        else:
            _logger.warning("publish to %s failed: %s", topic, text)
        bm._set_failure(exc)
        listener = bm._o_listener
        if listener is not None:
            self._dispatcher.submit(listener.on_failure, text, exc)

    @staticmethod
    def _call_success(listener: ActionListener, mid: int) -> None:
        # the text is built here, on the dispatcher thread, not on paho's
        listener.on_success(message=f"publish message success, mid = {mid}")

    def _run_handle_callback(self, fn: Callable[[PublishHandle], object], handle: PublishHandle) -> None:
        if not self._dispatcher.submit(fn, handle):
            try:
                fn(handle)
            except Exception:
                _logger.exception("publish handle callback raised")

    # ---- notifications ---------------------------------------------------------------------------

    def _notify_connected(self, reconnect: bool) -> None:
        uri = str(self._auth.server_uri)
        for listener in list(self._connect_listeners):
            self._dispatcher.submit(listener.connect_complete, reconnect, uri)
        for action_listener in self._action_listeners():
            self._dispatcher.submit(self._call_action_success, action_listener)

    def _notify_attempt_failed(self, rc: int, err: Optional[Exception]) -> None:
        for listener in self._action_listeners():
            self._dispatcher.submit(self._call_action_failure, listener, rc, err)

    def _action_listeners(self) -> List[ConnectActionListener]:
        out = list(self._internal_action_listeners)
        if self._connect_action_listener is not None:
            out.append(self._connect_action_listener)
        return out

    @staticmethod
    def _call_action_success(listener: ConnectActionListener) -> None:
        listener.on_success(token=0)

    @staticmethod
    def _call_action_failure(listener: ConnectActionListener, rc: int, err: Optional[Exception]) -> None:
        listener.on_failure(token=rc, err=err)

    # ---- paho callbacks (network thread: never block, never call user code) -----------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, properties: Any = None) -> None:
        attempt: _Attempt = userdata
        code = 0
        if getattr(rc, "is_failure", False):
            code = _CONNACK_BY_NAME.get(str(rc)) or mqtt5.connack_return_code(rc)
            attempt.connack_reason = rc
        elif self._v5_on:  # the session exists before anything can be published on this client
            alias_max = min(int(self._conf.topic_alias_maximum or 0), mqtt5.server_topic_alias_maximum(properties))
            attempt.v5 = mqtt5.V5Session(alias_max)
        with attempt.cond:
            attempt.connack = code
            attempt.cond.notify_all()

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reason_code_list: Any,
                      properties: Any = None) -> None:
        attempt: _Attempt = userdata
        for rc in reason_code_list or []:
            if getattr(rc, "is_failure", False):
                _logger.error("device %s: a subscription was refused by the broker (%s)", self._auth.id, rc)
        with attempt.cond:
            attempt.sub_mids.discard(mid)
            attempt.cond.notify_all()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, disconnect_flags: Any, rc: Any,
                       properties: Any = None) -> None:
        attempt: _Attempt = userdata
        with attempt.cond:
            attempt.lost = True
            attempt.cond.notify_all()
        with self._lock:
            if client is not self._client or self._closed.is_set():
                return  # a retired client or the user's own close(): nothing to recover
            was_established = attempt.established
            self._online = False
            self._live = None
            self._requeue_pending_locked("connection lost")
            if self._drain_waiters:
                self._drained.notify_all()
            if not was_established:
                return  # the connecting thread handles a failure during its own attempt
            cause = str(rc)
            _logger.warning("device %s: connection lost (%s)", self._auth.id, cause)
            for listener in list(self._connect_listeners):
                self._dispatcher.submit(listener.connection_lost, cause)
        if self._auth.reconnect_on_failure:
            self._start_reconnect_thread()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason_code: Any = None,
                    properties: Any = None) -> None:
        # network thread (or the publishing thread, for a QoS 0 write made at once), once per PUBACK or
        # write: resolve here without the lock (see _track), wake nobody unless a listener/done-callback
        # needs the dispatcher or close() waits for the drain
        if client is not self._client:
            return
        if userdata.v5 is not None and getattr(reason_code, "is_failure", False):  # MQTT 5: a refusing PUBACK
            self._refused(mid, reason_code)
            return
        pending = self._pending
        bm = pending.pop(mid, None)
        if bm is None:  # the ack beat the registration in _track(): leave a mark, then look once more
            now = time.monotonic()
            early = self._early_acks
            if len(early) > self._early_limit:
                # marks are normally taken at once; one this old was never claimed. Pruned in place from
                # a snapshot (dict.copy() runs no Python code, so no other thread can change the map
                # halfway, which iterating the map itself allows), and only when the map doubled
                for m, t in early.copy().items():
                    if now - t >= 10:
                        early.pop(m, None)
                self._early_limit = max(64, 2 * len(early))
            early[mid] = now
            bm = pending.pop(mid, None)
            if bm is None:
                return
            early.pop(mid, None)
        if self._ack_timeout:
            self._ack_ref = time.monotonic()  # progress for the watchdog
        if self._drain_waiters and not pending:
            with self._lock:
                self._drained.notify_all()
        if bm._o_counted or bm._o_rowid is not None:  # buffered or written ahead: counters, durable row
            self._outbox.forget(bm, sent=True)
        bm._o_payload = None  # delivered: a handle the caller keeps must not keep the payload alive
        bm._set_success(mid)
        listener = bm._o_listener
        if listener is not None:
            # A thread wake-up per outcome cost as much CPU as the rest of a QoS 1 report (issue 15). While
            # more publishes are in flight their outcomes follow soon: hand them to the dispatcher in one
            # wake-up (at most Dispatcher.BATCH_DELAY later). The last one in flight wakes it at once, so a
            # program that waits for each outcome before publishing again sees no delay.
            if pending:
                self._dispatcher.submit_batched(self._call_success, listener, mid)
            else:
                self._dispatcher.submit(self._call_success, listener, mid)

    def _refused(self, mid: int, reason_code: Any) -> bool:
        """MQTT 5: the server refused message ``mid`` in its PUBACK: fail it now, or when _track() gets it."""
        bm = self._pending.pop(mid, None)
        if bm is None:
            # the ack beat _track(): record the refusal, then leave the early mark (in that order, so
            # _track() always finds the refusal with the mark), then look once more, as _on_publish does
            self._early_refusals[mid] = reason_code
            self._early_acks[mid] = time.monotonic()
            bm = self._pending.pop(mid, None)
            if bm is None:
                return True
            self._early_acks.pop(mid, None)
            self._early_refusals.pop(mid, None)
        self._fail_refused(bm, reason_code)
        return True

    def _fail_refused(self, bm: _Out, reason_code: Any) -> None:
        if bm._o_counted or bm._o_rowid is not None:  # it reached the server: out of the buffer and the file
            self._outbox.forget(bm, sent=True)
        value, name = mqtt5.reason(reason_code)
        text = f"the server refused the publish: {name} (reason code 0x{value or 0:02X})"
        self._fail(bm, PublishError.REASON_REFUSED, text, reason_code=value)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: Any) -> None:  # msg: paho's MQTTMessage
        if _logger.isEnabledFor(logging.DEBUG):
            _logger.debug("received topic=%s payload=%s", msg.topic, redact_payload(msg.payload))
        listener = self._raw_msg_listener
        if listener is None:
            return
        v5_data = MqttV5Data.from_paho(msg.properties) if userdata.v5 is not None else None
        self._dispatcher.submit(listener.on_message_received, RawMessage(msg.topic, msg.payload, msg.qos, v5_data))
