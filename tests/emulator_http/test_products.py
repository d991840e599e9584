"""The IoTDA product API through the official application SDK (its response models must parse what the emulator
answers), raw HTTP for bad input, AddDevice's product check and the emulator-only custom-topic path."""
from __future__ import annotations

import re
import uuid

import pytest
import requests
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkiotda.v5 import (AddDevice, AddDeviceRequest, AddProduct, CreateProductRequest,
                                    DeleteDeviceRequest, DeleteProductRequest, ListProductsRequest, ServiceCapability,
                                    ServiceCommand, ServiceCommandPara, ServiceCommandResponse, ServiceEvent,
                                    ServiceProperty, ShowProductRequest, UpdateProduct, UpdateProductRequest)

IOTDA_TIME = re.compile(r"\d{8}T\d{6}Z")


def _pid(prefix: str = "prod") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def _thermostat() -> list:
    return [ServiceCapability(
        service_id="Thermostat", service_type="Thermostat", option="Mandatory", description="a thermostat",
        properties=[
            ServiceProperty(property_name="temperature", data_type="decimal", required=True, min="-40", max="85",
                            step=0.1, unit="Cel", method="R"),
            ServiceProperty(property_name="target", data_type="int", min="5", max="30", method="RW"),
            ServiceProperty(property_name="mode", data_type="enum", enum_list=["eco", "comfort"], method="RWE"),
            ServiceProperty(property_name="label", data_type="string", max_length=32, method="W"),
        ],
        commands=[ServiceCommand(
            command_name="set_mode",
            paras=[ServiceCommandPara(para_name="mode", data_type="enum", required=True, enum_list=["eco", "comfort"])],
            responses=[ServiceCommandResponse(response_name="set_mode_rsp",
                                              paras=[ServiceCommandPara(para_name="result", data_type="int")])])],
        events=[ServiceEvent(event_type="overheat",
                             paras=[ServiceCommandPara(para_name="celsius", data_type="decimal")])],
    )]


def test_create_show_update_delete_product(emulator, app_client):
    product_id = _pid()
    created = app_client.create_product(CreateProductRequest(body=AddProduct(
        product_id=product_id, name="Thermostat v1", device_type="Thermostat", protocol_type="MQTT",
        data_format="json", manufacturer_name="acme", industry="home", description="demo",
        service_capabilities=_thermostat())))
    assert created.product_id == product_id and created.name == "Thermostat v1"
    assert (created.device_type, created.protocol_type, created.data_format) == ("Thermostat", "MQTT", "json")
    assert (created.manufacturer_name, created.industry, created.description) == ("acme", "home", "demo")
    assert IOTDA_TIME.fullmatch(created.create_time), created.create_time
    [svc] = created.service_capabilities
    assert isinstance(svc, ServiceCapability)
    assert (svc.service_id, svc.service_type, svc.option, svc.description) == \
        ("Thermostat", "Thermostat", "Mandatory", "a thermostat")
    props = {p.property_name: p for p in svc.properties}
    assert props["temperature"].method == "R" and props["temperature"].required is True
    assert (props["temperature"].min, props["temperature"].max, props["temperature"].step) == ("-40", "85", 0.1)
    assert props["mode"].enum_list == ["eco", "comfort"] and props["mode"].method == "RWE"
    assert props["label"].max_length == 32 and props["target"].required is False
    [cmd] = svc.commands
    assert cmd.command_name == "set_mode" and cmd.paras[0].para_name == "mode" and cmd.paras[0].required is True
    assert cmd.responses[0].response_name == "set_mode_rsp" and cmd.responses[0].paras[0].para_name == "result"
    assert svc.events[0].event_type == "overheat" and svc.events[0].paras[0].data_type == "decimal"

    shown = app_client.show_product(ShowProductRequest(product_id=product_id))
    assert shown.to_json_object() == created.to_json_object()
    assert emulator.get_product(product_id)["service_capabilities"][0]["properties"][1]["property_name"] == "target"

    updated = app_client.update_product(UpdateProductRequest(product_id=product_id, body=UpdateProduct(
        name="Thermostat v2", description="second", service_capabilities=[ServiceCapability(
            service_id="Switch", service_type="Switch",
            properties=[ServiceProperty(property_name="on", data_type="boolean", method="RW")])])))
    assert updated.name == "Thermostat v2" and updated.description == "second"
    assert updated.manufacturer_name == "acme"                       # fields not given are kept
    assert [s.service_id for s in updated.service_capabilities] == ["Switch"]   # the list is replaced
    assert updated.create_time == created.create_time

    app_client.delete_product(DeleteProductRequest(product_id=product_id))
    assert emulator.get_product(product_id) is None
    for call in (lambda: app_client.show_product(ShowProductRequest(product_id=product_id)),
                 lambda: app_client.delete_product(DeleteProductRequest(product_id=product_id)),
                 lambda: app_client.update_product(UpdateProductRequest(product_id=product_id,
                                                                        body=UpdateProduct(name="x")))):
        with pytest.raises(ClientRequestException) as info:
            call()
        assert info.value.status_code == 404 and info.value.error_code == "IOTDA.013000"


