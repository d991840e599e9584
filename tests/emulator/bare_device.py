"""A device written on paho-mqtt alone, from IoTDA's device docs (iotda-protocol.md §1.2, §2), for tests that
check the emulator independently of our SDK: nothing here comes from ``iot_device_sdk_python``.

It subscribes explicitly to the system downlinks it reads (valid whether or not the platform also subscribes
devices implicitly), records every message, and answers nothing unless a test asks it to.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import json
import queue
import threading
import time
from typing import Any, Callable, List, Optional

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def hour_stamp() -> str:
    """The UTC ``YYYYMMDDHH`` of the client id (§1.2)."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d%H")


def password(secret: str, stamp: str) -> str:
    """Lower-case hex HMAC-SHA256 keyed by the client id's hour stamp over the secret (§1.2)."""
    return hmac.new(stamp.encode(), secret.encode(), hashlib.sha256).hexdigest()


def downlinks(device_id: str) -> List[str]:
    """The system downlink filters of §2.1 plus the device's custom ``user/`` topics."""
    base = f"$oc/devices/{device_id}"
    return [f"{base}/sys/messages/down", f"{base}/sys/commands/#", f"{base}/sys/properties/set/#",
            f"{base}/sys/properties/get/#", f"{base}/sys/shadow/get/response/#", f"{base}/sys/events/down",
            f"{base}/user/#"]


class BareDevice:
    """Connects as ``device_id`` with its secret; ``messages`` holds what arrives, in order."""

    def __init__(self, host: str, port: int, device_id: str, secret: str) -> None:
        self.device_id = device_id
        stamp = hour_stamp()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{device_id}_0_0_{stamp}",
                                  protocol=mqtt.MQTTv311, reconnect_on_failure=False)
        self.client.username_pw_set(device_id, password(secret, stamp))
        self.host, self.port = host, port
        self.messages: "queue.Queue[mqtt.MQTTMessage]" = queue.Queue()
        self._connack: "queue.Queue[Any]" = queue.Queue()
        self._subacks: "queue.Queue[int]" = queue.Queue()
        self.client.on_connect = lambda c, u, f, rc, p: self._connack.put(rc)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self._subacks.put(mid)
        self.client.on_message = lambda c, u, m: self.messages.put(m)
        self._lock = threading.Lock()

    def connect(self, extra_filters: Optional[List[str]] = None, timeout: float = 10.0) -> "BareDevice":
        """Connect, check the CONNACK and subscribe (QoS 1) to the downlinks and ``extra_filters``."""
        self.client.connect(self.host, self.port, keepalive=60)
        self.client.loop_start()
        rc = self._connack.get(timeout=timeout)
        assert not rc.is_failure, f"CONNECT refused: {rc}"
        _, mid = self.client.subscribe([(f, 1) for f in downlinks(self.device_id) + list(extra_filters or [])])
        assert self._subacks.get(timeout=timeout) == mid
        return self

    def publish(self, topic: str, payload: Any, qos: int = 1) -> None:
        """Publish a dict as JSON (bytes as they are) and wait until it left."""
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.client.publish(topic, data, qos=qos).wait_for_publish(10)

    def event_up(self, service_id: str, event_type: str, paras: dict, *, object_device_id: Optional[str] = None,
                 event_id: Optional[str] = None) -> None:
        """Publish one event on ``events/up`` (§2.10)."""
        event = {"service_id": service_id, "event_type": event_type, "paras": paras}
        if event_id:
            event["event_id"] = event_id
        body: dict = {"services": [event]}
        if object_device_id:
            body["object_device_id"] = object_device_id
        self.publish(f"$oc/devices/{self.device_id}/sys/events/up", body)

    def wait(self, predicate: Callable[[mqtt.MQTTMessage], bool], timeout: float = 10.0) -> mqtt.MQTTMessage:
        """The next received message matching ``predicate`` (others are skipped); AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching message; saw {seen}")
            try:
                msg = self.messages.get(timeout=remaining)
            except queue.Empty:
                continue
            seen.append(msg.topic)
            if predicate(msg):
                return msg

    def wait_event(self, event_type: str, timeout: float = 10.0) -> dict:
        """The next ``events/down`` body whose first service has ``event_type``."""
        topic = f"$oc/devices/{self.device_id}/sys/events/down"

        def match(m: mqtt.MQTTMessage) -> bool:
            if m.topic != topic:
                return False
            services = json.loads(m.payload).get("services") or [{}]
            return services[0].get("event_type") == event_type

        return json.loads(self.wait(match, timeout).payload)

    def close(self) -> None:
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()
