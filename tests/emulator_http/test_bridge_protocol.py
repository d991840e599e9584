"""The device side of IoTDA bridges (doc/protocol.md §4.6), end to end: a bare paho "bridge" (no SDK) connects
with the secret from AddBridge, logs a device in with that device's secret, reports, answers a command, logs
out; the platform side is driven with the official application SDK's models."""
from __future__ import annotations

import json
import queue
import threading
import uuid
from typing import Optional, Tuple

import paho.mqtt.client as mqtt
import pytest
from huaweicloudsdkiotda.v5 import (AddBridge, AddBridgeRequest, AddDevice, AddDeviceRequest, AuthInfo,
                                    CreateCommandRequest, CreateMessageRequest, DeleteBridgeRequest,
                                    DeviceCommandRequest, DeviceMessageRequest, FreezeDeviceRequest,
                                    ListBridgesRequest, UnfreezeDeviceRequest,
                                    ResetBridgeSecret, ResetBridgeSecretRequest, ShowDeviceRequest,
                                    ShowDeviceShadowRequest)
from paho.mqtt.enums import CallbackAPIVersion

from iotda_emulator import bridge_protocol as bp
from iotda_emulator.access_front import hmac_password
from iotda_emulator.protocol import topics as emu_topics
from tests.emulator.bare_device import hour_stamp
from tests.emulator_http.conftest import wait_until

_PRODUCT = "bridge_prod"
_BAD_CREDENTIALS = "Bad user name or password"   # paho's name for the MQTT 3.1.1 CONNACK 4


class BareBridge:
    """A bridge written on paho alone: it relies on the platform's implicit subscription (no SUBSCRIBE)."""

    def __init__(self, emulator, bridge_id: str, secret: str) -> None:
        self.bridge_id = bridge_id
        stamp = hour_stamp()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{bridge_id}_3_0_{stamp}",
                                  protocol=mqtt.MQTTv311, reconnect_on_failure=False)
        self.client.username_pw_set(bridge_id, hmac_password(secret, stamp))
        self.received: "queue.Queue[Tuple[str, bytes]]" = queue.Queue()
        self.answered, self.gone = threading.Event(), threading.Event()
        self.code: Optional[mqtt.ReasonCode] = None
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda c, u, f, rc, p: self.gone.set()
        self.client.on_message = lambda c, u, msg: self.received.put((msg.topic, bytes(msg.payload)))
        self.client.connect(emulator.host, emulator.mqtt_port, 60)
        self.client.loop_start()
        assert self.answered.wait(10)

    def _on_connect(self, client, userdata, flags, rc, properties) -> None:
        self.code = rc
        self.answered.set()

    def root(self, device_id: str) -> str:
        return f"$oc/bridges/{self.bridge_id}/devices/{device_id}/sys/"

    def publish(self, device_id: str, rest: str, payload) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.client.publish(self.root(device_id) + rest, data, qos=1).wait_for_publish(10)

    def next(self, suffix: str, timeout: float = 10) -> Tuple[str, dict]:
        """The next message whose topic ends with ``suffix`` (others are skipped)."""
        while True:
            topic, payload = self.received.get(timeout=timeout)
            if topic.endswith(suffix) or suffix in topic:
                return topic, (json.loads(payload) if payload.strip() else {})

    def session(self, device_id: str, action: str, payload) -> dict:
        rid = uuid.uuid4().hex[:8]
        self.publish(device_id, f"{action}/request_id={rid}", payload)
        topic, body = self.next(f"{action}/response/request_id={rid}")
        assert topic == self.root(device_id) + f"{action}/response/request_id={rid}"
        return body

    def login(self, device_id: str, secret: str) -> dict:
        stamp = hour_stamp()
        return self.session(device_id, "login", {"sign_type": 0, "timestamp": stamp,
                                                 "password": hmac_password(secret, stamp)})

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def setup(emulator, app_client):
    if emulator.get_product(_PRODUCT) is None:
        emulator.create_product(_PRODUCT, "bridged devices")
    made_bridges, made_devices, clients = [], [], []

    def add_device(secret: str) -> str:
        added = app_client.add_device(AddDeviceRequest(body=AddDevice(
            node_id="n" + uuid.uuid4().hex[:10], product_id=_PRODUCT,
            auth_info=AuthInfo(auth_type="SECRET", secret=secret))))
        made_devices.append(added.device_id)
        return added.device_id

    def add_bridge():
        created = app_client.add_bridge(AddBridgeRequest(body=AddBridge(bridge_name="plant " + uuid.uuid4().hex[:6])))
        made_bridges.append(created.bridge_id)
        return created

    def connect(bridge_id: str, secret: str) -> BareBridge:
        bridge = BareBridge(emulator, bridge_id, secret)
        clients.append(bridge)
        return bridge

    yield add_device, add_bridge, connect
    for c in clients:
        c.close()
    for bid in made_bridges:
        if emulator.core.bridges.get_bridge(bid):
            app_client.delete_bridge(DeleteBridgeRequest(bridge_id=bid))
    for did in made_devices:
        emulator.delete_device(did)


