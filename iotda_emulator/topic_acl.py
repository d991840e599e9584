"""Which topics a connected device may publish and subscribe to, as IoTDA decides it.

The access front asks this before it forwards a device's PUBLISH or SUBSCRIBE, so that a refused
publish is never acknowledged by the broker and then dropped without a word (Mosquitto's ACL would do
exactly that). The rules, from ``doc/protocol.md`` §2 and §4:

- ``$oc/devices/{own id}/sys/...``: a device publishes only the system *uplinks* of §2.1 (publishing
  ``messages/down`` or a command topic is refused); it may subscribe to anything under its own ``sys/``.
- ``$oc/devices/{own id}/user/{name}``: custom topics, checked against the product's definitions
  through ``custom_topic_check`` (see :mod:`iotda_emulator.products`) when one is given.
- ``$oc/broadcast/...``: subscribe only (§4.3).
- any other ``$oc/...`` topic (another device's, malformed): refused.
- topics outside ``$oc`` (and filters starting with a wildcard, matched as strings): allowed only where a
  device policy grants them (:mod:`iotda_emulator.device_policies`; DENY wins).
"""
from __future__ import annotations

from typing import Callable, Optional

from iotda_emulator.protocol import topics
from iotda_emulator.topic_check import topic_error

PUBLISH, SUBSCRIBE = "publish", "subscribe"

#: ``custom_topic_check(device_id, topic, action) -> None | reason``
CustomTopicCheck = Callable[[str, str, str], Optional[str]]
#: ``policy_check(device_id, action, topic) -> None | reason`` with action :data:`PUBLISH` or :data:`SUBSCRIBE`
PolicyCheck = Callable[[str, str, str], Optional[str]]
NO_POLICY = "no device policy grants this topic"


def filters_overlap(a: str, b: str) -> bool:
    """True when some topic name matches both MQTT filters ``a`` and ``b`` (``+``/``#`` wildcards).

    A filter starting with a wildcard matches no ``$`` topic (MQTT 3.1.1 §4.7.2), so it never overlaps
    a filter whose first level starts with ``$``.
    """
    la, lb = a.split("/"), b.split("/")
    if (la[0] in ("+", "#") and lb[0].startswith("$")) or (lb[0] in ("+", "#") and la[0].startswith("$")):
        return False
    for i in range(max(len(la), len(lb))):
        x = la[i] if i < len(la) else None
        y = lb[i] if i < len(lb) else None
        if x == "#" or y == "#":
            return True           # "a/#" also matches "a" itself
        if x is None or y is None:
            return False
        if x != y and x != "+" and y != "+":
            return False
    return True


class TopicAuthorizer:
    """IoTDA's topic rules for device publishes and subscriptions.

    ``policy_check`` decides topics outside ``$oc`` by the device policies (None: every such topic is
    refused); ``custom_topic_check`` decides ``$oc/devices/{id}/user/...`` topics (None: all allowed).
    Both checks return None when allowed, else a short reason for the log and the trace.
    """

    def __init__(self, policy_check: Optional[PolicyCheck] = None,
                 custom_topic_check: Optional[CustomTopicCheck] = None) -> None:
        self.policy_check = policy_check
        self.custom_topic_check = custom_topic_check

    def _policy(self, device_id: str, action: str, topic: str) -> Optional[str]:
        if self.policy_check is None:
            return NO_POLICY
        return self.policy_check(device_id, action, topic)

    def _custom(self, device_id: str, topic: str, action: str) -> Optional[str]:
        if self.custom_topic_check is None:
            return None
        return self.custom_topic_check(device_id, topic, action)

    def check_publish(self, device_id: str, topic: str) -> Optional[str]:
        """None when ``device_id`` may publish to ``topic``; otherwise why not."""
        problem = topic_error(topic)
        if problem is not None:
            return f"not a valid topic name: it {problem}"
        own = topics.device_root(device_id)
        if topic.startswith(own):
            # decided by the topic alone except user/: the access front remembers allowed sys/ topics per link
            info = topics.classify(topic)
            if info.kind == topics.USER:
                return self._custom(device_id, topic, PUBLISH)
            if info.kind in topics.UPLINK_KINDS and info.device_id == device_id:
                return None
            if info.kind in topics.DOWNLINK_KINDS:
                return "a device may not publish a platform downlink topic"
            return "not an IoTDA device uplink topic"
        if topic.startswith("$"):
            return "topic belongs to another device or to the platform"
        return self._policy(device_id, PUBLISH, topic)

    def check_subscribe(self, device_id: str, topic_filter: str) -> Optional[str]:
        """None when ``device_id`` may subscribe to ``topic_filter``; otherwise why not."""
        if not topic_filter or "\x00" in topic_filter or not _valid_filter(topic_filter):
            return "not a valid topic filter"
        own = topics.device_root(device_id)
        if topic_filter.startswith(own + "user/"):
            return self._custom(device_id, topic_filter, SUBSCRIBE)
        if topic_filter.startswith(own) or topic_filter + "/" == own:
            return None
        if topic_filter.startswith(topics.BROADCAST_PREFIX):
            return None
        if topic_filter.startswith("$"):
            return "topic belongs to another device or to the platform"
        # "#" or "+/x" too: they match no $ topic, and IoTDA matches the filter against the policies as a string
        return self._policy(device_id, SUBSCRIBE, topic_filter)


def _valid_filter(topic_filter: str) -> bool:
    levels = topic_filter.split("/")
    for i, lvl in enumerate(levels):
        if "#" in lvl and (lvl != "#" or i != len(levels) - 1):
            return False
        if "+" in lvl and lvl != "+":
            return False
    return True
