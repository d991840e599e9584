"""The official application SDK (huaweicloudsdkiotda) against the emulator's REST API, with a raw paho device."""
from __future__ import annotations

import json
import uuid

import pytest
import requests
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkiotda.v5 import (AddDevice, AddDeviceRequest, AuthInfo, CreateCommandRequest, CreateMessageRequest,
                                    DeleteDeviceRequest, DeviceCommandRequest, InitialDesired, DeviceMessageRequest,
                                    DevicePropertiesRequest, ListDevicesRequest, ListPropertiesRequest,
                                    ShowDeviceRequest, ShowDeviceShadowRequest, UpdateDesired, UpdateDesireds,
                                    UpdateDeviceShadowDesiredDataRequest, UpdatePropertiesRequest)

from iot_device_sdk_python.protocol import codec, topics
from tests.emulator_http.conftest import make_app_client, wait_until


def _node() -> str:
    return "n" + uuid.uuid4().hex[:10]


@pytest.fixture(autouse=True)
def http_prod(emulator):
    """REST AddDevice needs an existing product (IoTDA refuses an unknown one): the one these tests use."""
    if emulator.get_product("http_prod") is None:
        emulator.create_product("http_prod", "http tests")


def test_add_show_list_delete_device(emulator, app_client):
    node = _node()
    added = app_client.add_device(AddDeviceRequest(body=AddDevice(
        node_id=node, product_id="http_prod", device_name="kitchen sensor",
        auth_info=AuthInfo(auth_type="SECRET", secret="s3cret-value"),
        shadow=[InitialDesired(service_id="Thermo", desired={"target": 21})])))
    assert added.device_id == f"http_prod_{node}"          # IoTDA's {product_id}_{node_id}
    assert added.auth_info.secret == "s3cret-value"
    assert added.status == "INACTIVE"                      # IoTDA: never connected yet
    record = emulator.get_device(added.device_id)
    assert record and record["secret"] == "s3cret-value" and record["product_id"] == "http_prod"
    assert [(s["service_id"], s["desired"]["properties"]) for s in emulator.shadow(added.device_id)] == \
        [("Thermo", {"target": 21})]

    shown = app_client.show_device(ShowDeviceRequest(device_id=added.device_id))
    assert shown.device_id == added.device_id and shown.node_id == node and shown.device_name == "kitchen sensor"

    listed = app_client.list_devices(ListDevicesRequest(product_id="http_prod", limit=50))
    assert added.device_id in [d.device_id for d in listed.devices]
    assert listed.page.count >= 1

    app_client.delete_device(DeleteDeviceRequest(device_id=added.device_id))
    assert emulator.get_device(added.device_id) is None
    with pytest.raises(ClientRequestException) as info:
        app_client.show_device(ShowDeviceRequest(device_id=added.device_id))
    assert info.value.status_code == 404 and info.value.error_code == "IOTDA.014000"


def test_add_device_with_explicit_id_then_duplicate_is_409(emulator, app_client):
    device_id = "http_dup_" + uuid.uuid4().hex[:8]
    body = AddDevice(device_id=device_id, node_id=_node(), product_id="http_prod")
    added = app_client.add_device(AddDeviceRequest(body=body))
    assert added.device_id == device_id and added.auth_info.secret        # a secret was generated
    with pytest.raises(ClientRequestException) as info:
        app_client.add_device(AddDeviceRequest(body=body))
    assert info.value.status_code == 409
    emulator.delete_device(device_id)


def test_list_devices_pages_with_limit_and_marker(emulator, app_client):
    product = "page_" + uuid.uuid4().hex[:6]
    ids = {emulator.create_device(product_id=product, node_id=_node())["device_id"] for _ in range(3)}
    first = app_client.list_devices(ListDevicesRequest(product_id=product, limit=2))
    assert len(first.devices) == 2 and first.page.count == 3
    rest = app_client.list_devices(ListDevicesRequest(product_id=product, limit=2, marker=first.page.marker))
    assert {d.device_id for d in first.devices} | {d.device_id for d in rest.devices} == ids
    for device_id in ids:
        emulator.delete_device(device_id)


def test_sync_command_answered_by_device(emulator, app_client, device_record, raw_device):
    dev = raw_device(device_record)
    seen = []

    def answer(info, request):
        seen.append((info.request_id, request))
        return {"result_code": 0, "response_name": "ack", "paras": {"echo": request["paras"]["value"]}}

    dev.responders[topics.COMMAND] = answer
    resp = app_client.create_command(CreateCommandRequest(
        device_id=device_record["device_id"],
        body=DeviceCommandRequest(service_id="Switch", command_name="ON", paras={"value": 42})))
    assert resp.error_code is None
    assert resp.response == {"result_code": 0, "response_name": "ack", "paras": {"echo": 42}}
    assert len(seen) == 1
    request_id, request = seen[0]
    assert request["service_id"] == "Switch" and request["command_name"] == "ON" and request["paras"] == {"value": 42}
    assert resp.command_id


