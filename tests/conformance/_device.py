"""A bare IoTDA device for the conformance suite, written only from IoTDA's device-side documentation.

Nothing here comes from the SDK or from the emulator's own protocol code: the client id, the HMAC password,
the topics and the JSON shapes are spelled out as ``doc/protocol.md`` restates Huawei's docs, so the suite
checks the emulator against the docs and not against a shared implementation.

* :class:`Device` - a paho-mqtt 2.x client (``CallbackAPIVersion.VERSION2``) that authenticates as IoTDA
  requires, never subscribes unless told to, queues every message it receives and offers publish helpers.
* :func:`raw_connack` - one CONNECT over a plain socket, returning the CONNACK return code byte exactly
  (paho maps MQTT 3.1.1 codes to MQTT 5 reason codes; the docs talk about the 3.1.1 bytes).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import json
import socket
import ssl
import struct
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Union

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

#: Short waits keep the whole folder fast; every wait below is an upper bound, never a sleep.
WAIT = 5.0


def hour_stamp(offset_hours: int = 0) -> str:
    """UTC ``YYYYMMDDHH`` (the client id's timestamp and the HMAC key)."""
    now = _dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(hours=offset_hours)
    return now.strftime("%Y%m%d%H")


def password(secret: str, stamp: str) -> str:
    """Lowercase hex HMAC-SHA256 with key = the timestamp and message = the device secret."""
    return hmac.new(stamp.encode("utf-8"), secret.encode("utf-8"), hashlib.sha256).hexdigest()


def event_time(when: Optional[float] = None) -> str:
    """UTC ``yyyyMMdd'T'HHmmss'Z'``."""
    moment = _dt.datetime.fromtimestamp(time.time() if when is None else when, _dt.timezone.utc)
    return moment.strftime("%Y%m%dT%H%M%SZ")


def new_id(prefix: str = "id") -> str:
    """A short unique id usable as a node id, event id or request id."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


@dataclass
class Received:
    """One message the device got."""

    topic: str
    payload: bytes
    qos: int
    retain: bool

    def json(self) -> Any:
        return json.loads(self.payload.decode("utf-8"))


class Device:
    """A device that connects as IoTDA's docs say and never sends SUBSCRIBE on its own.

    ``secret`` gives the standard password; ``client_id``/``username``/``pwd`` override the computed values
    for negative tests. ``tls_ca`` connects over TLS verifying the server with that CA file.
    """

    def __init__(self, host: str, port: int, device_id: str, secret: Optional[str], *, keepalive: int = 120,
                 sign_type: int = 0, client_id: Optional[str] = None, username: Optional[str] = None,
                 pwd: Optional[str] = None, protocol: int = mqtt.MQTTv311, tls_ca: Optional[str] = None,
                 server_hostname: Optional[str] = None) -> None:
        self.id = device_id
        self.host, self.port, self.keepalive = host, port, keepalive
        stamp = hour_stamp()
        self.client_id = client_id or f"{device_id}_0_{sign_type}_{stamp}"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=protocol,
                                  **({} if protocol == mqtt.MQTTv5 else {"clean_session": True}))
        user = device_id if username is None else username
        self.client.username_pw_set(user, pwd if pwd is not None else (password(secret, stamp) if secret else None))
        if tls_ca:
            ctx = ssl.create_default_context(cafile=tls_ca)
            self.client.tls_set_context(ctx)
        self._cond = threading.Condition()
        self.messages: List[Received] = []
        self._taken: set = set()
        self.connack: Optional[int] = None
        self.disconnected = threading.Event()
        self._subacks: dict = {}
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    # ---- paho callbacks (network thread) ------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        with self._cond:
            self.connack = reason_code.value
            self._cond.notify_all()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.disconnected.set()
        with self._cond:
            self._cond.notify_all()

    def _on_message(self, client, userdata, msg) -> None:
        with self._cond:
            self.messages.append(Received(msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain)))
            self._cond.notify_all()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        with self._cond:
            self._subacks[mid] = [rc.value for rc in reason_codes]
            self._cond.notify_all()

    # ---- life cycle ---------------------------------------------------------------------------------
    def connect(self, timeout: float = WAIT) -> int:
        """Connect and return the CONNACK code as paho reports it (0 = accepted)."""
        self.client.connect(self.host, self.port, keepalive=self.keepalive)
        self.client.loop_start()
        with self._cond:
            if not self._cond.wait_for(lambda: self.connack is not None or self.disconnected.is_set(), timeout):
                raise TimeoutError(f"{self.id}: no CONNACK")
        return self.connack if self.connack is not None else -1

    def close(self) -> None:
        """Disconnect cleanly and stop paho's thread."""
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()

    def wait_disconnected(self, timeout: float = WAIT) -> bool:
        """True once the connection has ended (the platform closed it, or :meth:`close`)."""
        return self.disconnected.wait(timeout)

    # ---- uplink -------------------------------------------------------------------------------------
    def subscribe(self, topic_filter: str, qos: int = 1, timeout: float = WAIT) -> List[int]:
        """An explicit SUBSCRIBE (only tests about explicit subscriptions call this); the SUBACK codes."""
        rc, mid = self.client.subscribe(topic_filter, qos)
        assert rc == mqtt.MQTT_ERR_SUCCESS, rc
        with self._cond:
            if not self._cond.wait_for(lambda: mid in self._subacks, timeout):
                raise TimeoutError(f"{self.id}: no SUBACK for {topic_filter}")
            return self._subacks.pop(mid)

    def publish(self, topic: str, payload: Union[bytes, str, dict, list, None], qos: int = 1,
                retain: bool = False, timeout: float = WAIT) -> None:
        """Publish (dict/list payloads as JSON) and wait until written (QoS 0) or acknowledged (QoS 1)."""
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload)
        self.client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(timeout)

    # ---- downlink -----------------------------------------------------------------------------------
    def expect(self, match: Union[str, Callable[[Received], bool]], timeout: float = WAIT) -> Received:
        """The next not yet taken message whose topic starts with ``match`` (or satisfies it); waits."""
        pred = match if callable(match) else (lambda m: m.topic.startswith(match))
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i, m in enumerate(self.messages):
                    if i not in self._taken and pred(m):
                        self._taken.add(i)
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [m.topic for m in self.messages]
                    raise TimeoutError(f"{self.id}: nothing matching {match!r} within {timeout:g} s; got {seen}")
                self._cond.wait(left)

    def expect_event(self, service_id: str, event_type: str, timeout: float = WAIT) -> Received:
        """The next ``events/down`` carrying one event of ``service_id``/``event_type``."""
        topic = f"$oc/devices/{self.id}/sys/events/down"

        def pred(m: Received) -> bool:
            if m.topic != topic:
                return False
            try:
                services = m.json().get("services") or []
            except ValueError:
                return False
            return any(s.get("service_id") == service_id and s.get("event_type") == event_type for s in services)
        return self.expect(pred, timeout)

    def matching(self, match: Union[str, Callable[[Received], bool]]) -> List[Received]:
        """Every message received so far that matches (taken or not)."""
        pred = match if callable(match) else (lambda m: m.topic.startswith(match))
        with self._cond:
            return [m for m in self.messages if pred(m)]

    def event_up(self, service_id: str, event_type: str, paras: dict, *, event_id: Optional[str] = None,
                 object_device_id: Optional[str] = None) -> str:
        """Publish one event on ``events/up`` (envelope as the docs give it); returns its event_id."""
        eid = event_id or str(uuid.uuid4())
        body: dict = {"services": [{"service_id": service_id, "event_type": event_type,
                                    "event_time": event_time(), "event_id": eid, "paras": paras}]}
        if object_device_id is not None:
            body["object_device_id"] = object_device_id
        self.publish(f"$oc/devices/{self.id}/sys/events/up", body)
        return eid


