"""An MQTT message: topic, payload, QoS (upstream ``transport.raw_message``)."""
from __future__ import annotations

from typing import Optional, Union

from iot_device_sdk_python.client.mqtt_v5_data import MqttV5Data


class RawMessage:
    """A message as it travels on MQTT. Inbound payloads are ``bytes``; outbound may be str or bytes."""

    def __init__(self, topic: str, payload: Union[str, bytes], qos: int = 1,
                 v5_data: Optional[MqttV5Data] = None) -> None:
        self._topic = topic
        self._payload = payload
        self._qos = qos
        self._v5_data = v5_data

    @property
    def topic(self) -> str:
        """The MQTT topic."""
        return self._topic

    @topic.setter
    def topic(self, value: str) -> None:
        self._topic = value

    @property
    def payload(self) -> Union[str, bytes]:
        """The payload (bytes for inbound messages)."""
        return self._payload

    @payload.setter
    def payload(self, value: Union[str, bytes]) -> None:
        self._payload = value

    @property
    def qos(self) -> int:
        """QoS 0 or 1."""
        return self._qos

    @qos.setter
    def qos(self, value: int) -> None:
        self._qos = value

    @property
    def v5_data(self) -> Optional[MqttV5Data]:
        """Beyond upstream: MQTT 5 properties (user properties, content type, response topic, correlation
        data) sent with the message, or received with it on an MQTT 5 connection; None otherwise."""
        return self._v5_data

    @v5_data.setter
    def v5_data(self, value: Optional[MqttV5Data]) -> None:
        self._v5_data = value

    def __repr__(self) -> str:
        size = len(self._payload) if self._payload is not None else 0
        return f"RawMessage(topic={self._topic!r}, qos={self._qos}, payload=<{size} bytes>)"
