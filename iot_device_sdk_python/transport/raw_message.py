"""An MQTT message: topic, payload, QoS (upstream ``transport.raw_message``)."""
from __future__ import annotations

from typing import Union


class RawMessage:
    """A message as it travels on MQTT. Inbound payloads are ``bytes``; outbound may be str or bytes."""

    def __init__(self, topic: str, payload: Union[str, bytes], qos: int = 1):
        self._topic = topic
        self._payload = payload
        self._qos = qos

    @property
    def topic(self) -> str:
        """The MQTT topic."""
        return self._topic

    @topic.setter
    def topic(self, value: str):
        self._topic = value

    @property
    def payload(self) -> Union[str, bytes]:
        """The payload (bytes for inbound messages)."""
        return self._payload

    @payload.setter
    def payload(self, value: Union[str, bytes]):
        self._payload = value

    @property
    def qos(self) -> int:
        """QoS 0 or 1."""
        return self._qos

    @qos.setter
    def qos(self, value: int):
        self._qos = value

    def __repr__(self) -> str:
        size = len(self._payload) if self._payload is not None else 0
        return f"RawMessage(topic={self._topic!r}, qos={self._qos}, payload=<{size} bytes>)"