def only_event(msg: Received) -> dict:
    """The single event of an ``events/down`` message (asserts there is exactly one)."""
    services = msg.json()["services"]
    assert len(services) == 1, services
    return services[0]


# ---- raw MQTT 3.1.1 CONNECT -------------------------------------------------------------------------

def _mqtt_string(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack("!H", len(data)) + data


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def raw_connack(host: str, port: int, client_id: str, username: Optional[str], pwd: Optional[str],
                keepalive: int = 120, level: int = 4, timeout: float = WAIT) -> Optional[int]:
    """Send one CONNECT (protocol ``level`` 4 = 3.1.1) and return the CONNACK return code, or None when the
    server closed the connection without a CONNACK."""
    flags = 0x02  # clean session
    payload = _mqtt_string(client_id)
    if username is not None:
        flags |= 0x80
        payload += _mqtt_string(username)
        if pwd is not None:
            flags |= 0x40
            payload += _mqtt_string(pwd)
    variable = _mqtt_string("MQTT") + bytes([level, flags]) + struct.pack("!H", keepalive)
    body = variable + payload
    packet = b"\x10" + _remaining_length(len(body)) + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(packet)
        data = b""
        try:
            while len(data) < 4:
                chunk = sock.recv(4 - len(data))
                if not chunk:
                    break
                data += chunk
        except (ConnectionError, socket.timeout):
            pass
    if len(data) < 4 or data[0] != 0x20:
        return None
    return data[3]
