"""A device written on paho-mqtt alone, from IoTDA's device docs (doc/protocol.md §1.2, §2), for tests that
check the emulator independently of our SDK: nothing here comes from ``iot_device_sdk_python``.

Two devices, both connecting as ``{device_id}_0_0_{YYYYMMDDHH}`` with the HMAC password:

* :class:`BareDevice` subscribes explicitly to the system downlinks it reads (valid whether or not the platform
  also subscribes devices implicitly), records every message, and answers nothing unless a test asks it to;
* :class:`RecordingDevice` (for the access-front tests) never subscribes by itself and records every message
  with its QoS, every SUBACK's and PUBACK's reason codes, so tests can check what IoTDA tells a device (and
  what it does not).
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


def _client(device_id: str, secret: str, protocol: int = mqtt.MQTTv311) -> mqtt.Client:
    """A paho client with IoTDA's client id, username and password for ``device_id`` (§1.2); not connected."""
    stamp = hour_stamp()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{device_id}_0_0_{stamp}",
                         protocol=protocol, reconnect_on_failure=False)
    client.username_pw_set(device_id, password(secret, stamp))
    return client


class BareDevice:
    """Connects as ``device_id`` with its secret; ``messages`` holds what arrives, in order."""

    def __init__(self, host: str, port: int, device_id: str, secret: str) -> None:
        self.device_id = device_id
        self.client = _client(device_id, secret)
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


class RecordingDevice:
    """Connects to an emulator as the device ``record`` (``device_id``, ``secret``); never subscribes by itself.

    ``messages``, ``subacks`` (reason codes per SUBACK), ``pubacks`` (``(mid, reason code)``) and
    ``unsubacks`` (mids) are queues in arrival order; ``c`` is the paho client.
    """

    def __init__(self, emu: Any, record: dict, protocol: int = mqtt.MQTTv311) -> None:
        self.emu = emu
        self.device_id = record["device_id"]
        self.c = _client(self.device_id, record["secret"], protocol)
        self.messages: "queue.Queue[mqtt.MQTTMessage]" = queue.Queue()
        self.subacks: "queue.Queue[List[int]]" = queue.Queue()
        self.pubacks: "queue.Queue[tuple]" = queue.Queue()
        self.unsubacks: "queue.Queue[int]" = queue.Queue()
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.c.on_connect = lambda c, u, f, rc, p: self.connected.set() if not rc.is_failure else None
        self.c.on_disconnect = lambda c, u, f, rc, p: self.disconnected.set()
        self.c.on_message = lambda c, u, m: self.messages.put(m)
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.put([rc.value for rc in rcs])
        self.c.on_publish = lambda c, u, mid, rc, p: self.pubacks.put((mid, rc.value))
        self.c.on_unsubscribe = lambda c, u, mid, rcs, p: self.unsubacks.put(mid)

    def connect(self) -> "RecordingDevice":
        """Connect (plain MQTT) and wait until the emulator has the device online."""
        self.c.connect(self.emu.host, self.emu.mqtt_port, keepalive=60)
        self.c.loop_start()
        assert self.connected.wait(10), "not connected"
        assert self.emu.wait_online(self.device_id, 10)
        return self

    def subscribe(self, *entries: Any) -> List[int]:
        """Subscribe to (filter, qos) entries and return the SUBACK's reason codes."""
        self.c.subscribe(list(entries))
        return self.subacks.get(timeout=10)

    def unsubscribe(self, *filters: str) -> None:
        """Unsubscribe and wait for the UNSUBACK."""
        _, mid = self.c.unsubscribe(list(filters))
        assert self.unsubacks.get(timeout=10) == mid

    def next_message(self, timeout: float = 10) -> mqtt.MQTTMessage:
        return self.messages.get(timeout=timeout)

    def drain(self, within: float = 0.5) -> List[mqtt.MQTTMessage]:
        """Every message that arrives within ``within`` seconds."""
        out = []
        while True:
            try:
                out.append(self.messages.get(timeout=within))
            except queue.Empty:
                return out

    def close(self) -> None:
        try:
            self.c.disconnect()
        except Exception:  # noqa: BLE001
            pass
        self.c.loop_stop()
