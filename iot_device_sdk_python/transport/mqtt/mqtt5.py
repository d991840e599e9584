"""MQTT 5 on one connection: per-message properties, topic aliases, reason codes (doc/protocol.md §1.7).

Only used when ``MqttConnectConf.protocol_version`` is ``MQTT_V5``; an MQTT 3.1.1 connection never touches it.
"""
from __future__ import annotations

import threading
from typing import Any, Dict, List, Optional, Set, Tuple, cast

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from iot_device_sdk_python.client.mqtt_v5_data import MqttV5Data

#: MQTT 5 CONNACK reason code -> the 3.1.1 return code ``connect()`` reports (1, 2, 4, 5 are never retried)
CONNACK_V5_TO_V311: Dict[int, int] = {
    0x84: 1,  # unsupported protocol version
    0x85: 2,  # client identifier not valid (IoTDA: also a keep-alive outside 30..1200)
    0x86: 4,  # bad user name or password
    0x8C: 4,  # bad authentication method
    0x87: 5,  # not authorized
    0x8A: 5,  # banned
}
#: topics remembered as "published once" before the set is cleared (bounds memory with many one-off topics)
_SEEN_MAX = 1024
#: packets remembered per alias while its mapping is not known to be on the wire
_CARRIERS_MAX = 8
#: every other failure (0x80 unspecified, 0x88 server unavailable, 0x89 busy, 0x9F rate exceeded, ...) -> 3 (retried)
CONNACK_RETRYABLE = 3


def connack_return_code(reason_code: Any) -> int:
    """The ``connect()`` int for a failed CONNACK (paho ``ReasonCode`` with MQTT 5 numbering, also on 3.1.1)."""
    return CONNACK_V5_TO_V311.get(int(getattr(reason_code, "value", -1)), CONNACK_RETRYABLE)


def reason(reason_code: Any) -> Tuple[Optional[int], Optional[str]]:
    """(value, name) of a paho ``ReasonCode`` (None, None for anything else)."""
    value = getattr(reason_code, "value", None)
    if not isinstance(value, int):
        return None, None
    return value, str(reason_code)


class V5Session:
    """MQTT 5 state of one paho client (one connection): the topic aliases agreed so far.

    Topic aliases (``alias_max`` > 0: the smaller of the server's Topic Alias Maximum from CONNACK and
    ``MqttConnectConf.topic_alias_maximum``): the first ``alias_max`` distinct topics published a second time
    get aliases 1..N in that order (a topic used once, such as a response's request id, takes none). A topic's
    publishes carry the full name together with its alias until paho reports one such packet as published
    (written at QoS 0, acknowledged at QoS 1: ``MQTTMessageInfo.is_published``); from then on only the alias is
    sent. Until then paho may still hold that packet back (in-flight window) while a later QoS 0 packet goes
    out first, so an alias alone could reach the server before its mapping. Aliases never move to another topic
    within a connection, and a new connection starts with none.

    Nothing here runs on paho's network thread: paho calls ``on_publish`` while holding its own message lock,
    which ``publish()`` also takes, so a lock shared with a callback could deadlock the two threads.
    """

    def __init__(self, alias_max: int) -> None:
        self.alias_max = max(0, alias_max)
        self._lock = threading.Lock()            # spans an alias decision and paho's enqueue of that packet
        self._aliases: Dict[str, int] = {}
        self._seen: Set[str] = set()             # topics published once, not aliased yet (bounded)
        self._established: Set[int] = set()      # aliases whose mapping is known to be on the wire
        self._carriers: Dict[int, List[mqtt.MQTTMessageInfo]] = {}  # alias -> packets sent with topic + alias
        self.alias_only_sent = 0                 # publishes sent with the alias alone (diagnostics, tests)

    @property
    def aliases(self) -> Dict[str, int]:
        """topic -> alias (a copy)."""
        with self._lock:
            return dict(self._aliases)

    def publish(self, client: mqtt.Client, topic: str, payload: Any, qos: int,
                data: Optional[MqttV5Data]) -> mqtt.MQTTMessageInfo:
        """Hand one message to paho with its properties and, when aliases are on, its alias."""
        props: Optional[Properties] = None
        if data is not None:
            props = to_paho(data)
        if self.alias_max <= 0:
            return client.publish(topic, payload, qos, properties=props)
        # the lock spans the decision and paho's enqueue, so packets leave in the order aliases were decided
        with self._lock:
            alias = self._aliases.get(topic)
            if alias is None and len(self._aliases) < self.alias_max:
                # only a topic used again gets an alias: one-off topics (a command response's request id)
                # must not take the few aliases the server allows
                if topic in self._seen:
                    alias = len(self._aliases) + 1
                    self._aliases[topic] = alias
                else:
                    if len(self._seen) >= _SEEN_MAX:
                        self._seen.clear()
                    self._seen.add(topic)
            if alias is None:
                return client.publish(topic, payload, qos, properties=props)
            if props is None:
                props = _publish_properties()
            props.TopicAlias = alias
            if alias in self._established or self._carried(alias):
                self.alias_only_sent += 1
                return client.publish("", payload, qos, properties=props)
            info = client.publish(topic, payload, qos, properties=props)
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                carriers = self._carriers.setdefault(alias, [])
                if len(carriers) >= _CARRIERS_MAX:
                    carriers.pop(0)  # still in flight: forgetting one only delays the switch to the alias alone
                carriers.append(info)
            return info

    def _carried(self, alias: int) -> bool:
        """True (and remembered) once a packet that carried ``alias`` with its topic is published."""
        for info in self._carriers.get(alias, ()):
            try:
                published = info.is_published()
            except (ValueError, RuntimeError):  # a packet paho did not take: it established nothing
                continue
            if published:
                self._established.add(alias)
                del self._carriers[alias]
                return True
        return False


def _publish_properties() -> Properties:
    """An empty set of PUBLISH properties (paho's constructor is untyped)."""
    made: Properties = cast(Any, Properties)(PacketTypes.PUBLISH)
    return made


def to_paho(data: MqttV5Data) -> Properties:
    """``data`` as paho PUBLISH properties."""
    props = _publish_properties()
    if data.user_properties:
        props.UserProperty = list(data.user_properties)
    if data.content_type is not None:
        props.ContentType = data.content_type
    if data.response_topic is not None:
        props.ResponseTopic = data.response_topic
    if data.correlation_data is not None:
        props.CorrelationData = bytes(data.correlation_data)
    return props


def server_topic_alias_maximum(properties: Any) -> int:
    """The Topic Alias Maximum of a CONNACK's properties (0 when absent: the server accepts no alias)."""
    value = getattr(properties, "TopicAliasMaximum", 0) if properties is not None else 0
    return value if isinstance(value, int) else 0
