"""The device-side IoTDA client API (upstream ``client.device_client``).

Every ``report_*`` / ``respond_*`` / ``publish_*`` call returns a
:class:`~iot_device_sdk_python.transport.publish_handle.PublishHandle` and also tells the optional
``ActionListener``. Inbound traffic is routed on the device's dispatcher thread (never paho's).
"""
from __future__ import annotations

import gzip
import logging
import uuid
from typing import Any, Callable, Dict, List, Optional, TYPE_CHECKING, Tuple, Union, cast

from iot_device_sdk_python.client.connect_auth_info import ConnectAuthInfo
from iot_device_sdk_python.client.iot_result import IotResult
from iot_device_sdk_python.client.listener.broadcast_listener import BroadcastListener
from iot_device_sdk_python.client.listener.command_listener import CommandListener
from iot_device_sdk_python.client.listener.device_message_listener import DeviceMessageListener
from iot_device_sdk_python.client.listener.device_shadow_listener import DeviceShadowListener
from iot_device_sdk_python.client.listener.property_listener import PropertyListener
from iot_device_sdk_python.client.listener.raw_device_message_listener import RawDeviceMessageListener
from iot_device_sdk_python.client.mqtt_connect_conf import MqttConnectConf
from iot_device_sdk_python.client.mqtt_v5_data import MqttV5Data
from iot_device_sdk_python.client.request.command import Command
from iot_device_sdk_python.client.request.command_response import CommandRsp
from iot_device_sdk_python.client.request.device_base_info import DeviceBaseInfo
from iot_device_sdk_python.client.request.device_event import DeviceEvent
from iot_device_sdk_python.client.request.device_events import DeviceEvents
from iot_device_sdk_python.client.request.device_message import DeviceMessage
from iot_device_sdk_python.client.request.props_get import PropsGet
from iot_device_sdk_python.client.request.props_set import PropSet
from iot_device_sdk_python.client.request.raw_device_message import RawDeviceMessage
from iot_device_sdk_python.client.request.service_property import ServiceProperty
from iot_device_sdk_python.client.request.shadow_data import ShadowData
from iot_device_sdk_python import errors
from iot_device_sdk_python.protocol import codec, topics
from iot_device_sdk_python.transport.action_listener import ActionListener
from iot_device_sdk_python.transport import arg_check as _chk
from iot_device_sdk_python.transport.connect_listener import ConnectListener
from iot_device_sdk_python.transport.dispatcher import Dispatcher
from iot_device_sdk_python.transport.mqtt import network as _network
from iot_device_sdk_python.transport.mqtt.mqtt_connection import MqttConnection
from iot_device_sdk_python.transport.process_keeper import ProcessKeeper
from iot_device_sdk_python.transport.publish_handle import PublishHandle
from iot_device_sdk_python.transport.raw_message import RawMessage
from iot_device_sdk_python.transport.raw_message_listener import RawMessageListener

if TYPE_CHECKING:
    from iot_device_sdk_python.bootstrap.bootstrap_client import BootstrapResult
    from iot_device_sdk_python.rule.model.action_handler import ActionHandler
    from iot_device_sdk_python.rule.model.actions import Action
    from iot_device_sdk_python.service.abstract_device import AbstractDevice
    from iot_device_sdk_python.transport.connect_action_listener import ConnectActionListener
    from iot_device_sdk_python.transport.offline_queue import BufferMetrics

_logger = logging.getLogger(__name__)
_dumps_bytes = codec.dumps_bytes

SDK_VERSION = "Python_v2.0.0"

# request kinds that get an error answer when their payload is unusable
_SYSTEM_DOWN_KINDS = {topics.MESSAGES_DOWN, topics.COMMAND, topics.PROPERTIES_SET, topics.PROPERTIES_GET,
                      topics.SHADOW_GET_RESPONSE, topics.EVENTS_DOWN, topics.BOOTSTRAP_DOWN}


class _AutoReportInfoListener(ConnectListener):
    """``auto_report_device_info`` when the first connection came from the background reconnect (``connect()``
    had already returned a failure); a ``connect()`` that succeeds sends it itself, before it returns."""

    def __init__(self, client: "DeviceClient") -> None:
        self._client = client

    def connection_lost(self, cause: str) -> None:
        pass

    def connect_complete(self, reconnect: bool, server_uri: str) -> None:
        self._client._auto_report_device_info()


#: CONNACK codes meaning "these credentials are not accepted" (bad user name or password, not authorized)
_REFUSED_CREDENTIALS = frozenset({4, 5})


