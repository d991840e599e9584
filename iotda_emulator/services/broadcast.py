"""Broadcast messages (IoTDA's BroadcastMessage, doc/protocol.md §4.3): one publish on a ``$oc/broadcast/...``
topic reaches every online device subscribed to it.

The platform publishes once on the broker; Mosquitto delivers to each subscriber (devices may subscribe to
``$oc/broadcast/#`` through the access front, the broker ACL lets them read it). ``ttl`` > 0 (minutes, a
multiple of 5, at most 1440) caches the message for devices that subscribe later: the emulator publishes it
**retained with an MQTT 5 message expiry of ttl minutes** (our choice; IoTDA does not say how it caches).
Consequences, documented in doc/protocol.md §4.3: the broker keeps one cached message per topic (a newer
ttl > 0 broadcast replaces the older one), and a device that subscribes again within the ttl (e.g. after a
reconnect) receives it again, with the RETAIN flag set. With ttl > 0 IoTDA allows at most 10 subscribed
devices per topic; the emulator counts the devices whose own SUBSCRIBE matches the topic at the time of
the call, and ``message_id`` must not repeat among the cached (unexpired) broadcasts.

Python API (``emu.service("$broadcast")``): ``broadcast(topic_full_name, payload, ttl=0, message_id=None,
app_id=None)`` and ``messages(topic=None)``. ``$broadcast`` is only the emulator's handle for this service:
IoTDA defines no device event of that name, and events sent under it are ignored.
"""
from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from typing import Any, Dict, List, Optional

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from iotda_emulator.protocol import codec, topics
from iotda_emulator.services.base import PlatformService
from iotda_emulator.topic_check import topic_error

log = logging.getLogger(__name__)

#: Devices a topic may have when ``ttl`` > 0 (BroadcastMessage API page).
MAX_TTL_SUBSCRIBERS = 10
#: Longest cache time, minutes; ttl is a multiple of 5.
MAX_TTL_MINUTES = 1440
#: Largest decoded broadcast payload, bytes (the API takes base64 of at most 128 KB).
MAX_PAYLOAD = 128 * 1024
#: Broadcast records kept for ``messages()`` (oldest dropped).
_MAX_RECORDS = 1000
_MESSAGE_ID_RE = re.compile(r"[A-Za-z0-9_\-]{1,100}")
_APP_ID_RE = re.compile(r"[A-Za-z0-9_\-]{1,36}")
DEFAULT_APP_ID = "emulator_app"


class BroadcastRefused(ValueError):
    """The broadcast breaks one of IoTDA's rules (the REST API answers HTTP 400)."""


def check_broadcast_topic(topic: Any) -> str:
    """``topic`` when it is a publishable ``$oc/broadcast/...`` topic; BroadcastRefused otherwise."""
    if not isinstance(topic, str) or not topic.startswith(topics.BROADCAST_PREFIX) \
            or not topic[len(topics.BROADCAST_PREFIX):].strip("/"):
        raise BroadcastRefused("'topic_full_name' must start with $oc/broadcast/ and name a topic after it.")
    problem = topic_error(topic)
    if problem is not None:
        raise BroadcastRefused(f"'topic_full_name' {problem}.")
    return topic


def check_ttl(ttl: Any) -> int:
    """``ttl`` (minutes) when it is 0..1440 and a multiple of 5; BroadcastRefused otherwise."""
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= MAX_TTL_MINUTES or ttl % 5:
        raise BroadcastRefused("'ttl' is a number of minutes from 0 to 1440, a multiple of 5.")
    return ttl


class BroadcastService(PlatformService):
    """Broadcasts to subscribed devices, with the optional ttl cache."""

    service_ids = ("$broadcast",)

    def __init__(self, core: Any) -> None:
        super().__init__(core)
        self._lock = threading.Lock()
        self._records: List[dict] = []

    def on_event(self, device_id: str, object_device_id: Optional[str], event: dict) -> None:
        log.info("event %r under $broadcast from %s ignored (broadcast has no device events)",
                 event.get("event_type"), device_id)

    def _subscribers(self, topic: str) -> List[str]:
        emulator = getattr(self.core, "emulator", None)
        front = getattr(emulator, "front", None)
        if front is None:
            return []
        return sorted(front.subscribers(topic))

    def broadcast(self, topic_full_name: str, payload: bytes, ttl: int = 0, message_id: Optional[str] = None,
                  app_id: Optional[str] = None) -> dict:
        """Broadcast ``payload`` on ``topic_full_name``; returns the record (``app_id``, ``topic_full_name``,
        ``message_id``, ``created_time``, ``ttl``, ``size``, ``subscribers`` at the time of sending).

        Raises :class:`BroadcastRefused` for a bad topic, ttl, message id or app id, a payload over 128 KB,
        a duplicate cached message id, or more than 10 subscribers when ``ttl`` > 0.
        """
        topic = check_broadcast_topic(topic_full_name)
        ttl = check_ttl(ttl)
        data = bytes(payload)
        if len(data) > MAX_PAYLOAD:
            raise BroadcastRefused("The message exceeds 128 KB.")
        if message_id is not None and (not isinstance(message_id, str) or not _MESSAGE_ID_RE.fullmatch(message_id)):
            raise BroadcastRefused("'message_id' is 1 to 100 letters, digits, '_' or '-'.")
        if app_id is not None and (not isinstance(app_id, str) or not _APP_ID_RE.fullmatch(app_id)):
            raise BroadcastRefused("'app_id' is 1 to 36 letters, digits, '_' or '-'.")
        mid = message_id or str(uuid.uuid4())
        subscribers = self._subscribers(topic)
        now = time.time()
        with self._lock:
            if ttl > 0:
                if len(subscribers) > MAX_TTL_SUBSCRIBERS:
                    raise BroadcastRefused(f"With ttl > 0 a topic may have at most {MAX_TTL_SUBSCRIBERS} subscribed "
                                           f"devices; {topic} has {len(subscribers)}.")
                if any(r["message_id"] == mid and r["expires"] > now for r in self._records):
                    raise BroadcastRefused(f"The message_id {mid} is already used by a cached broadcast.")
            record = {"app_id": app_id or DEFAULT_APP_ID, "topic_full_name": topic, "message_id": mid,
                      "created_time": codec.event_time(now), "ttl": ttl, "size": len(data),
                      "subscribers": subscribers, "time": now, "expires": now + 60.0 * ttl}
            if ttl > 0:
                props = Properties(PacketTypes.PUBLISH)
                props.MessageExpiryInterval = 60 * ttl
                info = self.core.publish(topic, data, qos=1, retain=True, properties=props)
            else:
                info = self.core.publish(topic, data, qos=1)
            self._records.append(record)
            del self._records[:-_MAX_RECORDS]
        if getattr(info, "rc", 0) != 0:
            log.warning("broadcast %s on %s not handed to the broker (rc %s)", mid, topic, info.rc)
        log.info("broadcast %s on %s (%d bytes, ttl %d min) to %d subscribed device(s)", mid, topic, len(data), ttl,
                 len(subscribers))
        return dict(record)

    def messages(self, topic: Optional[str] = None) -> List[dict]:
        """The broadcasts sent (oldest first), optionally of one topic."""
        with self._lock:
            return [dict(r) for r in self._records if topic is None or r["topic_full_name"] == topic]

    def describe(self) -> Any:
        """Broadcast count per topic."""
        counts: Dict[str, int] = {}
        with self._lock:
            for r in self._records:
                counts[r["topic_full_name"]] = counts.get(r["topic_full_name"], 0) + 1
        return counts