def _status(app_client, device_id: str) -> str:
    return app_client.show_device(ShowDeviceRequest(device_id=device_id)).status


def test_bridge_logs_a_device_in_reports_answers_a_command_and_logs_out(emulator, app_client, setup):
    add_device, add_bridge, connect = setup
    device_id = add_device("dev-secret-1")
    created = add_bridge()
    bridge = connect(created.bridge_id, created.auth_info.secret)
    assert bridge.code == 0
    listed = app_client.list_bridges(ListBridgesRequest(limit=50)).bridges
    assert next(b.status for b in listed if b.bridge_id == created.bridge_id) == "ONLINE"

    # a wrong device secret: refused with a non-zero result_code, the device stays offline
    assert bridge.login(device_id, "not-the-secret") == {"result_code": bp.REFUSED}
    assert _status(app_client, device_id) == "INACTIVE"
    # an uplink for a device not logged in is dropped
    bridge.publish(device_id, "properties/report", {"services": [{"service_id": "Meter", "properties": {"kwh": 1}}]})

    assert bridge.login(device_id, "dev-secret-1") == {"result_code": bp.OK}
    assert emulator.wait_online(device_id, timeout=10)
    assert _status(app_client, device_id) == "ONLINE"

    bridge.publish(device_id, "properties/report", {"services": [{"service_id": "Meter", "properties": {"kwh": 7.5}}]})

    def reported():
        shadow = app_client.show_device_shadow(ShowDeviceShadowRequest(device_id=device_id)).shadow or []
        return [s.reported.properties for s in shadow if s.service_id == "Meter" and s.reported]
    assert wait_until(lambda: reported() == [{"kwh": 7.5}], timeout=10), reported()

    # a platform command reaches the bridge on the bridged device's topic; the answer comes back
    result = {}
    caller = threading.Thread(target=lambda: result.update(resp=app_client.create_command(CreateCommandRequest(
        device_id=device_id, body=DeviceCommandRequest(service_id="Meter", command_name="reset",
                                                       paras={"to": 0})))))
    caller.start()
    topic, command = bridge.next("/sys/commands/request_id=")
    assert topic.startswith(bridge.root(device_id) + "commands/request_id=")
    assert command["command_name"] == "reset" and command["paras"] == {"to": 0}
    request_id = topic.rsplit("=", 1)[1]
    bridge.publish(device_id, f"commands/response/request_id={request_id}",
                   {"result_code": 0, "response_name": "reset_ok", "paras": {"was": 7.5}})
    caller.join(20)
    assert result["resp"].response == {"result_code": 0, "response_name": "reset_ok", "paras": {"was": 7.5}}

    app_client.create_message(CreateMessageRequest(device_id=device_id, body=DeviceMessageRequest(message="hello")))
    topic, _ = bridge.next("/sys/messages/down")
    assert topic == bridge.root(device_id) + "messages/down"

    assert bridge.session(device_id, "logout", b"") == {"result_code": bp.OK}
    assert emulator.core.wait_online(device_id, timeout=10, online=False)
    assert _status(app_client, device_id) == "OFFLINE"


def test_reset_secret_and_delete_end_what_a_bridge_may_do(emulator, app_client, setup):
    add_device, add_bridge, connect = setup
    device_id = add_device("dev-secret-2")
    created = add_bridge()
    bridge = connect(created.bridge_id, created.auth_info.secret)
    assert bridge.login(device_id, "dev-secret-2") == {"result_code": bp.OK}
    assert emulator.wait_online(device_id, timeout=10)

    reset = app_client.reset_bridge_secret(ResetBridgeSecretRequest(
        bridge_id=created.bridge_id, body=ResetBridgeSecret(force_disconnect=True)))
    assert bridge.gone.wait(10)                                     # the link is dropped...
    assert emulator.core.wait_online(device_id, timeout=10, online=False)   # ...and its device with it
    stale = connect(created.bridge_id, created.auth_info.secret)
    assert stale.code.getName() == _BAD_CREDENTIALS                # the old secret no longer connects

    again = connect(created.bridge_id, reset.secret)
    assert again.code == 0
    assert again.login(device_id, "dev-secret-2") == {"result_code": bp.OK}
    assert emulator.wait_online(device_id, timeout=10)

    app_client.delete_bridge(DeleteBridgeRequest(bridge_id=created.bridge_id))
    assert again.gone.wait(10)
    assert emulator.core.wait_online(device_id, timeout=10, online=False)
    assert connect(created.bridge_id, reset.secret).code.getName() == _BAD_CREDENTIALS