def test_generated_product_id_and_duplicate_is_409(emulator, app_client):
    body = AddProduct(name="no id", device_type="Meter", protocol_type="MQTT", service_capabilities=[])
    created = app_client.create_product(CreateProductRequest(body=body))
    assert re.fullmatch(r"[0-9a-f]{24}", created.product_id)
    assert created.data_format == "json" and created.service_capabilities == []
    body.product_id = created.product_id
    with pytest.raises(ClientRequestException) as info:
        app_client.create_product(CreateProductRequest(body=body))
    assert info.value.status_code == 409 and info.value.error_code == "IOTDA.013001"
    emulator.delete_product(created.product_id)


def test_list_products_newest_first_with_marker_and_count(emulator, app_client):
    name = _pid("list")
    ids = [app_client.create_product(CreateProductRequest(body=AddProduct(
        name=name, device_type="t", protocol_type="MQTT", service_capabilities=[]))).product_id for _ in range(3)]
    first = app_client.list_products(ListProductsRequest(product_name=name, limit=2))
    assert [p.product_id for p in first.products] == [ids[2], ids[1]]     # newest first
    assert first.page.count == 3 and re.fullmatch(r"[0-9a-f]{24}", first.page.marker)
    assert first.products[0].name == name and IOTDA_TIME.fullmatch(first.products[0].create_time)
    rest = app_client.list_products(ListProductsRequest(product_name=name, limit=2, marker=first.page.marker))
    assert [p.product_id for p in rest.products] == [ids[0]] and rest.page.count == 3
    from_top = app_client.list_products(ListProductsRequest(product_name=name, marker="f" * 24))   # IoTDA's default
    assert [p.product_id for p in from_top.products] == ids[::-1]
    skipped = app_client.list_products(ListProductsRequest(product_name=name, limit=50, offset=1))
    assert [p.product_id for p in skipped.products] == [ids[1], ids[0]]
    everything = app_client.list_products(ListProductsRequest(limit=50))
    assert set(ids) <= {p.product_id for p in everything.products}
    for product_id in ids:
        emulator.delete_product(product_id)


def test_add_device_refuses_unknown_product(emulator, app_client):
    missing = _pid("missing")
    with pytest.raises(ClientRequestException) as info:
        app_client.add_device(AddDeviceRequest(body=AddDevice(node_id="n1", product_id=missing)))
    assert info.value.status_code == 404 and info.value.error_code == "IOTDA.013000"
    assert emulator.get_device(f"{missing}_n1") is None
    assert emulator.get_product(missing) is None                    # REST never creates a product on the side

    product_id = emulator.create_product(_pid(), "real")["product_id"]
    added = app_client.add_device(AddDeviceRequest(body=AddDevice(node_id="n1", product_id=product_id)))
    assert added.product_id == product_id and emulator.get_device(added.device_id)
    app_client.delete_device(DeleteDeviceRequest(device_id=added.device_id))
    emulator.delete_product(product_id)


def test_python_create_device_makes_a_missing_product(emulator):
    product_id = _pid("auto")
    record = emulator.create_device(product_id=product_id)
    product = emulator.get_product(product_id)
    assert product is not None and product["service_capabilities"] == [] and product["topics"] == []
    default = emulator.create_device()
    assert emulator.get_product(default["product_id"]) is not None
    for rec in (record, default):
        emulator.delete_device(rec["device_id"])
    emulator.delete_product(product_id)


@pytest.mark.parametrize("body, mentions", [
    ({"device_type": "t", "protocol_type": "MQTT", "service_capabilities": []}, "name"),
    ({"name": "n", "device_type": "t", "protocol_type": "Zigbee", "service_capabilities": []}, "protocol_type"),
    ({"name": "n", "device_type": "t", "protocol_type": "MQTT"}, "service_capabilities"),
    ({"name": "n", "device_type": "t", "protocol_type": "MQTT", "data_format": "xml", "service_capabilities": []},
     "data_format"),
    ({"name": "n", "device_type": "t", "protocol_type": "MQTT", "product_id": "bad id!",
      "service_capabilities": []}, "product_id"),
    ({"name": "n", "device_type": "t", "protocol_type": "MQTT", "service_capabilities": {"service_id": "s"}},
     "service_capabilities"),
    ({"name": "n", "device_type": "t", "protocol_type": "MQTT", "service_capabilities": [
        {"service_id": "s", "service_type": "s", "properties": [{"property_name": "p", "data_type": "int",
                                                                  "method": "RX"}]}]}, "method"),
    ({"name": "n", "device_type": "t", "protocol_type": "MQTT", "service_capabilities": [
        {"service_id": "s", "service_type": "s", "properties": [{"property_name": "p", "data_type": "float",
                                                                  "method": "R"}]}]}, "data_type"),
    ({"name": "n", "device_type": "t", "protocol_type": "MQTT", "service_capabilities": [
        {"service_id": "s", "service_type": "s"}, {"service_id": "s", "service_type": "s"}]}, "repeats"),
    ({"name": "n", "device_type": "t", "protocol_type": "MQTT", "service_capabilities": [
        {"service_id": "s", "service_type": "s", "commands": [{"paras": []}]}]}, "command_name"),
])
def test_create_product_bad_input_is_400(base_url, emulator, body, mentions):
    resp = requests.post(f"{base_url}/v5/iot/p/products", json=body, timeout=10)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error_code"] == "IOTDA.000006" and mentions in resp.json()["error_msg"]


