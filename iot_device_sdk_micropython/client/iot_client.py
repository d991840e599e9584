"""``IotClient``: one IoTDA device over MQTT, for MicroPython.

Two ways to run it:

* single thread (best on small boards): call :meth:`IotClient.loop` from your main loop; it waits up to
  ``timeout_ms`` for traffic, runs the callbacks, keeps the link alive and reconnects after a loss;
* a background thread (upstream's style, needs ``_thread``): :meth:`IotClient.start`, then publish from
  the main thread.

Callbacks always run outside the client's lock, so they may answer (``respond_*``) right away.
"""
try:
    import json
except ImportError:   # old firmware
    import ujson as json

try:
    import _thread
except ImportError:
    _thread = None

try:
    import select
except ImportError:
    select = None

from ..utils.iot_util import get_client_id, get_password, get_timestamp, sleep_ms, ticks_add, ticks_diff, ticks_ms
from .request import Command, DeviceMessage, ServicesProperties

ENOTCONN = 107
ETIMEDOUT = 110


class _NoLock:
    """Stands in for a ``_thread`` lock on boards without threads."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _LegacyTls:
    """``ssl.wrap_socket`` of firmware without ``SSLContext``: encrypts but does NOT verify the server."""

    def __init__(self, ssl_module) -> None:
        self._ssl = ssl_module

    def wrap_socket(self, sock, server_hostname=None):
        return self._ssl.wrap_socket(sock, server_hostname=server_hostname)


def _ca_ders(cfg) -> list:
    """The configured CA certificate(s) as DER blobs (MicroPython's mbedTLS takes DER, not PEM)."""
    data = cfg.ca_data
    if data is None and cfg.ca_file is not None:
        with open(cfg.ca_file, "rb") as f:
            data = f.read()
    if data is None:
        return []
    if isinstance(data, str):
        data = data.encode()
    if b"-----BEGIN" not in data:
        return [data]
    import binascii
    out = []
    for block in data.split(b"-----BEGIN CERTIFICATE-----")[1:]:
        end = block.find(b"-----END CERTIFICATE-----")
        if end < 0:
            raise ValueError("CA PEM: a certificate has no END line")
        out.append(binascii.a2b_base64(block[:end].replace(b"\r", b"").replace(b"\n", b"")))
    if not out:
        raise ValueError("CA PEM holds no certificate")
    return out


def _tls_context(cfg):
    """An SSL context that verifies the server with the configured CA, or ValueError/OSError saying why not."""
    try:
        import ssl
    except ImportError:
        try:
            import ussl as ssl
        except ImportError:
            raise OSError("this firmware has no ssl module: use port 1883 or a build with TLS")
    if not hasattr(ssl, "SSLContext"):
        if not cfg.allow_unverified_tls:
            raise ValueError("this firmware's ssl cannot verify servers; set allow_unverified_tls=True "
                             "to accept that, or update the firmware")
        return _LegacyTls(ssl)
    ders = _ca_ders(cfg)
    if not ders:
        raise ValueError("TLS needs the server's CA: set IotClientConfig.ca_file or ca_data")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED
    for der in ders:
        ctx.load_verify_locations(cadata=der)
    return ctx


def _mqtt_classes(cfg, tls_ctx):
    """(MQTTClient, MQTTException) of ``umqtt.simple`` when usable here, else of the bundled client.

    ``umqtt.simple`` is used for TLS only in its SSLContext form (1.4+, verifies the server and names it
    ``server_ip``); older versions would encrypt without verifying, so the bundled client takes over.
    """
    if cfg.use_umqtt:
        try:
            from umqtt.simple import MQTTClient, MQTTException
            probe = MQTTClient("probe", "localhost")
            old_tls_api = hasattr(probe, "ssl_params")
            if tls_ctx is None or (not old_tls_api and cfg.server_hostname in (None, cfg.server_ip)):
                return MQTTClient, MQTTException, "umqtt.simple"
        except ImportError:
            pass
    from ..mqtt.simple_mqtt import MQTTClient, MQTTException
    return MQTTClient, MQTTException, "bundled"


def _poll(poller, timeout_ms) -> bool:
    """Whether the polled socket became readable within ``timeout_ms``. ``ipoll`` (MicroPython) allocates
    nothing, so an idle ``loop()`` makes no garbage."""
    if hasattr(poller, "ipoll"):
        for _ in poller.ipoll(timeout_ms):
            return True
        return False
    return bool(poller.poll(timeout_ms))


def _decode_json(payload):
    try:
        return json.loads(payload)
    except (ValueError, TypeError):
        return None


def _text(payload):
    try:
        return payload.decode("utf-8")
    except (UnicodeError, ValueError, AttributeError):
        return payload


class IotClient:
    """A device connected to IoTDA with its secret. See the module docstring for the two ways to run it.

    Callbacks (all optional):

    * ``set_command_callback(f(request_id, command))``: :class:`Command`; answer with
      :meth:`respond_command`. Without a callback the command is answered ``result_code`` 1.
    * ``set_device_message_callback(f(message))``: :class:`DeviceMessage` from ``messages/down``.
    * ``set_property_set_callback(f(request_id, services))``: the list of ``{"service_id", "properties"}``
      to write; answer with :meth:`respond_property_set`. Without a callback: ``result_code`` 1.
    * ``set_property_get_callback(f(request_id, service_id))``: ``service_id`` is None for every service;
      answer with :meth:`respond_property_get`. Without a callback: an empty list.
    * ``set_user_topic_message_callback(f(topic, payload))``: a message on a subscribed custom topic
      (``payload`` is text, or bytes when it is not UTF-8).
    * ``set_connect_callback(f())`` / ``set_disconnect_callback(f(reason))``: link state changes.
    """

    def __init__(self, client_cfg) -> None:
        client_cfg.check()
        self._cfg = client_cfg
        device_id = client_cfg.device_id
        base = "$oc/devices/" + device_id + "/sys/"
        # topics built once: the handlers only compare prefixes and append request ids
        self._t_msg_up = base + "messages/up"
        self._t_report = base + "properties/report"
        self._t_cmd_resp = base + "commands/response/request_id="
        self._t_set_resp = base + "properties/set/response/request_id="
        self._t_get_resp = base + "properties/get/response/request_id="
        self._sys_filters = (base + "commands/#", base + "messages/down", base + "properties/set/#",
                             base + "properties/get/#")
        raw = base.encode()
        self._p_cmd = raw + b"commands/request_id="
        self._p_down = raw + b"messages/down"
        self._p_set = raw + b"properties/set/request_id="
        self._p_get = raw + b"properties/get/request_id="
        self._tls_ctx = _tls_context(client_cfg) if client_cfg.tls else None
        cls, exc, self.mqtt_impl = _mqtt_classes(client_cfg, self._tls_ctx)
        self._errors = (OSError, exc)
        if self.mqtt_impl == "bundled":
            self._mqtt = cls(device_id, client_cfg.server_ip, client_cfg.port, device_id, None,
                             client_cfg.keepalive, ssl=self._tls_ctx,
                             ssl_params={"server_hostname": client_cfg.server_hostname or client_cfg.server_ip},
                             timeout_ms=client_cfg.timeout_ms, max_packet=client_cfg.max_packet)
        elif self._tls_ctx is not None:
            self._mqtt = cls(device_id, client_cfg.server_ip, client_cfg.port, device_id, None,
                             client_cfg.keepalive, ssl=self._tls_ctx)
        else:
            self._mqtt = cls(device_id, client_cfg.server_ip, client_cfg.port, device_id, None,
                             client_cfg.keepalive)
        self._mqtt.set_callback(self._on_publish)
        self._lock = _thread.allocate_lock() if _thread is not None else _NoLock()
        self._pending = []
        self._user_topics = []
        self._poller = None
        self._connected = False
        self._running = False
        self._closed = False
        self._backoff = client_cfg.reconnect_min_ms
        self._next_try = ticks_ms()
        self._last_tx = self._last_ping = ticks_ms()
        self.connect_count = 0
        self.dropped = 0
        self.__command_callback = None
        self.__device_message_callback = None
        self.__property_set_callback = None
        self.__property_get_callback = None
        self.__user_topic_message_callback = None
        self.__connect_callback = None
        self.__disconnect_callback = None

    # ---- connection --------------------------------------------------------------------------------
    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        """Connect (computing the hour-stamped password now) and subscribe; raises OSError on network
        errors and the MQTT client's MQTTException (``args[0]`` = CONNACK code, 4 = bad secret) on refusal."""
        cfg = self._cfg
        stamp = get_timestamp()
        with self._lock:
            self._mqtt.client_id = get_client_id(cfg.device_id, 1 if cfg.check_timestamp else 0, stamp)
            self._mqtt.pswd = get_password(cfg.secret, stamp)
            try:
                self._mqtt.connect()
                if cfg.subscribe_system_topics:
                    for topic in self._sys_filters:
                        self._mqtt.subscribe(topic, 1)
                for topic in self._user_topics:
                    self._mqtt.subscribe(topic, 1)
            except BaseException:
                self._close_socket()
                raise
            if select is not None:
                self._poller = select.poll()
                self._poller.register(self._mqtt.sock, select.POLLIN)
            self._connected = True
            self._closed = False
            self._backoff = cfg.reconnect_min_ms
            self._last_tx = ticks_ms()
            self._last_ping = ticks_add(self._last_tx, -cfg.keepalive * 1000)
            self.connect_count += 1
        self._log("connected to", cfg.server_ip, cfg.port, "TLS" if self._tls_ctx else "plain", "via", self.mqtt_impl)
        if self.__connect_callback is not None:
            self.__connect_callback()

    def close(self) -> None:
        """Stop the background thread (if any) and disconnect; no reconnection follows."""
        self._running = False
        self._closed = True
        with self._lock:
            was = self._connected
            self._connected = False
            if was:
                try:
                    self._mqtt.disconnect()
                except self._errors:
                    pass
            self._close_socket()

    disconnect = close

    def _close_socket(self) -> None:
        self._poller = None
        if self.mqtt_impl == "bundled":
            self._mqtt._close()
            return
        sock = self._mqtt.sock
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass
            self._mqtt.sock = None

    def _lost(self, reason) -> None:
        with self._lock:
            was = self._connected
            self._connected = False
            self._close_socket()
            self._next_try = ticks_add(ticks_ms(), self._backoff)
        if was:
            print("[iot] connection lost:", repr(reason), "- reconnecting in", self._backoff, "ms")
            if self.__disconnect_callback is not None:
                self.__disconnect_callback(reason)

    def _reconnect(self) -> None:
        try:
            self.connect()
        except Exception as err:   # network, refusal, or TLS (mbedTLS reports a bad certificate as ValueError)
            self._next_try = ticks_add(ticks_ms(), self._backoff)
            print("[iot] connect failed:", repr(err), "- next try in", self._backoff, "ms")
            self._backoff = min(self._backoff * 2, self._cfg.reconnect_max_ms)

    # ---- running ----------------------------------------------------------------------------------
    def loop(self, timeout_ms=100) -> None:
        """Do one round of work: wait up to ``timeout_ms`` for packets, handle them, run the callbacks,
        ping when due, and reconnect (with back-off) when the link is down. Never raises for link errors."""
        if not self._connected:
            wait = ticks_diff(self._next_try, ticks_ms())
            if wait > 0:
                sleep_ms(wait if wait < timeout_ms else timeout_ms)
            elif not self._closed:
                self._reconnect()
            return
        try:
            if self._readable(timeout_ms):
                with self._lock:
                    # read what is there, but hand over to the callbacks before the queue would overflow
                    while self._mqtt.sock is not None:
                        self._mqtt.check_msg()
                        if len(self._pending) >= self._cfg.max_pending or not self._readable(0):
                            break
            self._dispatch_pending()
            self._keepalive()
        except Exception as err:   # any failure of the link (mbedTLS raises ValueError too): reconnect
            self._lost(err)

    def loop_forever(self) -> None:
        """Call :meth:`loop` until :meth:`close`."""
        self._running = True
        while self._running:
            self.loop(200)

    def start(self) -> None:
        """Run :meth:`loop_forever` in a background thread (upstream's ``start``); needs ``_thread``."""
        if _thread is None:
            raise OSError("this firmware has no _thread: call loop() from your main loop instead")
        self._running = True
        _thread.start_new_thread(self.loop_forever, ())

    def _readable(self, timeout_ms) -> bool:
        if self._poller is None:
            if timeout_ms:
                sleep_ms(timeout_ms)
            return True
        return _poll(self._poller, timeout_ms)

    def _keepalive(self) -> None:
        now = ticks_ms()
        ka = self._cfg.keepalive * 1000
        last_rx = getattr(self._mqtt, "last_rx", None)   # the bundled client tracks it; umqtt does not
        if ticks_diff(now, self._last_ping) >= ka // 4 and (
                ticks_diff(now, self._last_tx) >= ka // 2
                or (last_rx is not None and ticks_diff(now, last_rx) >= ka // 2)):
            with self._lock:
                self._mqtt.ping()
            self._last_tx = self._last_ping = now
        if last_rx is not None and ticks_diff(now, last_rx) > ka:
            raise OSError(ETIMEDOUT)   # no PINGRESP for a whole keepalive: the link is dead

    # ---- receiving ----------------------------------------------------------------------------------
    def _on_publish(self, topic, msg) -> None:
        # runs inside the MQTT client (lock held): only queue, the callbacks run in _dispatch_pending
        if len(self._pending) >= self._cfg.max_pending:
            self._pending.pop(0)
            self.dropped += 1
            print("[iot] too many received messages waiting: dropped the oldest")
        self._pending.append((topic, msg))

    def _dispatch_pending(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    return
                topic, msg = self._pending.pop(0)
            try:
                self._dispatch(topic, msg)
            except self._errors:
                raise
            except Exception as err:   # a failing callback must not stop the client
                print("[iot] callback failed:", repr(err))

    def _dispatch(self, topic, msg) -> None:
        if topic.startswith(self._p_cmd):
            request_id = _text(topic[len(self._p_cmd):])
            data = _decode_json(msg)
            if not isinstance(data, dict):
                print("[iot] command", request_id, "is not a JSON object: answered result_code 1")
                self.respond_command(request_id, 1)
            elif self.__command_callback is None:
                self.respond_command(request_id, 1)
            else:
                self.__command_callback(request_id, Command(data))
        elif topic == self._p_down:
            data = _decode_json(msg)
            message = DeviceMessage(data if isinstance(data, dict) else _text(msg))
            if self.__device_message_callback is not None:
                self.__device_message_callback(message)
            else:
                self._log("message down:", message.content)
        elif topic.startswith(self._p_set):
            request_id = _text(topic[len(self._p_set):])
            data = _decode_json(msg)
            services = data.get("services") if isinstance(data, dict) else None
            if not isinstance(services, list):
                print("[iot] property set", request_id, "has no services list: answered result_code 1")
                self.respond_property_set(request_id, 1, "bad request")
            elif self.__property_set_callback is None:
                self.respond_property_set(request_id, 1, "no handler")
            else:
                self.__property_set_callback(request_id, services)
        elif topic.startswith(self._p_get):
            request_id = _text(topic[len(self._p_get):])
            data = _decode_json(msg)
            service_id = data.get("service_id") if isinstance(data, dict) else None
            if self.__property_get_callback is None:
                self.respond_property_get(request_id, [])
            else:
                self.__property_get_callback(request_id, service_id)
        elif self.__user_topic_message_callback is not None:
            self.__user_topic_message_callback(_text(topic), _text(msg))
        else:
            self._log("message on", _text(topic), "(no user topic callback)")

    # ---- sending --------------------------------------------------------------------------------------
    def _publish(self, topic, payload, qos) -> None:
        if not self._connected:
            raise OSError(ENOTCONN)
        if isinstance(payload, str):   # bytes, so that lengths count bytes whatever MQTT client sends them
            payload = payload.encode("utf-8")
        if isinstance(topic, str):
            topic = topic.encode("utf-8")
        try:
            with self._lock:
                if self._mqtt.sock is None:
                    raise OSError(ENOTCONN)
                self._mqtt.publish(topic, payload, False, qos)
                self._last_tx = ticks_ms()
        except self._errors as err:
            self._lost(err)
            raise

    def subscribe(self, topic) -> None:
        """Subscribe to a custom topic (str) or several (list); kept and re-subscribed after reconnects."""
        topics = [topic] if isinstance(topic, str) else list(topic)
        for t in topics:
            if t not in self._user_topics:
                self._user_topics.append(t)
            if self._connected:
                try:
                    with self._lock:
                        self._mqtt.subscribe(t, 1)
                except self._errors as err:
                    self._lost(err)
                    raise

    def publish_message(self, *args, qos=None) -> None:
        """``publish_message(message)`` on ``messages/up`` or ``publish_message(topic, message)``.

        A :class:`DeviceMessage` goes in IoTDA's system format, bytes go unchanged, anything else as
        ``{"content": message}`` (upstream's format).
        """
        if len(args) == 1:
            topic, message = self._t_msg_up, args[0]
        elif len(args) == 2:
            topic, message = args
        else:
            raise TypeError("publish_message(message) or publish_message(topic, message)")
        if isinstance(message, DeviceMessage):
            payload = json.dumps(message.to_dict())
        elif isinstance(message, (bytes, bytearray)):
            payload = message
        else:
            payload = json.dumps({"content": message})
        self._publish(topic, payload, self._cfg.qos if qos is None else qos)

    def report_properties(self, services, qos=None) -> None:
        """Report properties: a list of ``{"service_id", "properties"}`` or a :class:`ServicesProperties`."""
        if isinstance(services, ServicesProperties):
            services = services.service_property
        self._publish(self._t_report, json.dumps({"services": services}), self._cfg.qos if qos is None else qos)

    def respond_command(self, request_id, result_code=0, response_name=None, paras=None) -> None:
        """Answer command ``request_id`` (``result_code`` 0 = success)."""
        body = {"result_code": result_code}
        if response_name is not None:
            body["response_name"] = response_name
        if paras is not None:
            body["paras"] = paras
        self._publish(self._t_cmd_resp + request_id, json.dumps(body), self._cfg.qos)

    def respond_property_set(self, request_id, result_code=0, result_desc=None) -> None:
        """Answer property set ``request_id``. Upstream passed a text as ``result_code``: that is taken
        as ``result_desc`` with code 0."""
        if isinstance(result_code, str):
            result_code, result_desc = 0, result_code
        body = {"result_code": result_code}
        if result_desc is not None:
            body["result_desc"] = result_desc
        self._publish(self._t_set_resp + request_id, json.dumps(body), self._cfg.qos)

    def respond_property_get(self, request_id, services) -> None:
        """Answer property get ``request_id`` with a list of services or a :class:`ServicesProperties`."""
        if isinstance(services, ServicesProperties):
            services = services.service_property
        self._publish(self._t_get_resp + request_id, json.dumps({"services": services}), self._cfg.qos)

    # ---- callbacks ------------------------------------------------------------------------------------
    def set_command_callback(self, callback) -> None:
        self.__command_callback = callback

    def set_device_message_callback(self, callback) -> None:
        self.__device_message_callback = callback

    def set_property_set_callback(self, callback) -> None:
        self.__property_set_callback = callback

    def set_property_get_callback(self, callback) -> None:
        self.__property_get_callback = callback

    def set_user_topic_message_callback(self, callback) -> None:
        self.__user_topic_message_callback = callback

    def set_connect_callback(self, callback) -> None:
        self.__connect_callback = callback

    def set_disconnect_callback(self, callback) -> None:
        self.__disconnect_callback = callback

    def _log(self, *args) -> None:
        if self._cfg.verbose:
            print("[iot]", *args)