def test_freezing_a_bridged_device_tells_the_bridge_and_refuses_its_login(emulator, app_client, setup):
    add_device, add_bridge, connect = setup
    device_id = add_device("dev-secret-4")
    created = add_bridge()
    bridge = connect(created.bridge_id, created.auth_info.secret)
    assert bridge.login(device_id, "dev-secret-4") == {"result_code": bp.OK}
    assert emulator.wait_online(device_id, timeout=10)
    app_client.freeze_device(FreezeDeviceRequest(device_id=device_id))
    topic, _ = bridge.next("/sys/disconnect")
    assert topic == bridge.root(device_id) + "disconnect"
    assert emulator.core.wait_online(device_id, timeout=10, online=False)
    assert bridge.login(device_id, "dev-secret-4") == {"result_code": bp.REFUSED}
    app_client.unfreeze_device(UnfreezeDeviceRequest(device_id=device_id))
    assert bridge.login(device_id, "dev-secret-4") == {"result_code": bp.OK}


def test_a_device_connecting_by_itself_ends_its_bridge_session(emulator, setup, raw_device):
    add_device, add_bridge, connect = setup
    device_id = add_device("dev-secret-5")
    created = add_bridge()
    bridge = connect(created.bridge_id, created.auth_info.secret)
    assert bridge.login(device_id, "dev-secret-5") == {"result_code": bp.OK}
    raw_device({"device_id": device_id, "secret": "dev-secret-5"})
    topic, _ = bridge.next("/sys/disconnect")
    assert topic == bridge.root(device_id) + "disconnect"
    assert emulator.core.bridging.bridge_of_device(device_id) is None and emulator.is_online(device_id)
    assert bridge.login(device_id, "dev-secret-5") == {"result_code": bp.REFUSED}   # it is connected by itself


def test_a_bridge_stays_under_its_own_prefix(emulator, setup):
    add_device, add_bridge, connect = setup
    device_id = add_device("dev-secret-3")
    mine, other = add_bridge(), add_bridge()
    bridge = connect(mine.bridge_id, mine.auth_info.secret)
    # speaking for another bridge's device closes the link (as for a device on another device's topic)
    bridge.client.publish(f"$oc/bridges/{other.bridge_id}/devices/{device_id}/sys/messages/up", b"{}", qos=1)
    assert bridge.gone.wait(10)
    assert not emulator.is_online(device_id)


@pytest.mark.parametrize("topic,allowed", [
    ("$oc/bridges/b1/devices/d1/sys/login/request_id=1", True),
    ("$oc/bridges/b1/devices/d1/sys/logout/request_id=1", True),
    ("$oc/bridges/b1/devices/d1/sys/properties/report", True),
    ("$oc/bridges/b1/devices/d1/sys/commands/response/request_id=9", True),
    ("$oc/bridges/b1/devices/d1/sys/commands/request_id=9", False),        # a downlink
    ("$oc/bridges/b2/devices/d1/sys/properties/report", False),            # another bridge
    ("$oc/devices/d1/sys/properties/report", False),                       # a device topic
    ("$oc/bridges/b1/devices/d1/sys/nonsense", False),
])
def test_bridge_publish_rules(topic, allowed):
    assert (bp.check_bridge_publish("b1", topic) is None) is allowed


def test_bridge_implicit_subscriptions_cover_downlinks_not_uplinks():
    filters = bp.implicit_subscriptions(bp.identity("b1"))
    root = "$oc/bridges/b1/devices/d1/sys/"
    for down in ("commands/request_id=1", "messages/down", "properties/set/request_id=2", "login/response/request_id=3",
                 "disconnect", "events/down"):
        assert any(emu_topics.topic_matches(f, root + down) for f in filters), down
    for up in ("commands/response/request_id=1", "login/request_id=3", "properties/report"):
        assert not any(emu_topics.topic_matches(f, root + up) for f in filters), up
    assert bp.implicit_subscriptions("dev1") == emu_topics.implicit_subscriptions("dev1")   # devices: unchanged
