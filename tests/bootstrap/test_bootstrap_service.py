"""The emulator's provisioning (IoTDP) endpoint as a service of its own, driven by a bare paho-mqtt device.

No SDK import: the device side is written here from doc/protocol.md §1.2 and §5, so that a mistake shared by
the SDK and the emulator cannot hide. Checks: own host and port (on a host of its own it keeps IoTDA's MQTTS
port, as iot-bs and iot-mqtts both use 8883 on the cloud), the answered address follows the emulator's
configured host (never a fixed "localhost") and is covered by the server certificate, and the IoTDP REST API
for registration groups and strategies drives what devices get.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import queue
import socket
import ssl
import uuid
from typing import Optional, Tuple

import paho.mqtt.client as mqtt
import pytest
import requests
from paho.mqtt.enums import CallbackAPIVersion

from iotda_emulator import Emulator

PROJECT = "emu-project"


def _stamp() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d%H")


def _password(secret: str, stamp: str) -> str:
    return hmac.new(stamp.encode(), secret.encode(), hashlib.sha256).hexdigest()


def _loopback_alias_usable(address: str = "127.0.0.2") -> bool:
    sock = socket.socket()
    try:
        sock.bind((address, 0))
        return True
    except OSError:
        return False
    finally:
        sock.close()


class BareDevice:
    """One MQTTS connection written on paho only; TLS verifies the chain and the host name with ``ca_file``."""

    def __init__(self, host: str, port: int, ca_file: str, client_id: str, username: str,
                 password: Optional[str]) -> None:
        self.host, self.port = host, port
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
        self.client.username_pw_set(username, password)
        ctx = ssl.create_default_context(cafile=ca_file)   # check_hostname=True, CERT_REQUIRED
        self.client.tls_set_context(ctx)
        self.messages: "queue.Queue[mqtt.MQTTMessage]" = queue.Queue()
        self.connack: "queue.Queue[object]" = queue.Queue()
        self.subacks: "queue.Queue[int]" = queue.Queue()
        self.client.on_connect = lambda c, u, f, rc, p: self.connack.put(rc)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.put(mid)
        self.client.on_message = lambda c, u, msg: self.messages.put(msg)

    def connect(self) -> "BareDevice":
        self.client.connect(self.host, self.port, keepalive=60)
        self.client.loop_start()
        rc = self.connack.get(timeout=15)
        assert not rc.is_failure, f"CONNACK {rc}"
        return self

    def close(self) -> None:
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()


def provision(bs, ca_file: str, device_id: str, client_id: str, password: Optional[str],
              payload: bytes = b"") -> dict:
    """The IoTDP flow of §5: subscribe bootstrap/down, publish bootstrap/up, read the answer."""
    dev = BareDevice(bs.host, bs.port, ca_file, client_id, device_id, password).connect()
    try:
        down = f"$oc/devices/{device_id}/sys/bootstrap/down"
        _, mid = dev.client.subscribe(down, qos=0)
        assert dev.subacks.get(timeout=10) == mid
        dev.client.publish(f"$oc/devices/{device_id}/sys/bootstrap/up", payload, qos=1).wait_for_publish(10)
        msg = dev.messages.get(timeout=10)
        assert msg.topic == down
        return json.loads(msg.payload)
    finally:
        dev.close()


def split_address(address: str) -> Tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def connect_iotda(emu, answer: dict, device_id: str, secret: str) -> None:
    """Connect to the answered IoTDA address with certificate + host-name verification; wait until online."""
    host, port = split_address(answer["address"])
    stamp = _stamp()
    dev = BareDevice(host, port, emu.ca_file, f"{device_id}_0_0_{stamp}", device_id, _password(secret, stamp))
    dev.connect()
    try:
        assert emu.wait_online(device_id, timeout=10)
    finally:
        dev.close()


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


# ---- own host, same port ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def split_emu():
    """IoTDA on 127.0.0.1, IoTDP on 127.0.0.2 (the cloud's layout: two host names, one port)."""
    if not _loopback_alias_usable():
        pytest.skip("127.0.0.2 cannot be bound on this system (Linux routes all of 127/8 to lo; macOS does not)")
    emu = Emulator(host="127.0.0.1", bootstrap_host="127.0.0.2", command_timeout=5).start()
    try:
        yield emu
    finally:
        emu.stop()


def test_bootstrap_host_of_its_own_keeps_the_mqtts_port(split_emu):
    bs = split_emu.service("$bootstrap")
    assert (bs.host, bs.port) == ("127.0.0.2", split_emu.mqtts_port)
    # two listeners, two addresses: the IoTDA front does not answer on 127.0.0.2 and vice versa
    with socket.create_connection(("127.0.0.2", bs.port), timeout=5):
        pass
    assert split_emu.mqtt_port != bs.port


def test_standard_secret_device_provisions_and_connects(split_emu):
    bs = split_emu.service("$bootstrap")
    device_id = new_id("bsdev")
    keyword = new_id("kw")
    bs.add_policy(keyword, keyword_source="payload", init_config={"interval": 7})
    dev = bs.add_bootstrap_device(device_id)
    stamp = _stamp()
    answer = provision(bs, split_emu.ca_file, device_id, f"{device_id}_0_0_{stamp}",
                       _password(dev["secret"], stamp), json.dumps({"baseStrategyKeyword": keyword}).encode())
    assert answer["address"] == f"127.0.0.1:{split_emu.mqtts_port}"
    assert json.loads(answer["initConfig"]) == {"interval": 7}
    assert "deviceSecret" not in answer
    connect_iotda(split_emu, answer, device_id, dev["secret"])


def test_group_secret_device_self_registers_with_issued_secret(split_emu):
    bs = split_emu.service("$bootstrap")
    group = bs.add_registration_group(new_id("scope").replace("_", "-"))
    device_id = new_id("grp")
    derived = hmac.new(device_id.encode(), base64.b64decode(group["secret"]), hashlib.sha256).hexdigest()
    stamp = _stamp()
    answer = provision(bs, split_emu.ca_file, device_id, f"{device_id}_0_{group['scope_id']}_0_{stamp}",
                       _password(derived, stamp))
    issued = answer["deviceSecret"]
    assert issued != derived and split_emu.get_device(device_id)["secret"] == issued
    connect_iotda(split_emu, answer, device_id, issued)


def test_wrong_group_secret_is_refused(split_emu):
    bs = split_emu.service("$bootstrap")
    group = bs.add_registration_group(new_id("scope").replace("_", "-"))
    device_id = new_id("bad")
    stamp = _stamp()
    dev = BareDevice(bs.host, bs.port, split_emu.ca_file, f"{device_id}_0_{group['scope_id']}_0_{stamp}",
                     device_id, _password("not-the-derived-secret", stamp))
    dev.client.connect(bs.host, bs.port, keepalive=60)
    dev.client.loop_start()
    try:
        rc = dev.connack.get(timeout=15)
        assert rc.is_failure and str(rc) == "Bad user name or password"   # CONNACK 4
    finally:
        dev.close()


# ---- the answered address follows the configured host ---------------------------------------------------

def test_answer_follows_the_advertised_host_and_the_certificate_covers_it(tmp_path):
    name = socket.gethostname()
    try:
        socket.getaddrinfo(name, None)
    except socket.gaierror:
        pytest.skip(f"this machine's host name {name!r} does not resolve")
    emu = Emulator(data_dir=str(tmp_path / "data"), host="0.0.0.0", http=False).start()
    try:
        bs = emu.service("$bootstrap")
        assert emu.advertise_host == name and bs.host == name
        dev = bs.add_bootstrap_device(new_id("adv"), require_policy=False)
        stamp = _stamp()
        answer = provision(bs, emu.ca_file, dev["device_id"], f"{dev['device_id']}_0_0_{stamp}",
                           _password(dev["secret"], stamp))
        assert answer["address"] == f"{name}:{emu.mqtts_port}" and "localhost" not in answer["address"]
        connect_iotda(emu, answer, dev["device_id"], dev["secret"])   # TLS host-name check on `name`
    finally:
        emu.stop()


# ---- IoTDP REST API: registration groups and strategies ------------------------------------------------

def _api(emu, method: str, path: str, body=None) -> requests.Response:
    return requests.request(method, f"{emu.http_url}/v5/iotps/{PROJECT}{path}", json=body, timeout=10)


def test_rest_registration_group_and_strategy_drive_provisioning(split_emu):
    bs = split_emu.service("$bootstrap")
    name = new_id("lamps").replace("_", "")
    created = _api(split_emu, "POST", "/registration-groups",
                   {"registration_group_name": name, "auth_type": "SECRET", "require_policy": True,
                    "init_config": json.dumps({"from": "group"})})
    assert created.status_code == 201, created.text
    group = created.json()
    group_id, group_secret = group["registration_group_id"], group["secret"]
    assert group["registration_group_name"] == name and group["auth_type"] == "SECRET"
    base64.b64decode(group_secret, validate=True)

    listed = _api(split_emu, "GET", "/registration-groups?limit=50").json()
    mine = [g for g in listed["registration_groups"] if g["registration_group_id"] == group_id]
    assert mine and "secret" not in mine[0]
    assert _api(split_emu, "GET", f"/registration-groups/{group_id}").json()["secret"] == group_secret

    device_id = new_id("rest")
    derived = hmac.new(device_id.encode(), base64.b64decode(group_secret), hashlib.sha256).hexdigest()
    stamp = _stamp()
    client_id = f"{device_id}_0_{group_id}_0_{stamp}"
    # the group requires a strategy and none matches yet: IoTDP's 100414
    refused = provision(bs, split_emu.ca_file, device_id, client_id, _password(derived, stamp))
    assert refused["errorCode"] == "100414" and "address" not in refused

    # a static strategy on the device name IoTDP gives group devices: "{group name}{device id}"
    low = _api(split_emu, "POST", "/strategies", {"strategy_type": "base", "strategy_name": "low",
                                                  "base_strategy_info": {"keyword": name, "priority": 1}})
    high = _api(split_emu, "POST", "/strategies", {"strategy_type": "base", "strategy_name": "high",
                                                   "base_strategy_info": {"keyword": device_id, "priority": 4},
                                                   "product_id": "rest_product"})
    assert low.status_code == high.status_code == 201, (low.text, high.text)
    strategy = high.json()
    assert strategy["strategy_type"] == "base" and strategy["base_strategy_info"]["priority"] == 4
    assert _api(split_emu, "GET", f"/strategies/{strategy['strategy_id']}").json() == strategy

    answer = provision(bs, split_emu.ca_file, device_id, client_id, _password(derived, stamp))
    assert answer["address"] == f"{split_emu.advertise_host}:{split_emu.mqtts_port}"
    assert json.loads(answer["initConfig"]) == {"from": "group"}      # the group's own configuration
    assert split_emu.get_device(device_id)["product_id"] == "rest_product"   # priority 4 beat priority 1
    devices = _api(split_emu, "GET", f"/registration-groups/{group_id}/devices").json()["devices"]
    assert [d["device_id"] for d in devices] == [device_id]
    connect_iotda(split_emu, answer, device_id, answer["deviceSecret"])

    for strategy_id in (low.json()["strategy_id"], strategy["strategy_id"]):
        assert _api(split_emu, "DELETE", f"/strategies/{strategy_id}").status_code == 204
    assert _api(split_emu, "GET", f"/strategies/{strategy['strategy_id']}").status_code == 404
    assert _api(split_emu, "DELETE", f"/registration-groups/{group_id}").status_code == 204
    gone = _api(split_emu, "GET", f"/registration-groups/{group_id}")
    assert gone.status_code == 400 and gone.json()["error_code"] == "IoTDP.104802"


def test_rest_rejects_bad_input_and_duplicates(split_emu):
    assert _api(split_emu, "POST", "/registration-groups", {"auth_type": "SECRET"}).status_code == 400
    bad_cfg = _api(split_emu, "POST", "/registration-groups",
                   {"registration_group_name": "g", "init_config": "{not json"})
    assert bad_cfg.status_code == 400 and bad_cfg.json()["error_code"] == "IoTDP.000006"
    scope = new_id("dup").replace("_", "-")
    body = {"registration_group_name": "dup", "registration_group_id": scope}
    assert _api(split_emu, "POST", "/registration-groups", body).status_code == 201
    again = _api(split_emu, "POST", "/registration-groups", body)
    assert again.status_code == 400 and again.json()["error_code"] == "IoTDP.104801"
    for info in ({"keyword": "k", "priority": 5}, {"keyword": "", "priority": 0}, {"priority": 1}):
        r = _api(split_emu, "POST", "/strategies", {"strategy_type": "base", "base_strategy_info": info})
        assert r.status_code == 400, info
    assert _api(split_emu, "POST", "/strategies", {"strategy_type": "functions"}).status_code == 400
