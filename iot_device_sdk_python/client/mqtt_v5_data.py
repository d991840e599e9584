"""MQTT 5 properties of one message (beyond upstream; Huawei's C SDK ``MQTTV5_DATA``, C# SDK ``MqttV5Data``).

Used only on a connection made with ``MqttConnectConf.protocol_version = MqttConnectConf.MQTT_V5``: pass one to
``RawMessage(..., v5_data=...)``, ``report_device_message(..., v5_data=...)`` or ``report_properties(...,
v5_data=...)``; inbound messages on an MQTT 5 link carry the sender's in ``RawMessage.v5_data`` (None when the
publish had none of these properties). IoTDA forwards them and defines no keys of its own (doc/protocol.md §1.7).
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple, Union

#: the most user properties one message may carry (IoTDA publishes no limit; a bound against mistakes)
MAX_USER_PROPERTIES = 100


class MqttV5Data:
    """User properties, content type, response topic and correlation data of one MQTT 5 PUBLISH.

    ``user_properties``: a list of ``(key, value)`` string pairs (a key may repeat, order is kept);
    ``content_type``: e.g. ``"application/json"``; ``response_topic`` and ``correlation_data`` (bytes, or a str
    sent as UTF-8) for request/response between devices and applications.
    """

    def __init__(self, user_properties: Optional[Sequence[Tuple[str, str]]] = None,
                 content_type: Optional[str] = None, response_topic: Optional[str] = None,
                 correlation_data: Union[bytes, str, None] = None) -> None:
        self.user_properties: List[Tuple[str, str]] = list(user_properties or [])
        self.content_type = content_type
        self.response_topic = response_topic
        self.correlation_data: Optional[bytes] = (correlation_data.encode("utf-8")
                                                  if isinstance(correlation_data, str) else correlation_data)

    def check(self) -> None:
        """Raise ``ValueError`` naming the first field that cannot be sent."""
        if not isinstance(self.user_properties, list) or len(self.user_properties) > MAX_USER_PROPERTIES:
            raise ValueError(f"user_properties: a list of at most {MAX_USER_PROPERTIES} (key, value) pairs")
        for pair in self.user_properties:
            if (not isinstance(pair, tuple) or len(pair) != 2
                    or not all(isinstance(s, str) and "\x00" not in s for s in pair)):
                raise ValueError(f"user_properties: every entry must be a (str, str) pair, got {pair!r}")
        if self.content_type is not None and not isinstance(self.content_type, str):
            raise ValueError("content_type: must be a str or None")
        if self.response_topic is not None and (not isinstance(self.response_topic, str) or not self.response_topic
                                                or "+" in self.response_topic or "#" in self.response_topic):
            raise ValueError("response_topic: must be a topic name (no wildcard) or None")
        if self.correlation_data is not None and not isinstance(self.correlation_data, (bytes, bytearray)):
            raise ValueError("correlation_data: must be bytes, str or None")

    def is_empty(self) -> bool:
        """True when no property is set."""
        return not (self.user_properties or self.content_type is not None or self.response_topic is not None
                    or self.correlation_data is not None)

    @classmethod
    def from_paho(cls, properties: Any) -> Optional["MqttV5Data"]:
        """The properties of a received paho message (None when it carries none of ours)."""
        if properties is None:
            return None
        data = cls(user_properties=[(str(k), str(v)) for k, v in getattr(properties, "UserProperty", None) or []],
                   content_type=getattr(properties, "ContentType", None),
                   response_topic=getattr(properties, "ResponseTopic", None),
                   correlation_data=getattr(properties, "CorrelationData", None))
        return None if data.is_empty() else data

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MqttV5Data):
            return NotImplemented
        return (self.user_properties, self.content_type, self.response_topic, self.correlation_data) == (
            other.user_properties, other.content_type, other.response_topic, other.correlation_data)

    __hash__ = None  # type: ignore[assignment]  # mutable holder

    def __repr__(self) -> str:
        return (f"MqttV5Data(user_properties={self.user_properties!r}, content_type={self.content_type!r}, "
                f"response_topic={self.response_topic!r}, correlation_data={self.correlation_data!r})")
