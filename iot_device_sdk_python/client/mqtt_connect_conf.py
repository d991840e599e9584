"""MQTT session settings (upstream ``client.mqtt_connect_conf``)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Union

from iot_device_sdk_python.utils._props import Field, rw

if TYPE_CHECKING:
    from iot_device_sdk_python.transport.mqtt.shared_loop import SharedNetworkLoop


class MqttConnectConf:
    """``keep_alive_time`` seconds (int, 30..1200, default 120); ``qos`` of SDK publishes (0 or 1, default 1);
    ``timeout``: seconds one connection attempt may take (TCP, TLS and CONNACK; int or float > 0;
    default 10.0 — upstream had 1.0 but never used it)."""

    #: ``protocol_version`` values (paho's numbering: the CONNECT protocol level)
    MQTT_V311 = 4
    MQTT_V5 = 5

    def __init__(self) -> None:
        self._keep_alive_time: int = 120
        self._qos: int = 1
        self._timeout: Union[int, float] = 10.0
        self._network_loop: Optional[SharedNetworkLoop] = None
        self._compress_reports: bool = False
        self._protocol_version: int = self.MQTT_V311
        self._topic_alias_maximum: int = 0

    keep_alive_time: Field[int] = rw("_keep_alive_time", "MQTT keep-alive in seconds (30..1200).")
    qos: Field[int] = rw("_qos", "QoS of the SDK's publishes (0 or 1).")
    timeout: Field[Union[int, float]] = rw("_timeout", "Seconds allowed for one connection attempt up to CONNACK.")
    network_loop: Field[Optional[SharedNetworkLoop]] = rw(
        "_network_loop",
        "Beyond upstream: a ``transport.mqtt.shared_loop.SharedNetworkLoop`` shared by many devices "
        "(one network thread and a small dispatcher pool for all of them; see doc/performance.md). "
        "None (default) = one paho network thread and one dispatcher thread per device.")
    compress_reports: Field[bool] = rw("_compress_reports",
                                       "Beyond upstream: gzip every property and message report and append "
                                       "``?encoding=gzip`` to its topic; IoTDA inflates it (doc/protocol.md §2.11). "
                                       "Default False. ``report_properties``/``report_device_message`` take "
                                       "``compress=`` to decide per call.")
    protocol_version: Field[int] = rw(
        "_protocol_version",
        "Beyond upstream: ``MQTT_V311`` (4, default) or ``MQTT_V5`` (5). MQTT 5 adds per-message properties "
        "(``MqttV5Data``), topic aliases (``topic_alias_maximum``) and MQTT 5 reason codes in errors "
        "(doc/protocol.md §1.7).")
    topic_alias_maximum: Field[int] = rw(
        "_topic_alias_maximum",
        "Beyond upstream, MQTT 5 only: how many topics the SDK may replace by topic aliases (0, default: none). "
        "The server's Topic Alias Maximum from CONNACK caps it.")
