"""Raw paho-mqtt 2.x devices for the emulator's own tests (no SDK involved)."""
from __future__ import annotations

import json
import queue
import ssl
import threading
from typing import List, Optional

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from iot_device_sdk_python.protocol import codec, topics
from iotda_emulator.access_front import hmac_password
from tests.waiting import wait_until  # noqa: F401 (re-exported to the tests of this folder)


class RawDevice:
    """A paho client that connects like an IoTDA device and records what it receives."""

    def __init__(self, emu, device_id: str, secret: Optional[str] = None, *, sign_type: int = 0,
                 timestamp: Optional[str] = None, keepalive: int = 60, client_id: Optional[str] = None,
                 username: Optional[str] = None, password: Optional[str] = None, tls: bool = False,
                 certfile: Optional[str] = None, keyfile: Optional[str] = None,
                 key_password: Optional[str] = None, host: Optional[str] = None,
                 protocol=mqtt.MQTTv311) -> None:
        self.emu = emu
        self.device_id = device_id
        ts = timestamp or codec.utc_hour_stamp()
        self.client_id = client_id or f"{device_id}_0_{sign_type}_{ts}"
        self.keepalive = keepalive
        self.tls = tls
        self.host = host or ("localhost" if tls else emu.host)
        self.port = emu.mqtts_port if tls else emu.mqtt_port
        self.messages: "queue.Queue[mqtt.MQTTMessage]" = queue.Queue()
        self.connack: "queue.Queue" = queue.Queue()
        self.disconnected = threading.Event()
        self.subscribed: "queue.Queue" = queue.Queue()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=protocol,
                             reconnect_on_failure=False)
        user = device_id if username is None else username
        if password is None and secret is not None:
            password = hmac_password(secret, self.client_id.rsplit("_", 1)[1])
        self.c.username_pw_set(user, password)
        if tls:
            ctx = ssl.create_default_context(cafile=emu.ca_file)
            if certfile:
                ctx.load_cert_chain(certfile, keyfile, password=key_password)
            self.c.tls_set_context(ctx)
        self.c.on_connect = lambda c, u, f, rc, p: self.connack.put(rc)
        self.c.on_disconnect = lambda c, u, f, rc, p: self.disconnected.set()
        self.c.on_message = lambda c, u, m: self.messages.put(m)
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self.subscribed.put(mid)

    def connect(self, timeout: float = 10):
        """Connect and return the CONNACK reason code (a paho ReasonCode; 0/"Success" when accepted)."""
        self.c.connect(self.host, self.port, keepalive=self.keepalive)
        self.c.loop_start()
        try:
            rc = self.connack.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no CONNACK") from None
        if rc.is_failure:
            self.close()
        return rc

    def subscribe(self, filters: Optional[List[str]] = None, timeout: float = 10) -> None:
        """Subscribe (default: every system downlink) and wait for the SUBACK."""
        filters = filters or topics.device_downlink_subscriptions(self.device_id)
        _, mid = self.c.subscribe([(f, 1) for f in filters])
        got = self.subscribed.get(timeout=timeout)
        assert got == mid

    def publish(self, topic: str, payload, qos: int = 1, timeout: float = 10) -> None:
        if isinstance(payload, (dict, list)):
            payload = codec.dumps_bytes(payload)
        info = self.c.publish(topic, payload, qos=qos)
        info.wait_for_publish(timeout)

    def next_message(self, timeout: float = 10) -> mqtt.MQTTMessage:
        return self.messages.get(timeout=timeout)

    def no_message(self, within: float) -> bool:
        try:
            self.messages.get(timeout=within)
            return False
        except queue.Empty:
            return True

    def close(self) -> None:
        try:
            self.c.disconnect()
        except Exception:  # noqa: BLE001
            pass
        self.c.loop_stop()


class Responder:
    """Answers commands / property set / property get from a RawDevice on a thread."""

    def __init__(self, dev, answer_commands=True):
        self.dev = dev
        self.answer_commands = answer_commands
        self.received = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        did = self.dev.device_id
        while not self._stop.is_set():
            try:
                m = self.dev.next_message(0.2)
            except queue.Empty:
                continue
            self.received.append(m)
            info = topics.classify(m.topic)
            body = json.loads(m.payload) if m.payload[:1] == b"{" else None
            if info.kind == topics.COMMAND and self.answer_commands:
                self.dev.publish(topics.command_response(did, info.request_id),
                                 {"result_code": 0, "response_name": "ok", "paras": {"echo": body["paras"]}})
            elif info.kind == topics.PROPERTIES_SET:
                self.dev.publish(topics.properties_set_response(did, info.request_id),
                                 {"result_code": 0, "result_desc": "done"})
            elif info.kind == topics.PROPERTIES_GET:
                self.dev.publish(topics.properties_get_response(did, info.request_id),
                                 {"services": [{"service_id": body.get("service_id", "all"),
                                                "properties": {"temp": 21}}]})

    def stop(self):
        self._stop.set()
        self._t.join(2)


def online_device(emu, record=None, *, subscribe=True, **kwargs) -> RawDevice:
    """Register (when needed), connect and subscribe a RawDevice; waits until the emulator sees it online."""
    record = record or emu.create_device()
    dev = RawDevice(emu, record["device_id"], record["secret"], **kwargs)
    rc = dev.connect()
    assert not rc.is_failure, rc
    if subscribe:
        dev.subscribe()
    assert emu.wait_online(record["device_id"], 10)
    return dev
