"""How a device authenticates and reaches the platform (upstream ``client.connect_auth_info``)."""
from __future__ import annotations

from typing import Any, Dict, Optional, Union

from iot_device_sdk_python.utils._props import Field, rw


class ConnectAuthInfo:
    """Connection and authentication settings. Plain holder: validation happens when the
    DeviceClient is built (``DeviceClient.check_connect_auth_info``), raising ``ValueError``.

    Beyond upstream: any port 1..65535; ``tls`` (None = TLS unless port is 1883); ``key_password``
    for an encrypted X.509 key; ``iot_cert_path`` None with TLS means "trust the system CAs".
    """

    SECRET_AUTH = 0
    X509_AUTH = 1
    PROTOCOL_MQTT = "MQTT"
    BS_MODE_DIRECT_CONNECT = 0
    BS_MODE_STANDARD_BOOTSTRAP = 1
    BS_MODE_BOOTSTRAP_WITH_SCOPEID = 2

    def __init__(self) -> None:
        self._id: Optional[str] = None
        self._auth_type: int = self.SECRET_AUTH
        self._secret: Union[str, bytes, None] = None
        self._cert_path: Optional[str] = None
        self._key_path: Optional[str] = None
        self._key_password: Union[str, bytes, None] = None
        self._iot_cert_file: Optional[str] = None
        self._server_uri: Optional[str] = None
        self._port: Optional[int] = None
        self._tls: Optional[bool] = None
        self._protocol: str = self.PROTOCOL_MQTT
        self._scope_id: Optional[str] = None
        self._bs_mode: int = self.BS_MODE_DIRECT_CONNECT
        self._bs_cert_path: Optional[str] = None
        self._bs_message: Any = None
        # bootstrap cache location, forced re-provisioning, answer wait
        self._bs_cache_path: Optional[str] = None
        self._bs_force: bool = False
        self._bs_timeout: Optional[float] = None
        self._check_timestamp: str = "1"
        self._reconnect_on_failure: bool = True
        self._min_backoff: float = 1000
        self._max_backoff: float = 30000
        self._enable_rule_manage: bool = False
        self._max_buffer_message: int = 0
        self._inflight_messages: int = 20
        self._auto_report_device_info: bool = False
        self._keep_process_alive: bool = True
        # durable offline queue and half-open link detection
        self._offline_queue_path: Optional[str] = None
        self._offline_queue_max: Optional[int] = None
        self._ack_timeout: Optional[float] = None
        # transport and proxy (transport/mqtt/network.py)
        self._transport: str = "tcp"
        self._ws_path: str = "/mqtt"
        self._ws_headers: Optional[Dict[str, str]] = None
        self._proxy_type: Optional[str] = None
        self._proxy_host: Optional[str] = None
        self._proxy_port: Optional[int] = None
        self._proxy_username: Optional[str] = None
        self._proxy_password: Optional[str] = None

    id: Field[Optional[str]] = rw("_id", "Device id (``{product_id}_{node_id}``); also the MQTT username.")
    auth_type: Field[int] = rw("_auth_type", "SECRET_AUTH (0) or X509_AUTH (1).")
    secret: Field[Union[str, bytes, None]] = rw("_secret",
                                                "Device secret (registration-group secret in scope-id bootstrap).")
    cert_path: Field[Optional[str]] = rw("_cert_path", "Client certificate PEM file (X.509).")
    key_path: Field[Optional[str]] = rw("_key_path", "Client private key PEM file (X.509).")
    key_password: Field[Union[str, bytes, None]] = rw("_key_password",
                                                      "Password of an encrypted client key (beyond upstream).")
    iot_cert_path: Field[Optional[str]] = rw("_iot_cert_file", "CA file that verifies the platform; None = system CAs.")
    server_uri: Field[Optional[str]] = rw("_server_uri",
                                          "Platform host name or IP (a ``ssl://``/``tcp://`` prefix is ignored).")
    port: Field[Optional[int]] = rw("_port", "Platform port, 1..65535 (1883 plain, 8883 TLS on IoTDA).")
    tls: Field[Optional[bool]] = rw("_tls",
                                    "True/False forces TLS on/off; None (default) = TLS unless the port is 1883.")
    protocol: Field[str] = rw("_protocol", "Only ``MQTT``.")
    scope_id: Field[Optional[str]] = rw("_scope_id", "Registration-group scope id (bs_mode 2).")
    bs_mode: Field[int] = rw("_bs_mode", "0 direct connect, 1 standard bootstrap, 2 bootstrap with scope id.")
    bs_cert_path: Field[Optional[str]] = rw("_bs_cert_path", "CA file for the provisioning (bootstrap) server.")
    bs_message: Field[Any] = rw("_bs_message",
                                "Payload of the bootstrap request (str, bytes, or a dict/list sent as JSON).")
    bs_cache_path: Field[Optional[str]] = rw("_bs_cache_path", "File caching the provisioned server info (default: "
                                             "``~/.cache/iot_device_sdk_python/{device_id}.json``); written 0600.")
    bs_force: Field[bool] = rw("_bs_force", "True: ignore the bootstrap cache and provision again on connect.")
    bs_timeout: Field[Optional[float]] = rw("_bs_timeout", "Seconds to wait for the bootstrap answer (None = 10).")
    check_timestamp: Field[str] = rw("_check_timestamp",
                                     '"1": platform checks the client-id timestamp; "0": it does not.')
    reconnect_on_failure: Field[bool] = rw("_reconnect_on_failure", "Reconnect automatically after a lost connection.")
    min_backoff: Field[float] = rw("_min_backoff",
                                   "Smallest reconnect delay, milliseconds (the first retry after a link that "
                                   "was up waits 1-1.5 x this).")
    max_backoff: Field[float] = rw("_max_backoff",
                                   "Largest reconnect delay, milliseconds (reached only after consecutive "
                                   "failed attempts).")
    enable_rule_manage: Field[bool] = rw("_enable_rule_manage", "Run device-side rules.")
    max_buffer_message: Field[int] = rw("_max_buffer_message",
                                        "Offline publish buffer size (0 = disabled: offline publishes fail at once). "
                                        "When full, the OLDEST message is dropped and its listener told on_failure.")
    inflight_messages: Field[int] = rw("_inflight_messages",
                                       "Max QoS 1 messages in flight (paho max_inflight_messages).")
    auto_report_device_info: Field[bool] = rw(
        "_auto_report_device_info",
        "Publish the ``$sdk_info`` event (empty versions) once, before a successful "
        "``connect()`` returns (or on the first background connection), unless the "
        "application already called ``report_device_info``: its report always wins.")

    keep_process_alive: Field[bool] = rw(
        "_keep_process_alive",
        "True (default, as upstream): a connected device keeps the Python process alive "
        "until ``close()``/``destroy()``, so a program whose main returns after "
        "``connect()`` goes on answering. False: the SDK's threads are all daemons and the "
        "process ends when the application's own threads do.")

    offline_queue_path: Field[Optional[str]] = rw(
        "_offline_queue_path",
        "sqlite3 file of the outbox (None = memory only): every QoS 1 message is written "
        "there before it is sent and removed after its PUBACK, as is every buffered message; "
        "after a crash of the process the next process using the same file sends them all "
        "again, first and in order (at least once). Bounded by ``offline_queue_max``; "
        "``max_buffer_message`` is then not used. See doc/reliability.md.")
    offline_queue_max: Field[Optional[int]] = rw(
        "_offline_queue_max",
        "Bound of the durable offline queue (None = 10000). When full, the OLDEST message is "
        "dropped, removed from the file and its listener/handle failed (buffer_overflow).")
    ack_timeout: Field[Optional[float]] = rw(
        "_ack_timeout",
        "Seconds without any PUBACK while QoS 1 messages are in flight after which the link is "
        "deemed half-open and dropped (messages re-queued, reconnect). None = off: only the "
        "MQTT keep-alive (up to 2 x keep_alive_time) detects a dead link.")

    transport: Field[str] = rw(
        "_transport",
        "Beyond upstream: ``\"tcp\"`` (default) or ``\"websockets\"`` (MQTT over WebSocket; with TLS that is "
        "``wss://server_uri:port{ws_path}``, IoTDA's port 443). See doc/protocol.md §1.1.")
    ws_path: Field[str] = rw("_ws_path", "Beyond upstream: the WebSocket path (default ``/mqtt``).")
    ws_headers: Field[Optional[Dict[str, str]]] = rw("_ws_headers",
                                                     "Beyond upstream: extra HTTP headers of the WebSocket handshake.")
    proxy_type: Field[Optional[str]] = rw(
        "_proxy_type",
        "Beyond upstream: None (default, direct), ``\"http\"`` (HTTP CONNECT), ``\"socks5\"`` or ``\"socks4\"``; "
        "needs PySocks. Applies to the IoTDA connection (TCP or WebSocket), not to the bootstrap one.")
    proxy_host: Field[Optional[str]] = rw("_proxy_host", "Beyond upstream: the proxy's host name or IP.")
    proxy_port: Field[Optional[int]] = rw("_proxy_port", "Beyond upstream: the proxy's port.")
    proxy_username: Field[Optional[str]] = rw("_proxy_username",
                                              "Beyond upstream: proxy user (HTTP basic auth, SOCKS5 user, SOCKS4 id).")
    proxy_password: Field[Optional[str]] = rw("_proxy_password", "Beyond upstream: proxy password (never logged).")

    def use_tls(self) -> bool:
        """Whether the connection uses TLS: ``tls`` when set, else True unless the port is 1883."""
        if self._tls is not None:
            return bool(self._tls)
        return self._port != 1883

    def copy(self) -> "ConnectAuthInfo":
        """A shallow copy (the SDK never mutates the caller's object)."""
        other = ConnectAuthInfo.__new__(ConnectAuthInfo)
        other.__dict__.update(self.__dict__)
        return other

    def __repr__(self) -> str:  # never show secrets
        return (f"ConnectAuthInfo(id={self._id!r}, server_uri={self._server_uri!r}, port={self._port!r}, "
                f"auth_type={self._auth_type!r}, bs_mode={self._bs_mode!r})")
