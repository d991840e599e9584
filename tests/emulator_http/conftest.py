"""Helpers for the HTTP-side tests: a raw paho-mqtt device and an official-SDK application client."""
from __future__ import annotations

import hashlib
import hmac
import queue
import threading
import time
from typing import Callable, Dict, List, Optional

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from iot_device_sdk_python.protocol import codec, topics
from tests.waiting import wait_until  # noqa: F401 (re-exported to the tests of this folder)


def password_for(secret: str, stamp: str) -> str:
    """IoTDA secret authentication: HMAC-SHA256 keyed by the client id's hour stamp (protocol §1.2)."""
    return hmac.new(stamp.encode(), secret.encode(), hashlib.sha256).hexdigest()


class RawDevice:
    """A device written directly on paho-mqtt, independent of the SDK under construction.

    ``responders`` maps a topic kind (``topics.COMMAND``...) to ``fn(info, request_dict) -> dict | None``;
    a returned dict is published on the matching response topic. Every received message is queued.
    """

    def __init__(self, host: str, port: int, device_id: str, secret: str) -> None:
        self.device_id = device_id
        stamp = codec.utc_hour_stamp()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{device_id}_0_0_{stamp}",
                                  clean_session=True, protocol=mqtt.MQTTv311)
        self.client.username_pw_set(device_id, password_for(secret, stamp))
        self.host, self.port = host, port
        self.received: "queue.Queue[mqtt.MQTTMessage]" = queue.Queue()
        self.log: List[tuple] = []
        self.responders: Dict[str, Callable] = {}
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._connect_rc = None
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def _on_connect(self, client, userdata, flags, rc, properties) -> None:
        self._connect_rc = rc
        if not rc.is_failure:
            subs = topics.device_downlink_subscriptions(self.device_id) + [topics.user_topic(self.device_id, "#")]
            client.subscribe([(t, 1) for t in subs])
        self._connected.set()

    def _on_subscribe(self, client, userdata, mid, rc_list, properties) -> None:
        self._subscribed.set()

    def _on_message(self, client, userdata, msg) -> None:
        self.log.append((msg.topic, msg.payload))
        self.received.put(msg)
        info = topics.classify(msg.topic)
        responder = self.responders.get(info.kind)
        if responder is None:
            return
        try:
            request = codec.loads_object(msg.payload)
        except ValueError:
            return
        answer = responder(info, request)
        if answer is None:
            return
        builders = {topics.COMMAND: topics.command_response, topics.PROPERTIES_SET: topics.properties_set_response,
                    topics.PROPERTIES_GET: topics.properties_get_response}
        client.publish(builders[info.kind](self.device_id, info.request_id), codec.dumps_bytes(answer), qos=1)

    def connect(self, timeout: float = 15.0) -> "RawDevice":
        self.client.connect(self.host, self.port, keepalive=60)
        self.client.loop_start()
        assert self._connected.wait(timeout), "no CONNACK"
        assert self._connect_rc is not None and not self._connect_rc.is_failure, f"refused: {self._connect_rc}"
        assert self._subscribed.wait(timeout), "no SUBACK"
        return self

    def publish(self, topic: str, obj, qos: int = 1) -> None:
        info = self.client.publish(topic, codec.dumps_bytes(obj) if not isinstance(obj, bytes) else obj, qos=qos)
        info.wait_for_publish(10)

    def wait_message(self, predicate: Callable[[mqtt.MQTTMessage], bool], timeout: float = 10.0) -> mqtt.MQTTMessage:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching message; got {[t for t, _ in self.log]}")
            try:
                msg = self.received.get(timeout=remaining)
            except queue.Empty:
                continue
            if predicate(msg):
                return msg

    def close(self) -> None:
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()


@pytest.fixture
def offline_device(emulator):
    """A new device record (created, never connected); deleted afterwards."""
    rec = emulator.create_device()
    yield rec
    emulator.delete_device(rec["device_id"])


@pytest.fixture
def raw_device(emulator):
    """Factory: ``raw_device(record)`` connects a paho device for an emulator device record."""
    made: List[RawDevice] = []

    def make(record: dict, wait_online: bool = True) -> RawDevice:
        dev = RawDevice(emulator.host, emulator.mqtt_port, record["device_id"], record["secret"]).connect()
        made.append(dev)
        if wait_online:
            assert emulator.wait_online(record["device_id"], timeout=10)
        return dev

    yield make
    for dev in made:
        dev.close()


def make_app_client(url: str, ak: str = "test-ak", sk: str = "test-sk", project_id: str = "emu-project",
                    ca_file: Optional[str] = None):
    """The official application SDK client pointed at the emulator (``http://`` or, with ``ca_file``, ``https://``)."""
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.http.http_config import HttpConfig
    from huaweicloudsdkiotda.v5 import IoTDAClient

    config = HttpConfig.get_default_config()
    if ca_file:
        config.ssl_ca_cert = ca_file          # verification stays on, against the emulator's CA
    return (IoTDAClient.new_builder()
            .with_credentials(BasicCredentials(ak, sk, project_id))   # project id given: no IAM lookup
            .with_endpoint(url)
            .with_http_config(config)
            .build())


@pytest.fixture
def base_url(emulator):
    """The session emulator's plain-HTTP REST address."""
    return f"http://{emulator.host}:{emulator.http_port}"


@pytest.fixture
def app_client(base_url):
    """An IoTDAClient (huaweicloudsdkiotda) talking to the session emulator over HTTP."""
    return make_app_client(base_url)