@pytest.mark.parametrize("query", ["limit=0", "limit=51", "offset=501", "marker=xyz", "marker=" + "f" * 23])
def test_list_products_bad_query_is_400(base_url, query):
    resp = requests.get(f"{base_url}/v5/iot/p/products?{query}", timeout=10)
    assert resp.status_code == 400 and resp.json()["error_code"] == "IOTDA.000006", resp.text


def test_update_product_bad_input_is_400_and_changes_nothing(base_url, emulator):
    product_id = emulator.create_product(_pid(), "keep", protocol_type="CoAP")["product_id"]
    for body in ({"protocol_type": "LoRa"}, {"name": ""}, {"service_capabilities": [{"service_id": "s"}]}):
        resp = requests.put(f"{base_url}/v5/iot/p/products/{product_id}", json=body, timeout=10)
        assert resp.status_code == 400 and resp.json()["error_code"] == "IOTDA.000006", resp.text
    kept = emulator.get_product(product_id)
    assert (kept["name"], kept["protocol_type"], kept["service_capabilities"]) == ("keep", "CoAP", [])
    emulator.delete_product(product_id)


def test_custom_topics_over_the_emulator_path(base_url, emulator):
    product_id = emulator.create_product(_pid(), "topics")["product_id"]
    url = f"{base_url}/emulator/products/{product_id}/topics"
    topics = [{"name": "telemetry/up", "permission": "publish"}, {"name": "config", "permission": "both"}]
    resp = requests.put(url, json={"topics": topics}, timeout=10)
    assert resp.status_code == 200, resp.text
    assert [(t["name"], t["permission"]) for t in resp.json()["topics"]] == \
        [("telemetry/up", "publish"), ("config", "both")]
    assert [t["name"] for t in requests.get(url, timeout=10).json()["topics"]] == ["telemetry/up", "config"]
    assert [t["name"] for t in emulator.get_product(product_id)["topics"]] == ["telemetry/up", "config"]
    for bad in ([{"name": "a+b", "permission": "publish"}], [{"name": "x" * 65, "permission": "publish"}],
                [{"name": "a//b", "permission": "publish"}], [{"name": "ok", "permission": "read"}],
                [{"name": "d", "permission": "publish"}] * 2,
                [{"name": f"t{i}", "permission": "publish"} for i in range(51)], "not a list"):
        resp = requests.put(url, json={"topics": bad}, timeout=10)
        assert resp.status_code == 400 and resp.json()["error_code"] == "IOTDA.000006", (bad, resp.text)
    assert len(emulator.get_product(product_id)["topics"]) == 2          # a refused PUT changes nothing
    missing = requests.put(f"{base_url}/emulator/products/{_pid()}/topics", json={"topics": []}, timeout=10)
    assert missing.status_code == 404 and missing.json()["error_code"] == "IOTDA.013000"
    emulator.delete_product(product_id)


def test_custom_topics_enforced_on_a_connected_device(emulator, raw_device):
    """End to end through the access front: a defined publish topic reaches the platform, an undefined one closes
    the connection (MQTT 3.1.1) and is traced with the product's reason."""
    product_id = emulator.create_product(_pid("mqtt"), "mqtt topics",
                                         topics=[{"name": "up", "permission": "publish"}])["product_id"]
    record = emulator.create_device(product_id=product_id)
    device_id = record["device_id"]
    dev = raw_device(record)
    mark = emulator.core.last_trace_id
    dev.publish(f"$oc/devices/{device_id}/user/up", b"allowed")
    emulator.wait_for_trace(lambda e: e.topic.endswith("/user/up") and e.payload == b"allowed", 10, mark)
    dev.client.publish(f"$oc/devices/{device_id}/user/undefined", b"refused", qos=1)
    assert emulator.wait_offline(device_id, timeout=10)
    refused = emulator.wait_for_trace(lambda e: e.kind == "violation" and e.topic.endswith("/user/undefined"), 10, mark)
    assert "not defined in product" in refused.payload.decode()
    assert not [e for e in emulator.trace(device_id, direction="up", since_id=mark) if e.payload == b"refused"]
    emulator.delete_device(device_id)
    emulator.delete_product(product_id)