def test_sync_command_timeout_is_iotda_014111(emulator, app_client, device_record, raw_device):
    raw_device(device_record)          # online, never answers
    resp = app_client.create_command(CreateCommandRequest(
        device_id=device_record["device_id"], body=DeviceCommandRequest(command_name="slow", paras={})))
    assert resp.error_code == "IOTDA.014111"
    assert resp.response is None


def test_command_to_offline_or_unknown_device(emulator, app_client, device_record):
    with pytest.raises(ClientRequestException) as info:
        app_client.create_command(CreateCommandRequest(
            device_id=device_record["device_id"], body=DeviceCommandRequest(paras={"a": 1})))
    assert info.value.status_code == 409 and info.value.error_code == "IOTDA.014016"
    with pytest.raises(ClientRequestException) as info:
        app_client.create_command(CreateCommandRequest(device_id="no_such_device", body=DeviceCommandRequest(paras={})))
    assert info.value.status_code == 404


def test_update_properties_answered_by_device(emulator, app_client, device_record, raw_device):
    dev = raw_device(device_record)
    got = []
    dev.responders[topics.PROPERTIES_SET] = lambda info, req: got.append(req) or {"result_code": 0,
                                                                                    "result_desc": "done"}
    resp = app_client.update_properties(UpdatePropertiesRequest(
        device_id=device_record["device_id"],
        body=DevicePropertiesRequest(services=[{"service_id": "Light", "properties": {"brightness": 7}}])))
    assert resp.error_code is None
    assert resp.response["result_code"] == 0
    assert got and got[0]["services"] == [{"service_id": "Light", "properties": {"brightness": 7}}]


def test_list_properties_answered_by_device(emulator, app_client, device_record, raw_device):
    dev = raw_device(device_record)
    asked = []

    def answer(info, req):
        asked.append(req)
        return {"services": [{"service_id": req.get("service_id"), "properties": {"temp": 21.5}}]}

    dev.responders[topics.PROPERTIES_GET] = answer
    resp = app_client.list_properties(ListPropertiesRequest(device_id=device_record["device_id"], service_id="Env"))
    assert resp.error_code is None
    services = resp.response["services"]
    assert services[0]["service_id"] == "Env" and float(services[0]["properties"]["temp"]) == 21.5
    assert asked[0].get("service_id") == "Env"


def test_create_message_reaches_device(emulator, app_client, device_record, raw_device):
    dev = raw_device(device_record)
    device_id = device_record["device_id"]
    down = topics.messages_down(device_id)

    resp = app_client.create_message(CreateMessageRequest(device_id=device_id, body=DeviceMessageRequest(
        message={"hello": "world"}, name="greeting", message_id="m-1")))
    assert resp.message_id == "m-1"
    msg = dev.wait_message(lambda m: m.topic == down)
    body = codec.loads_object(msg.payload)                       # standard format: an envelope
    assert body["content"] == {"hello": "world"} and body.get("name") == "greeting" and body.get("id") == "m-1"

    app_client.create_message(CreateMessageRequest(device_id=device_id, body=DeviceMessageRequest(
        message="raw text", payload_format="raw")))
    msg = dev.wait_message(lambda m: m.topic == down)
    assert msg.payload == b"raw text"

    app_client.create_message(CreateMessageRequest(device_id=device_id, body=DeviceMessageRequest(
        message="aGk=", encoding="base64", payload_format="raw", topic="custom/cfg")))
    msg = dev.wait_message(lambda m: m.topic == topics.user_topic(device_id, "custom/cfg"))
    assert msg.payload == b"hi"


def test_shadow_after_report_and_desired_update(emulator, app_client, device_record, raw_device):
    dev = raw_device(device_record)
    device_id = device_record["device_id"]
    dev.publish(topics.properties_report(device_id),
                {"services": [{"service_id": "Meter", "properties": {"volts": 230}}]})

    def reported():
        shadow = app_client.show_device_shadow(ShowDeviceShadowRequest(device_id=device_id)).shadow or []
        return [s for s in shadow if s.service_id == "Meter" and s.reported and s.reported.properties]

    entry = wait_until(reported)[0]
    assert entry.reported.properties == {"volts": 230}

    resp = app_client.update_device_shadow_desired_data(UpdateDeviceShadowDesiredDataRequest(
        device_id=device_id, body=UpdateDesireds(shadow=[UpdateDesired(service_id="Meter", desired={"limit": 16})])))
    meter = [s for s in resp.shadow if s.service_id == "Meter"][0]
    assert meter.desired.properties == {"limit": 16}
    assert meter.reported.properties == {"volts": 230}
    assert any(s["service_id"] == "Meter" and s["desired"]["properties"] == {"limit": 16}
               for s in emulator.shadow(device_id))


