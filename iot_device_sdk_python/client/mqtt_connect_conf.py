"""MQTT session settings (upstream ``client.mqtt_connect_conf``)."""
from __future__ import annotations

from typing import Union

from iot_device_sdk_python.utils._props import rw


class MqttConnectConf:
    """``keep_alive_time`` seconds (int, 30..1200, default 120); ``qos`` of SDK publishes (0 or 1, default 1);
    ``timeout``: seconds one connection attempt may take (TCP, TLS and CONNACK; int or float > 0;
    default 10.0 — upstream had 1.0 but never used it)."""

    def __init__(self):
        self._keep_alive_time: int = 120
        self._qos: int = 1
        self._timeout: Union[int, float] = 10.0
        self._network_loop = None

    keep_alive_time = rw("_keep_alive_time", "MQTT keep-alive in seconds (30..1200).")
    qos = rw("_qos", "QoS of the SDK's publishes (0 or 1).")
    timeout = rw("_timeout", "Seconds allowed for one connection attempt up to CONNACK.")
    network_loop = rw("_network_loop",
                      "Beyond upstream: a ``transport.mqtt.shared_loop.SharedNetworkLoop`` shared by many devices "
                      "(one network thread and a small dispatcher pool for all of them; see doc/performance.md). "
                      "None (default) = one paho network thread and one dispatcher thread per device.")