class DeviceClient(RawMessageListener):
    """The documented client API. Created by :class:`AbstractDevice`; get it with ``device.get_client()``.

    Construction validates both configurations and raises ``ValueError`` naming the bad field.
    """

    def __init__(self, connect_auth_info: ConnectAuthInfo, mqtt_connect_conf: MqttConnectConf,
                 device: "AbstractDevice") -> None:
        self.check_connect_auth_info(connect_auth_info)
        self.check_mqtt_connect_conf(mqtt_connect_conf)
        self._connect_auth_info = connect_auth_info  # never mutated (bootstrap builds a new one)
        #: the ``BootstrapError`` of the last failed provisioning (its ``code`` and ``message``), else None
        self.last_bootstrap_error: Optional[Exception] = None
        self._mqtt_connect_conf = mqtt_connect_conf
        self._device = device
        network_loop = getattr(mqtt_connect_conf, "network_loop", None)
        self._dispatcher = (network_loop.new_dispatcher(f"iot-dispatch-{connect_auth_info.id}") if network_loop
                            is not None else Dispatcher(f"iot-dispatch-{connect_auth_info.id}"))
        self._connection = MqttConnection(connect_auth_info, mqtt_connect_conf, self, dispatcher=self._dispatcher)
        self._raw_device_msg_listener: Optional[RawDeviceMessageListener] = None
        self._device_msg_listener: Optional[DeviceMessageListener] = None
        self._property_listener: Optional[PropertyListener] = None
        self._command_listener: Optional[CommandListener] = None
        self._device_shadow_listener: Optional[DeviceShadowListener] = None
        self._rule_action_handler: Optional[ActionHandler] = None
        self._custom_topic_listeners: List[Tuple[str, Any]] = []
        self._uplink: Tuple[Any, str, str] = (None, "", "")  # (device id, properties/report, messages/up)
        # the automatic $sdk_info report goes once, and never after the application's own report_device_info
        # (it carries empty versions and would overwrite the application's on the platform)
        self._device_info_sent = False
        self._keeper = ProcessKeeper(f"iot-keep-process-{connect_auth_info.id}")
        self._connection.add_connect_listener(_AutoReportInfoListener(self))

    # ---- validation -------------------------------------------------------------------------------

    @staticmethod
    def check_connect_auth_info(connect_auth_info: ConnectAuthInfo) -> None:
        """Raise ``ValueError`` naming the first invalid field of ``connect_auth_info``."""
        a = connect_auth_info
        if not isinstance(a, ConnectAuthInfo):
            raise ValueError("connect_auth_info must be a ConnectAuthInfo")

        def nonempty(value: Any) -> bool:
            return isinstance(value, str) and value.strip() != ""

        device_id = a.id
        if not isinstance(device_id, str) or not nonempty(device_id) or any(c in device_id for c in "/+#"):
            raise ValueError("id: a device id is required (no '/', '+' or '#')")
        if a.protocol != ConnectAuthInfo.PROTOCOL_MQTT:
            raise ValueError(f"protocol: only {ConnectAuthInfo.PROTOCOL_MQTT!r} is supported")
        if not nonempty(a.server_uri):
            raise ValueError("server_uri: the platform host name is required")
        if isinstance(a.port, bool) or not isinstance(a.port, int) or not 1 <= a.port <= 65535:
            raise ValueError(f"port: must be an int in 1..65535, got {a.port!r}")
        if a.tls not in (None, True, False):
            raise ValueError("tls: must be None (auto), True or False")
        if a.auth_type not in (ConnectAuthInfo.SECRET_AUTH, ConnectAuthInfo.X509_AUTH):
            raise ValueError("auth_type: must be SECRET_AUTH (0) or X509_AUTH (1)")
        if a.bs_mode not in (0, 1, 2):
            raise ValueError("bs_mode: must be 0, 1 or 2")
        if a.bs_mode == ConnectAuthInfo.BS_MODE_BOOTSTRAP_WITH_SCOPEID and not nonempty(a.scope_id):
            raise ValueError("scope_id: required for bs_mode 2 (bootstrap with scope id)")
        if a.auth_type == ConnectAuthInfo.SECRET_AUTH:
            if not (nonempty(a.secret) or isinstance(a.secret, (bytes, bytearray)) and a.secret):
                raise ValueError("secret: required for secret authentication")
        else:
            if not nonempty(a.cert_path):
                raise ValueError("cert_path: required for X.509 authentication")
            if not nonempty(a.key_path):
                raise ValueError("key_path: required for X.509 authentication")
            if not a.use_tls():
                raise ValueError("tls: X.509 authentication needs TLS")
        if a.key_password is not None and not isinstance(a.key_password, (str, bytes)):
            raise ValueError("key_password: must be a str or bytes")
        if str(a.check_timestamp) not in ("0", "1"):
            raise ValueError('check_timestamp: must be "0" or "1"')
        for name in ("min_backoff", "max_backoff"):
            v = getattr(a, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                raise ValueError(f"{name}: must be a positive number of milliseconds")
        if a.min_backoff > a.max_backoff:
            raise ValueError("min_backoff: must not exceed max_backoff")
        if isinstance(a.max_buffer_message, bool) or not isinstance(a.max_buffer_message, int) \
                or a.max_buffer_message < 0:
            raise ValueError("max_buffer_message: must be an int >= 0")
        if isinstance(a.inflight_messages, bool) or not isinstance(a.inflight_messages, int) \
                or a.inflight_messages < 0:
            raise ValueError("inflight_messages: must be an int >= 0")
        _network.check(a)  # transport, ws_path, ws_headers, proxy_*

    @staticmethod
    def check_mqtt_connect_conf(mqtt_connect_conf: MqttConnectConf) -> None:
        """Raise ``ValueError`` naming the first invalid field of ``mqtt_connect_conf``."""
        c = mqtt_connect_conf
        if not isinstance(c, MqttConnectConf):
            raise ValueError("mqtt_connect_conf must be a MqttConnectConf")
        if isinstance(c.keep_alive_time, bool) or not isinstance(c.keep_alive_time, int) \
                or not 30 <= c.keep_alive_time <= 1200:
            raise ValueError("keep_alive_time: must be an int in 30..1200 seconds")
        if c.qos not in (0, 1) or isinstance(c.qos, bool):
            raise ValueError("qos: must be 0 or 1")
        if isinstance(c.timeout, bool) or not isinstance(c.timeout, (int, float)) or c.timeout <= 0:
            raise ValueError("timeout: must be a positive number of seconds")
        if c.protocol_version not in (MqttConnectConf.MQTT_V311, MqttConnectConf.MQTT_V5) \
                or isinstance(c.protocol_version, bool):
            raise ValueError("protocol_version: must be MqttConnectConf.MQTT_V311 (4) or MQTT_V5 (5)")
        alias_max = c.topic_alias_maximum
        if isinstance(alias_max, bool) or not isinstance(alias_max, int) or not 0 <= alias_max <= 65535:
            raise ValueError("topic_alias_maximum: must be an int in 0..65535")

    # ---- connection -------------------------------------------------------------------------------

    def connect(self, raise_on_failure: bool = False) -> int:
        """Connect (bootstrapping first when ``bs_mode`` is 1 or 2). Returns 0 or an error code
        (see :class:`MqttConnection`).

        ``raise_on_failure=True`` (beyond upstream, opt-in) raises instead of returning a non-zero code: the
        :class:`~iot_device_sdk_python.bootstrap.bootstrap_client.BootstrapError` when provisioning failed,
        else a :class:`~iot_device_sdk_python.errors.ConnectError` whose ``code`` is the int that would have
        been returned (:class:`~iot_device_sdk_python.errors.ConnectRefusedError` for a CONNACK refusal,
        :class:`~iot_device_sdk_python.errors.ConnectTimeoutError` when no CONNACK came in time). A
        retryable failure still starts background reconnection when ``reconnect_on_failure`` is on.

        Bootstrap re-uses the cached IoTDA address and secret. When IoTDA refuses those cached credentials
        (CONNACK 4 bad user name or password, or 5 not authorized: secret re-issued, device moved), the cache
        is dropped, the device is provisioned again once (not from the cache) and connects once more; that
        result is returned. Credentials from a fresh provisioning that IoTDA refuses are returned as is (no
        second provisioning). A failed provisioning returns -1 (-2 for a local configuration error) and sets
        ``last_bootstrap_error``; ``bs_force`` still forces provisioning on every connect."""
        rc = self._connect()
        if rc == 0:
            # before connect() returns (as upstream): queued ahead of anything the application reports next
            self._auto_report_device_info()
        retrying = self._connection._reconnect_thread is not None  # connects later in the background
        if (rc == 0 or retrying) and self._connect_auth_info.keep_process_alive is not False:
            self._keeper.hold()  # until close()/destroy(), as upstream's non-daemon network thread did
        if rc != 0 and raise_on_failure:
            if isinstance(self.last_bootstrap_error, errors.IotDeviceError):
                raise self.last_bootstrap_error
            cause = self.last_bootstrap_error or self._connection.last_error
            raise errors.connect_error(rc, cause) from cause
        return rc

    def _auto_report_device_info(self) -> None:
        """Send ``$sdk_info`` with empty versions once, when ``auto_report_device_info`` is on and the
        application has not reported its own device info yet."""
        if not self._connect_auth_info.auto_report_device_info or self._device_info_sent:
            return
        self._device_info_sent = True
        self._report_device_info(DeviceBaseInfo(), None)

    def _connect(self) -> int:
        auth = self._connect_auth_info
        if auth.bs_mode not in (ConnectAuthInfo.BS_MODE_STANDARD_BOOTSTRAP,
                                ConnectAuthInfo.BS_MODE_BOOTSTRAP_WITH_SCOPEID):
            return self._connection.connect()
        try:
            from iot_device_sdk_python.bootstrap import bootstrap_client
        except ImportError as exc:
            _logger.error("bootstrap is not available: %s", exc)
            return MqttConnection.CONNECT_ERR_CONFIG
        result = self._provision(bootstrap_client, auth)
        if isinstance(result, int):
            return result
        rc = self._connection.connect()
        if rc not in _REFUSED_CREDENTIALS or not result.from_cache:
            return rc
        # the platform no longer accepts what the cache holds: provision again, once
        _logger.warning("device %s: IoTDA refused the cached bootstrap credentials (CONNACK %s); dropping the "
                        "cache and provisioning again", auth.id, rc)
        try:
            bootstrap_client.clear_bootstrap_cache(auth)
        except OSError as exc:  # the forced provisioning below overwrites it anyway
            _logger.warning("device %s: bootstrap cache not removed: %s", auth.id, type(exc).__name__)
        forced = auth.copy()  # never mutate the caller's object
        forced.bs_force = True
        result = self._provision(bootstrap_client, forced)
        if isinstance(result, int):
            return result
        return self._connection.connect()

    def _provision(self, bootstrap_client: Any, auth: ConnectAuthInfo) -> "Union[BootstrapResult, int]":
        """Bootstrap ``auth`` and switch the connection to the answer: the ``BootstrapResult``, or the
        ``connect()`` error code when provisioning failed (``last_bootstrap_error`` says why)."""
        try:
            result: BootstrapResult = bootstrap_client.bootstrap_with_result(auth, self._mqtt_connect_conf)
        except Exception as exc:  # BootstrapError(code, message) or anything unexpected
            self.last_bootstrap_error = exc
            _logger.error("device %s: bootstrap failed: %s", auth.id, exc)
            # a local configuration problem is not worth retrying; everything else is a network-side failure
            if getattr(exc, "code", None) == bootstrap_client.ERR_CONFIG:
                return MqttConnection.CONNECT_ERR_CONFIG
            return MqttConnection.CONNECT_ERR_NETWORK
        self.last_bootstrap_error = None
        self._connection._set_connect_auth_info(result.connect_auth_info)
        return result

    def close(self) -> None:
        """Close the connection (no reconnect); the process is no longer kept alive for this device."""
        self._connection.close()
        self._keeper.release()

    def _shutdown(self) -> None:
        """SDK use (``destroy``): let queued callbacks finish (bounded), close, stop the dispatcher."""
        self._dispatcher.wait_idle(2.0)
        self._connection.close()
        self._dispatcher.stop()
        self._keeper.release()

    def _get_connection(self) -> MqttConnection:
        """The underlying :class:`MqttConnection` (tests and diagnostics)."""
        return self._connection

    def get_buffer_metrics(self) -> BufferMetrics:
        """Offline-buffer counters (``transport.offline_queue.BufferMetrics``: queued, sent, dropped,
        restored, size, durable)."""
        return self._connection.get_buffer_metrics()

    def get_dispatcher(self) -> Dispatcher:
        """The device's dispatcher (runs every listener and service callback)."""
        return self._dispatcher

    def get_device_id(self) -> str:
        return cast(str, self._connect_auth_info.id)  # a non-empty str: checked by __init__

    def is_connected(self) -> bool:
        return self._connection.is_connected()

    def add_connect_listener(self, connect_listener: ConnectListener) -> None:
        """Add a ConnectListener (called on every connect/reconnect and on every loss)."""
        self._connection.add_connect_listener(connect_listener)

    def set_connect_action_listener(self, connect_action_listener: ConnectActionListener) -> None:
        """Set the ConnectActionListener told about every connection attempt."""
        self._connection.set_connect_action_listener(connect_action_listener)

    def enable_rule_manage(self) -> bool:
        """Whether the device-side rule engine is enabled (``ConnectAuthInfo.enable_rule_manage``)."""
        return bool(self._connect_auth_info.enable_rule_manage)

    # ---- listeners ------------------------------------------------------------------------------------

    def _set_listener(self, attr: str, listener: object, cls: type) -> None:
        if listener is not None and not isinstance(listener, cls):
            _logger.error("%s must be a %s; ignored", attr.lstrip("_"), cls.__name__)
            return
        setattr(self, attr, listener)

    def set_raw_device_msg_listener(self, raw_device_msg_listener: Optional[RawDeviceMessageListener]) -> None:
        self._set_listener("_raw_device_msg_listener", raw_device_msg_listener, RawDeviceMessageListener)

    def set_device_msg_listener(self, device_msg_listener: DeviceMessageListener) -> None:
        self._set_listener("_device_msg_listener", device_msg_listener, DeviceMessageListener)

    def set_properties_listener(self, property_listener: Optional[PropertyListener]) -> None:
        self._set_listener("_property_listener", property_listener, PropertyListener)

    def set_command_listener(self, command_listener: Optional[CommandListener]) -> None:
        self._set_listener("_command_listener", command_listener, CommandListener)

    def set_device_shadow_listener(self, device_shadow_listener: DeviceShadowListener) -> None:
        self._set_listener("_device_shadow_listener", device_shadow_listener, DeviceShadowListener)

    def set_rule_action_handler(self, rule_action_handler: Optional[ActionHandler]) -> None:
        """Set an ``ActionHandler`` (``rule.model.action_handler``) that gets fired rule actions."""
        if rule_action_handler is not None and not callable(getattr(rule_action_handler, "handle_rule_action", None)):
            _logger.error("rule_action_handler must implement handle_rule_action(); ignored")
            return
        self._rule_action_handler = rule_action_handler

    def subscribe_topic(self, topic: str, qos: int, message_listener: Optional[RawMessageListener]) -> bool:
        """Subscribe to a custom topic (``$oc/devices/{id}/user/...`` or a policy topic; wildcards allowed)
        and route matching messages to ``message_listener.on_message_received(RawMessage)``.

        Works before ``connect()``; the subscription is restored after every reconnect.
        """
        if message_listener is not None and not callable(getattr(message_listener, "on_message_received", None)):
            raise ValueError("message_listener must have on_message_received(message)")
        self._custom_topic_listeners = [(f, lsn) for f, lsn in self._custom_topic_listeners if f != topic]
        if message_listener is not None:
            self._custom_topic_listeners.append((topic, message_listener))
        return self._connection.subscribe_topic(topic, qos)

    def subscribe_broadcast(self, topic: str, listener: BroadcastListener, qos: int = 1) -> bool:
        """Subscribe to a broadcast topic and give its messages to ``listener.on_broadcast_message(topic, payload)``.

        ``topic`` is a full ``$oc/broadcast/...`` topic or filter (wildcards allowed), or the part after
        ``$oc/broadcast/``. The platform sends broadcasts only to subscribed, online devices
        (doc/protocol.md §4.3). Works before ``connect()``; restored after every reconnect. Returns False
        when the SUBSCRIBE could not be sent now (it is retried after the next reconnect).
        """
        if not isinstance(topic, str) or not topic.strip("/"):
            raise ValueError("topic: a broadcast topic or name is required")
        full = topic if topic.startswith(topics.BROADCAST_PREFIX) else topics.BROADCAST_PREFIX + topic.lstrip("/")
        if not callable(getattr(listener, "on_broadcast_message", None)):
            raise ValueError("listener must have on_broadcast_message(topic, payload)")
        return self.subscribe_topic(full, qos, _BroadcastAdapter(listener))

    def unsubscribe_broadcast(self, topic: str) -> None:
        """Stop receiving a broadcast topic given to :meth:`subscribe_broadcast`."""
        full = topic if topic.startswith(topics.BROADCAST_PREFIX) else topics.BROADCAST_PREFIX + topic.lstrip("/")
        self._custom_topic_listeners = [(f, lsn) for f, lsn in self._custom_topic_listeners if f != full]
        self._connection.unsubscribe_topic(full)

    # ---- uplink -------------------------------------------------------------------------------------

    @property
    def _qos(self) -> int:
        qos: int = self._mqtt_connect_conf.qos
        return qos

    def _uplink_topics(self) -> Tuple[Any, str, str]:
        """(device id, properties/report topic, messages/up topic), built once per device id."""
        cached = self._uplink
        device_id = self._connect_auth_info.id
        if cached[0] is not device_id:
            did = cast(str, device_id)  # checked by __init__
            cached = self._uplink = (device_id, topics.properties_report(did), topics.messages_up(did))
        return cached

    def _publish(self, topic: str, payload: Any, listener: Optional[ActionListener], qos: Optional[int] = None) -> PublishHandle:
        # the JSON is encoded exactly once, compact, by the codec; the connection takes topic/payload/qos
        # as they are (no RawMessage in between)
        data: Union[bytes, str]
        if payload.__class__ is dict:
            try:
                data = _dumps_bytes(payload)
            except (TypeError, ValueError) as exc:  # name the problem at the call
                raise TypeError(f"payload: cannot be sent as JSON ({exc})") from None
        elif isinstance(payload, (bytes, str)):
            data = payload
        else:
            try:
                data = _dumps_bytes(payload)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"payload: cannot be sent as JSON ({exc})") from None
        return self._connection._publish_fast(topic, data, self._mqtt_connect_conf.qos if qos is None else qos,
                                              listener)

    def _publish_gzip(self, topic: str, data: bytes, listener: Optional[ActionListener],
                      v5_data: Optional[MqttV5Data] = None) -> PublishHandle:
        # mtime=0: the same report gives the same bytes (no clock in the header)
        return self._connection._publish_fast(topics.gzip_topic(topic), gzip.compress(data, 6, mtime=0),
                                              self._mqtt_connect_conf.qos, listener, v5_data)

    def report_device_message(self, device_message: DeviceMessage, listener: Optional[ActionListener] = None,
                              compress: Optional[bool] = None,
                              v5_data: Optional[MqttV5Data] = None) -> PublishHandle:
        """Publish a message on ``messages/up`` (empty id/name/object_device_id are left out).

        ``compress=True`` gzips the payload and publishes on ``messages/up?encoding=gzip`` (None: as
        ``MqttConnectConf.compress_reports`` says; doc/protocol.md §2.11). ``v5_data``: MQTT 5 properties
        (user properties, content type, ...) sent with it; needs ``MqttConnectConf.protocol_version`` 5."""
        if device_message.__class__ is not DeviceMessage:
            _chk.check_instance(device_message, DeviceMessage, 'device_message')
        if listener is not None:
            _chk.check_listener(listener)
        if device_message.__class__ is DeviceMessage:  # the same dict as below, without the to_dict() detour
            m = device_message
            payload = {}
            if m._device_id not in ("", None):
                payload["object_device_id"] = m._device_id
            if m._id not in ("", None):
                payload["id"] = m._id
            if m._name not in ("", None):
                payload["name"] = m._name
            payload["content"] = m._content
        else:
            body = device_message.to_dict()
            payload = {k: v for k, v in body.items() if k == "content" or v not in ("", None)}
        # what self._publish(self._uplink_topics()[2], payload, listener) does, inlined (hot path: every
        # Python call level costs; doc/performance.md)
        try:
            data = _dumps_bytes(payload)
        except (TypeError, ValueError) as exc:  # name the problem at the call
            raise TypeError(f"payload: cannot be sent as JSON ({exc})") from None
        cached = self._uplink
        if cached[0] is not self._connect_auth_info.id:
            cached = self._uplink_topics()
        if compress or (compress is None and self._mqtt_connect_conf.compress_reports):
            return self._publish_gzip(cached[2], data, listener, v5_data)
        if v5_data is not None:
            return self._connection._publish_fast(cached[2], data, self._mqtt_connect_conf.qos, listener, v5_data)
        return self._connection._publish_fast(cached[2], data, self._mqtt_connect_conf.qos, listener)

    def report_properties(self, services: List[ServiceProperty], listener: Optional[ActionListener] = None,
                          compress: Optional[bool] = None,
                          v5_data: Optional[MqttV5Data] = None) -> PublishHandle:
        """Report properties (``properties/report``); also evaluates device rules when enabled.

        ``compress=True`` gzips the payload and publishes on ``properties/report?encoding=gzip`` (None: as
        ``MqttConnectConf.compress_reports`` says; doc/protocol.md §2.11). ``v5_data``: MQTT 5 properties
        sent with the report; needs ``MqttConnectConf.protocol_version`` 5."""
        # the usual call, a plain list of plain valid ServiceProperty objects: checked and turned into the
        # payload entries in one pass (what check_service_properties + _service_property_dict do, hot path)
        entries: Optional[List[Dict[str, Any]]] = None
        if services.__class__ is list and services:
            entries = []
            for sp in services:
                if sp.__class__ is not ServiceProperty:
                    entries = None  # anything else: the full check below (same errors as before)
                    break
                sid, props = sp._service_id, sp._properties
                if sid.__class__ is not str or not sid or props.__class__ is not dict:
                    entries = None
                    break
                event_time = sp._event_time
                if event_time is None or event_time == "":
                    entries.append({"service_id": sid, "properties": props})
                else:
                    entries.append({"service_id": sid, "properties": props, "event_time": event_time})
        if entries is None:
            _chk.check_service_properties(services)
            entries = [_service_property_dict(s) for s in services]
        if listener is not None:
            _chk.check_listener(listener)
        payload = {"services": entries}
        # self._publish(self._uplink_topics()[1], payload, listener), inlined (hot path)
        try:
            data = _dumps_bytes(payload)
        except (TypeError, ValueError) as exc:  # name the problem at the call
            raise TypeError(f"payload: cannot be sent as JSON ({exc})") from None
        cached = self._uplink
        if cached[0] is not self._connect_auth_info.id:
            cached = self._uplink_topics()
        if compress or (compress is None and self._mqtt_connect_conf.compress_reports):
            handle = self._publish_gzip(cached[1], data, listener, v5_data)
        elif v5_data is not None:
            handle = self._connection._publish_fast(cached[1], data, self._mqtt_connect_conf.qos, listener, v5_data)
        else:
            handle = self._connection._publish_fast(cached[1], data, self._mqtt_connect_conf.qos, listener)
        if self._connect_auth_info.enable_rule_manage:  # self.enable_rule_manage(), inlined
            self._dispatcher.submit(self._evaluate_rules, list(services))
        return handle

    def _evaluate_rules(self, services: List[ServiceProperty]) -> None:
        getter = getattr(self._device, "get_rule_manage_service", None)
        rule_service = getter() if getter else None
        handle_rule = getattr(rule_service, "handle_rule", None)
        if handle_rule is not None:
            handle_rule(services)

    def get_device_shadow(self, request_id: str, service_id: Optional[str] = None, object_device_id: Optional[str] = None,
                          listener: Optional[ActionListener] = None) -> PublishHandle:
        """Ask for the shadow (answer goes to the DeviceShadowListener). The topic carries the own id;
        ``object_device_id`` (a gateway child) travels in the payload, as the protocol says."""
        _chk.check_request_id(request_id)
        _chk.check_listener(listener)
        payload = {}
        if object_device_id:
            payload["object_device_id"] = object_device_id
        if service_id:
            payload["service_id"] = service_id
        return self._publish(topics.shadow_get(self.get_device_id(), request_id), payload, listener)

    def report_event(self, device_event: DeviceEvent, listener: Optional[ActionListener] = None) -> PublishHandle:
        """Publish one event of this device on ``events/up`` (event_time filled in UTC when empty)."""
        _chk.check_instance(device_event, DeviceEvent, 'device_event')
        _chk.check_listener(listener)
        return self._report_event_for(self.get_device_id(), device_event, listener)

    def report_sub_event(self, sub_device_id: str, device_event: DeviceEvent, listener: Optional[ActionListener] = None) -> PublishHandle:
        """Publish one event about a gateway child (``object_device_id`` = ``sub_device_id``)."""
        _chk.check_str(sub_device_id, 'sub_device_id')
        _chk.check_instance(device_event, DeviceEvent, 'device_event')
        _chk.check_listener(listener)
        return self._report_event_for(sub_device_id, device_event, listener)

    def _report_event_for(self, object_device_id: str, device_event: DeviceEvent,
                          listener: Optional[ActionListener]) -> PublishHandle:
        event = device_event.to_dict()
        if not event.get("event_time"):
            event["event_time"] = codec.event_time()
        if not event.get("event_id"):
            event.pop("event_id", None)
        payload = {"object_device_id": object_device_id, "services": [event]}
        return self._publish(topics.events_up(self.get_device_id()), payload, listener)

    def respond_command(self, request_id: str, command_response: CommandRsp, listener: Optional[ActionListener] = None) -> PublishHandle:
        """Answer command ``request_id``."""
        _chk.check_request_id(request_id)
        _chk.check_instance(command_response, CommandRsp, 'command_response')
        _chk.check_listener(listener)
        return self._publish(topics.command_response(self.get_device_id(), request_id), command_response.to_dict(), listener)

    def respond_properties_get(self, request_id: str, services: List[ServiceProperty], listener: Optional[ActionListener] = None) -> PublishHandle:
        """Answer property query ``request_id``."""
        _chk.check_request_id(request_id)
        _chk.check_service_properties(services)
        _chk.check_listener(listener)
        payload = {"services": [_service_property_dict(s) for s in services]}
        return self._publish(topics.properties_get_response(self.get_device_id(), request_id), payload, listener)

    def respond_properties_set(self, request_id: str, iot_result: IotResult, listener: Optional[ActionListener] = None) -> PublishHandle:
        """Answer property write ``request_id``."""
        _chk.check_request_id(request_id)
        _chk.check_instance(iot_result, IotResult, 'iot_result')
        _chk.check_listener(listener)
        return self._publish(topics.properties_set_response(self.get_device_id(), request_id), iot_result.to_dict(), listener)

    def publish_raw_message(self, raw_message: RawMessage, listener: Optional[ActionListener] = None) -> PublishHandle:
        """Publish any message as is (custom topics, binary payloads)."""
        _chk.check_instance(raw_message, RawMessage, 'raw_message')
        _chk.check_listener(listener)
        return self._connection.publish_message(raw_message, listener)

    def report_device_info(self, device_info: DeviceBaseInfo, listener: Optional[ActionListener] = None) -> PublishHandle:
        """Publish the ``$sdk_info``/``sdk_info_report`` event with this SDK's version and the device's.

        After this call the automatic report (``auto_report_device_info``) is no longer sent."""
        self._device_info_sent = True
        return self._report_device_info(device_info, listener)

    def _report_device_info(self, device_info: DeviceBaseInfo, listener: Optional[ActionListener]) -> PublishHandle:
        event = DeviceEvent()
        event.service_id = "$sdk_info"
        event.event_type = "sdk_info_report"
        event.paras = {"device_sdk_version": SDK_VERSION, "sw_version": device_info.sw_version or "",
                       "fw_version": device_info.fw_version or ""}
        return self.report_event(event, listener)

    # ---- inbound routing (dispatcher thread) -----------------------------------------------------------

    def on_message_received(self, message: RawMessage) -> None:
        """Route one inbound message: custom-topic listeners, then the system handlers by topic kind."""
        topic = message.topic
        info = topics.classify(topic)
        if info.kind == topics.OTHER and _is_malformed_system_topic(topic, info):
            # not a topic IoTDA sends (bad device id, bad request id, unknown query): nobody may act on it
            _logger.warning("malformed system topic %.200r; message ignored", topic)
            return
        exact = [lsn for f, lsn in self._custom_topic_listeners if f == topic]
        matched = exact or ([] if info.kind in _SYSTEM_DOWN_KINDS else
                            [lsn for f, lsn in self._custom_topic_listeners if topics.topic_matches(f, topic)])
        if matched:
            for listener in matched:
                self._safe(listener.on_message_received, message)
            return
        handler = {
            topics.MESSAGES_DOWN: self.on_device_msg,
            topics.COMMAND: self.on_command,
            topics.PROPERTIES_SET: self.on_properties_set,
            topics.PROPERTIES_GET: self.on_properties_get,
            topics.SHADOW_GET_RESPONSE: self.on_device_shadow,
            topics.EVENTS_DOWN: self.on_event,
            topics.BOOTSTRAP_DOWN: self.on_bootstrap,
        }.get(info.kind)
        if handler is None:
            _logger.warning("no listener for inbound topic %s; message ignored", topic)
            return
        try:
            handler(message)
        except Exception as exc:  # decoding or routing failed past the parser: still answer the request
            _logger.warning("downlink on %s could not be handled (%s); answering with an error",
                            topic, type(exc).__name__)
            self._answer_error(info.kind, topics.request_id_of(topic), "downlink could not be decoded")

    def _answer_error(self, kind: str, request_id: Optional[str], text: str) -> None:
        """The error response of a request kind (commands, property set/get); nothing for the others."""
        if not request_id:
            return
        try:
            if kind == topics.COMMAND:
                self.respond_command(request_id, _error_rsp(text))
            elif kind == topics.PROPERTIES_SET:
                self.respond_properties_set(request_id, IotResult(1, text))
            elif kind == topics.PROPERTIES_GET:
                self.respond_properties_get(request_id, [])
        except Exception:
            _logger.debug("error response for %s not sent", request_id, exc_info=True)

    @staticmethod
    def _safe(fn: Callable[..., object], *args: Any) -> bool:
        try:
            fn(*args)
            return True
        except Exception:
            _logger.exception("callback %s raised", getattr(fn, "__qualname__", fn))
            return False

    def _parse(self, message: RawMessage, what: str) -> Optional[Dict[str, Any]]:
        """The payload as a JSON object, or None after one log line (whatever the parser raised: the
        caller then answers with an error response when the request has an id)."""
        try:
            return codec.loads_object(message.payload)
        except ValueError as exc:
            _logger.warning("malformed %s on %s: %s", what, message.topic, exc)
        except Exception as exc:  # untrusted input must never leave a request unanswered
            _logger.warning("undecodable %s on %s: %s", what, message.topic, type(exc).__name__)
        return None

    def _is_own(self, device_id: Optional[str]) -> bool:
        return not device_id or device_id == self.get_device_id()

    def on_device_msg(self, message: RawMessage) -> None:
        """``messages/down``: the raw listener sees every payload; system-format ones go on to the
        DeviceMessageListener (own messages) or ``device.on_device_message`` (others, or no listener)."""
        raw = RawDeviceMessage(message.payload if message.payload is not None else b"")
        if self._raw_device_msg_listener is not None:
            self._safe(self._raw_device_msg_listener.on_raw_device_message, raw)
        device_message = raw.to_device_message()
        if device_message is None:
            if self._raw_device_msg_listener is None:
                _logger.info("message on %s is not in the system format and no raw listener is set", message.topic)
            return
        if self._device_msg_listener is not None and self._is_own(device_message.device_id):
            self._safe(self._device_msg_listener.on_device_message, device_message)
        else:
            self._safe(self._device.on_device_message, device_message)

    def on_command(self, message: RawMessage) -> None:
        """``commands/request_id=``: CommandListener for own commands, else the device's services.
        A malformed command or a failing handler is answered with an error response."""
        request_id = topics.request_id_of(message.topic)
        if not request_id:
            _logger.warning("command without request_id on %s; ignored", message.topic)
            return
        obj = self._parse(message, "command")
        if obj is None:
            self.respond_command(request_id, _error_rsp("invalid command payload"))
            return
        command = Command()
        command.convert_from_dict(obj)
        if self._command_listener is not None and self._is_own(command.device_id):
            if not self._safe(self._command_listener.on_command, request_id, command.service_id,
                              command.command_name, command.paras):
                self.respond_command(request_id, _error_rsp("command listener failed"))
            return
        if not self._safe(self._device.on_command, request_id, command):
            self.respond_command(request_id, _error_rsp("command handling failed"))

    def on_rule_command(self, request_id: str, command: Command) -> None:
        """A command fired by a local rule: CommandListener if set, else the device's service (no response)."""
        if self._command_listener is not None:
            self._safe(self._command_listener.on_command, request_id, command.service_id, command.command_name,
                       command.paras)
            return
        service = self._device.get_service(command.service_id) if command.service_id else None
        if service is None:
            _logger.warning("rule command for unknown service %r ignored", command.service_id)
            return
        self._safe(service.on_command, command)

    def on_device_shadow(self, message: RawMessage) -> None:
        """``shadow/get/response``: parsed into ShadowData and given to the DeviceShadowListener."""
        request_id = topics.request_id_of(message.topic) or ""
        obj = self._parse(message, "shadow response")
        if obj is None:
            return
        shadow = []
        for item in obj.get("shadow") or []:
            if isinstance(item, dict):
                sd = ShadowData()
                sd.convert_from_dict(item)
                shadow.append(sd)
        object_device_id = obj.get("object_device_id") if isinstance(obj.get("object_device_id"), str) else ""
        if self._device_shadow_listener is None:
            _logger.info("shadow response %s received but no DeviceShadowListener is set", request_id)
            return
        self._safe(self._device_shadow_listener.on_shadow_get, request_id, object_device_id, shadow)

    def on_properties_set(self, message: RawMessage) -> None:
        """``properties/set``: PropertyListener for own writes, else ``device.on_properties_set``.
        ``PropSet.device_id`` carries ``object_device_id`` (gateway children)."""
        request_id = topics.request_id_of(message.topic)
        if not request_id:
            _logger.warning("property set without request_id on %s; ignored", message.topic)
            return
        obj = self._parse(message, "property set")
        services_json = obj.get("services") if obj is not None else None
        if obj is None or not isinstance(services_json, list) or not all(isinstance(s, dict) for s in services_json):
            if obj is not None:  # an undecodable payload was logged by _parse already: one line per downlink
                _logger.warning("property set %s without a valid 'services' list", request_id)
            self.respond_properties_set(request_id, IotResult(1, "invalid property set payload"))
            return
        services = []
        for item in services_json:
            sp = ServiceProperty()
            sp.convert_from_dict(item)
            services.append(sp)
        prop_set = PropSet()
        target = obj.get("object_device_id")
        prop_set.device_id = target if isinstance(target, str) else ""
        prop_set.services = services
        if self._property_listener is not None and self._is_own(prop_set.device_id):
            # System services ($device_rule, ...) belong to the SDK, whatever listener the application set:
            # the application's listener sees only its own services (upstream gave it everything).
            system = [sp for sp in services if codec.is_system_service(sp.service_id)]
            if len(system) < len(services):
                if system:
                    written = self._device.write_services(system)
                    if written.result_code != 0:
                        self.respond_properties_set(request_id, written)
                        return
                    services = [sp for sp in services if not codec.is_system_service(sp.service_id)]
                if not self._safe(self._property_listener.on_property_set, request_id, services):
                    self.respond_properties_set(request_id, IotResult(1, "property listener failed"))
                return
        if not self._safe(self._device.on_properties_set, request_id, prop_set):
            self.respond_properties_set(request_id, IotResult(1, "property set handling failed"))

    def on_properties_get(self, message: RawMessage) -> None:
        """``properties/get``: PropertyListener for own reads, else ``device.on_properties_get``."""
        request_id = topics.request_id_of(message.topic)
        if not request_id:
            _logger.warning("property get without request_id on %s; ignored", message.topic)
            return
        obj = self._parse(message, "property get")
        if obj is None:
            self.respond_properties_get(request_id, [])
            return
        props_get = PropsGet()
        props_get.convert_from_dict(obj)
        if (self._property_listener is not None and self._is_own(props_get.device_id)
                and not codec.is_system_service(props_get.service_id)):
            if not self._safe(self._property_listener.on_property_get, request_id, props_get.service_id):
                self.respond_properties_get(request_id, [])
            return
        if not self._safe(self._device.on_properties_get, request_id, props_get):
            self.respond_properties_get(request_id, [])

    def on_event(self, message: RawMessage) -> None:
        """``events/down``: parsed into DeviceEvents and given to ``device.on_event``."""
        obj = self._parse(message, "event")
        if obj is None:
            return
        if not isinstance(obj.get("services"), list):
            _logger.warning("event on %s without a 'services' list; ignored", message.topic)
            return
        device_events = DeviceEvents()
        device_events.convert_from_dict(obj)
        self._safe(self._device.on_event, device_events)

    def on_rule_action_handler(self, action: List["Action"]) -> None:
        """Fired rule actions: the user's ActionHandler if set, else ``device.on_rule_action_handler``.
        Always runs on the dispatcher thread."""
        if not self._dispatcher.in_dispatcher_thread():
            self._dispatcher.submit(self.on_rule_action_handler, action)
            return
        if self._rule_action_handler is not None:
            self._safe(self._rule_action_handler.handle_rule_action, action)
        else:
            self._safe(self._device.on_rule_action_handler, action)

    def on_bootstrap(self, message: RawMessage) -> None:
        """``bootstrap/down`` on the platform connection: not expected (the bootstrap client has its own)."""
        _logger.info("unexpected bootstrap response on the platform connection; ignored")