def test_signature_checked_when_keys_configured(emulator, device_record):
    url = f"http://{emulator.host}:{emulator.http_port}"
    previous = getattr(emulator, "app_keys", None)
    emulator.app_keys = {"app-ak": "app-sk"}
    try:
        good = make_app_client(url, "app-ak", "app-sk")
        shown = good.show_device(ShowDeviceRequest(device_id=device_record["device_id"]))
        assert shown.device_id == device_record["device_id"]
        for ak, sk in (("app-ak", "wrong-sk"), ("other-ak", "app-sk")):
            with pytest.raises(ClientRequestException) as info:
                make_app_client(url, ak, sk).show_device(ShowDeviceRequest(device_id=device_record["device_id"]))
            assert info.value.status_code == 401
        unsigned = requests.get(f"{url}/v5/iot/p/devices/{device_record['device_id']}", timeout=10)
        assert unsigned.status_code == 401 and unsigned.json()["error_code"] == "APIGW.0301"
    finally:
        emulator.app_keys = previous if previous is not None else {}
    # no keys: unsigned requests are accepted again
    assert requests.get(f"{url}/v5/iot/p/devices/{device_record['device_id']}", timeout=10).status_code == 200


@pytest.mark.parametrize("method,suffix,data", [
    ("post", "/devices", b"{not json"),
    ("post", "/devices", b"[1, 2]"),
    ("post", "/devices", b""),
    ("post", "/devices", json.dumps({"product_id": "p"}).encode()),            # node_id missing
    ("post", "/devices", json.dumps({"product_id": "p", "node_id": "n", "device_id": "p_n\n"}).encode()),
    ("post", "/devices/{id}/commands", json.dumps({"paras": "text"}).encode()),
    ("put", "/devices/{id}/properties", json.dumps({"services": {}}).encode()),
    ("post", "/devices/{id}/messages", json.dumps({"name": "no message"}).encode()),
    ("post", "/devices/{id}/messages", json.dumps({"message": "%%%", "encoding": "base64"}).encode()),
    ("put", "/devices/{id}/shadow", json.dumps({"shadow": [{"service_id": "s", "desired": {"a.b": 1}}]}).encode()),
    ("get", "/devices?limit=abc", None),
    ("post", "/devices/{id}/commands", b"\xff\xfe"),
])
def test_bad_requests_get_400_in_iotda_shape(emulator, device_record, method, suffix, data):
    url = f"http://{emulator.host}:{emulator.http_port}/v5/iot/proj" + suffix.format(id=device_record["device_id"])
    resp = getattr(requests, method)(url, data=data, headers={"Content-Type": "application/json"}, timeout=10)
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["error_code"].startswith("IOTDA.") and body["error_msg"]


def test_unknown_path_and_method(emulator):
    base = f"http://{emulator.host}:{emulator.http_port}"
    resp = requests.get(base + "/v5/iot/p/nothing-here", timeout=10)
    assert resp.status_code == 404 and resp.json()["error_code"] == "APIGW.0101"
    resp = requests.patch(base + "/v5/iot/p/devices", data=b"{}", timeout=10)
    assert resp.status_code == 404 and resp.json()["error_code"] == "APIGW.0101"   # one answer for both


def test_https_endpoint_with_the_emulator_ca(emulator, device_record):
    client = make_app_client(f"https://localhost:{emulator.https_port}", ca_file=emulator.ca_file)
    shown = client.show_device(ShowDeviceRequest(device_id=device_record["device_id"]))
    assert shown.device_id == device_record["device_id"]
    with pytest.raises(requests.exceptions.SSLError):        # not trusted without the emulator's CA
        requests.get(f"https://localhost:{emulator.https_port}/v5/iot/p/devices", timeout=10)


def test_console_placeholder_is_served(emulator):
    resp = requests.get(f"http://{emulator.host}:{emulator.http_port}/console", timeout=10)
    assert resp.status_code == 200 and resp.text.strip()


def test_malformed_device_response_is_an_error_not_a_hang(emulator, device_record, raw_device):
    dev = raw_device(device_record)
    device_id = device_record["device_id"]

    def garbage(msg):
        info = topics.classify(msg.topic)
        if info.kind == topics.COMMAND:
            dev.client.publish(topics.command_response(device_id, info.request_id), b"{not json", qos=1)

    dev.client.on_message = lambda client, userdata, msg: garbage(msg)
    resp = requests.post(f"http://{emulator.host}:{emulator.http_port}/v5/iot/p/devices/{device_id}/commands",
                         json={"paras": {"x": 1}}, timeout=30)
    assert resp.status_code == 500
    assert resp.json()["error_code"] == "IOTDA.000001" and "malformed" in resp.json()["error_msg"]
