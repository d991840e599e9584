"""A bare paho-mqtt device for the access-front tests: IoTDA's CONNECT rules, no SDK, no subscriptions.

It records every message with its QoS, every SUBACK's reason codes and every PUBACK's reason code, so
tests can check what IoTDA tells a device (and what it does not).
"""
from __future__ import annotations

import queue
import threading
from typing import List

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from iotda_emulator.access_front import hmac_password
from tests.emulator.bare_device import hour_stamp  # noqa: F401 (re-exported to the robustness tests)


class BareDevice:
    """Connects as ``{device_id}_0_0_{YYYYMMDDHH}`` with the HMAC password; never subscribes by itself."""

    def __init__(self, emu, record: dict, protocol=mqtt.MQTTv311) -> None:
        self.emu = emu
        self.device_id = record["device_id"]
        ts = hour_stamp()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{self.device_id}_0_0_{ts}",
                             protocol=protocol, reconnect_on_failure=False)
        self.c.username_pw_set(self.device_id, hmac_password(record["secret"], ts))
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

    def connect(self) -> "BareDevice":
        self.c.connect(self.emu.host, self.emu.mqtt_port, keepalive=60)
        self.c.loop_start()
        assert self.connected.wait(10), "not connected"
        assert self.emu.wait_online(self.device_id, 10)
        return self

    def subscribe(self, *entries) -> List[int]:
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
