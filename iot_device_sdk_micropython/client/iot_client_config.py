"""Connection settings of :class:`IotClient`."""


class IotClientConfig:
    """Where and how a device connects.

    ``server_ip``: the IoTDA access address (host name or IP). ``device_id`` and ``secret``: from device
    registration. ``port``: 1883 (plain MQTT) or 8883 (MQTTS).

    TLS is used when ``port`` is 8883 or a CA is given (``use_ssl`` forces it either way). The server is
    verified against ``ca_file`` (PEM or DER path) or ``ca_data`` (bytes) and its name against
    ``server_hostname`` (default ``server_ip``); TLS without a CA is refused unless the board's ``ssl``
    cannot verify at all and ``allow_unverified_tls`` is True (old firmware without ``ssl.SSLContext``).

    ``check_timestamp``: sign type 1 (the platform checks the client id's hour against its clock; the board
    needs the right time) instead of 0. ``keepalive``: seconds, IoTDA accepts 30-1200. Reconnection waits
    ``reconnect_min_ms`` after a loss, doubling up to ``reconnect_max_ms``. ``max_pending``: received
    messages kept while the client is busy (the oldest is dropped beyond it). ``max_packet``: largest
    PUBLISH the bundled MQTT client accepts (larger ones are dropped unread, saving the heap).
    ``subscribe_system_topics``: also SUBSCRIBE to the system topics (IoTDA delivers them without it).
    ``use_umqtt``: use ``umqtt.simple`` when the board has it (else the bundled client).
    """

    def __init__(self, server_ip="", device_id="", secret="", port=1883, ca_file=None, ca_data=None,
                 use_ssl=None, server_hostname=None, allow_unverified_tls=False, check_timestamp=False,
                 keepalive=60, qos=1, reconnect_min_ms=1000, reconnect_max_ms=30000, timeout_ms=10000,
                 max_pending=8, max_packet=16384, subscribe_system_topics=True, use_umqtt=True,
                 verbose=True) -> None:
        self.server_ip = server_ip
        self.device_id = device_id
        self.secret = secret
        self.port = port
        self.ca_file = ca_file
        self.ca_data = ca_data
        self.use_ssl = use_ssl
        self.server_hostname = server_hostname
        self.allow_unverified_tls = allow_unverified_tls
        self.check_timestamp = check_timestamp
        self.keepalive = keepalive
        self.qos = qos
        self.reconnect_min_ms = reconnect_min_ms
        self.reconnect_max_ms = reconnect_max_ms
        self.timeout_ms = timeout_ms
        self.max_pending = max_pending
        self.max_packet = max_packet
        self.subscribe_system_topics = subscribe_system_topics
        self.use_umqtt = use_umqtt
        self.verbose = verbose

    def check(self) -> None:
        """Raise ValueError naming the first missing or invalid setting."""
        for name in ("server_ip", "device_id", "secret"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError("IotClientConfig." + name + " is not set")
        if not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise ValueError("IotClientConfig.port must be an int in 1..65535")
        if not isinstance(self.keepalive, int) or not 30 <= self.keepalive <= 1200:
            raise ValueError("IotClientConfig.keepalive must be 30..1200 s (IoTDA's range)")
        if self.qos not in (0, 1):
            raise ValueError("IotClientConfig.qos must be 0 or 1 (IoTDA has no QoS 2)")

    @property
    def tls(self) -> bool:
        """Whether the connection uses TLS."""
        if self.use_ssl is not None:
            return bool(self.use_ssl)
        return self.port == 8883 or self.ca_file is not None or self.ca_data is not None


#: Upstream's spelling of the class name.
IoTClientConfig = IotClientConfig