def _service_property_dict(sp: ServiceProperty) -> Dict[str, Any]:
    if sp.__class__ is ServiceProperty:  # what to_dict() gives, built directly (hot path)
        event_time = sp._event_time
        if event_time is None or event_time == "":
            return {"service_id": sp._service_id, "properties": sp._properties}
        return {"service_id": sp._service_id, "properties": sp._properties, "event_time": event_time}
    d = sp.to_dict()
    if d.get("event_time") in (None, ""):
        d.pop("event_time", None)
    return d


class _BroadcastAdapter(RawMessageListener):
    """Turns a broadcast topic's RawMessage into ``BroadcastListener.on_broadcast_message(topic, payload)``."""

    def __init__(self, listener: BroadcastListener) -> None:
        self._listener = listener

    def on_message_received(self, message: RawMessage) -> None:
        payload = message.payload
        data = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload or b"")
        self._listener.on_broadcast_message(message.topic, data)


def _is_malformed_system_topic(topic: str, info: topics.TopicInfo) -> bool:
    """True for an ``OTHER`` topic under ``$oc/devices/`` that has an invalid device id or a ``sys/`` path
    that is not exactly one of doc/protocol.md §2.1."""
    if not isinstance(topic, str) or not topic.startswith(topics.PREFIX):
        return False
    return info.device_id is None or topic.startswith(topics.device_root(info.device_id) + "sys/")


def _error_rsp(text: str) -> CommandRsp:
    return CommandRsp(CommandRsp.fail_code(), "", {"error": text})


def new_request_id() -> str:
    """A fresh request id (for ``get_device_shadow``)."""
    return uuid.uuid4().hex
