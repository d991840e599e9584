"""Device shadow get (doc/protocol.md §2.9): the device asks, the platform answers on the response topic."""
from __future__ import annotations

import time

from tests.conformance._device import new_id


def _report(dev, props, service_id="Sensor"):
    dev.publish(f"$oc/devices/{dev.id}/sys/properties/report",
                {"services": [{"service_id": service_id, "properties": props}]})


def _wait_reported(api, device_id, key, value, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in api.shadow(device_id):
            if (entry.get("reported") or {}).get("properties", {}).get(key) == value:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{device_id}: reported {key} != {value}")


def test_shadow_get_without_subscribe(api, make_device):
    dev = make_device()
    rsp = api.put(f"/devices/{dev.id}/shadow", {"shadow": [{"service_id": "Sensor", "desired": {"temperature": 20}}]})
    assert rsp.status_code == 200, rsp.text
    # answer the desired-value push so it does not linger
    set_prefix = f"$oc/devices/{dev.id}/sys/properties/set/request_id="
    pushed = dev.expect(set_prefix)
    dev.publish(f"$oc/devices/{dev.id}/sys/properties/set/response/request_id={pushed.topic[len(set_prefix):]}",
                {"result_code": 0})
    _report(dev, {"temperature": 18, "humidity": 50})
    _wait_reported(api, dev.id, "temperature", 18)
    request_id = new_id("shadow")
    dev.publish(f"$oc/devices/{dev.id}/sys/shadow/get/request_id={request_id}", {"service_id": "Sensor"})
    msg = dev.expect(f"$oc/devices/{dev.id}/sys/shadow/get/response/request_id={request_id}")
    assert msg.qos == 0
    body = msg.json()
    assert body["object_device_id"] == dev.id
    [entry] = body["shadow"]
    assert entry["service_id"] == "Sensor"
    assert entry["desired"]["properties"] == {"temperature": 20}
    assert entry["reported"]["properties"] == {"temperature": 18, "humidity": 50}
    assert isinstance(entry["version"], int) and entry["version"] >= 1
    # the same shadow as the application sees
    [app_view] = [s for s in api.shadow(dev.id) if s["service_id"] == "Sensor"]
    assert app_view["reported"]["properties"] == entry["reported"]["properties"]
    assert app_view["desired"]["properties"] == entry["desired"]["properties"]


def test_shadow_get_of_all_services_with_an_empty_body(api, make_device):
    dev = make_device()
    _report(dev, {"temperature": 1})
    _report(dev, {"level": 2}, service_id="Other")
    _wait_reported(api, dev.id, "temperature", 1)
    _wait_reported(api, dev.id, "level", 2)
    request_id = new_id("shadow")
    dev.publish(f"$oc/devices/{dev.id}/sys/shadow/get/request_id={request_id}", b"{}")
    body = dev.expect(f"$oc/devices/{dev.id}/sys/shadow/get/response/request_id={request_id}").json()
    assert {s["service_id"] for s in body["shadow"]} >= {"Sensor", "Other"}


def test_shadow_version_increases_when_the_shadow_changes(make_device, api):
    dev = make_device()

    def version():
        rid = new_id("v")
        dev.publish(f"$oc/devices/{dev.id}/sys/shadow/get/request_id={rid}", {"service_id": "Sensor"})
        shadow = dev.expect(f"$oc/devices/{dev.id}/sys/shadow/get/response/request_id={rid}").json()["shadow"]
        return shadow[0]["version"]

    _report(dev, {"temperature": 1})
    _wait_reported(api, dev.id, "temperature", 1)
    first = version()
    _report(dev, {"temperature": 2})
    _wait_reported(api, dev.id, "temperature", 2)
    assert version() > first


def test_gateway_reads_a_sub_devices_shadow_with_object_device_id(api, make_device):
    gw = make_device()
    child = api.add_device(gateway_id=gw.id)["device_id"]
    gw.publish(f"$oc/devices/{gw.id}/sys/gateway/sub_devices/properties/report", {"devices": [
        {"device_id": child, "services": [{"service_id": "Sensor", "properties": {"temperature": 9}}]}]})
    _wait_reported(api, child, "temperature", 9)
    request_id = new_id("shadow")
    gw.publish(f"$oc/devices/{gw.id}/sys/shadow/get/request_id={request_id}",
               {"object_device_id": child, "service_id": "Sensor"})
    body = gw.expect(f"$oc/devices/{gw.id}/sys/shadow/get/response/request_id={request_id}").json()
    assert body["object_device_id"] == child
    assert body["shadow"][0]["reported"]["properties"] == {"temperature": 9}


def test_shadow_get_of_a_device_with_no_shadow_is_empty(make_device):
    dev = make_device()
    request_id = new_id("shadow")
    dev.publish(f"$oc/devices/{dev.id}/sys/shadow/get/request_id={request_id}", {})
    body = dev.expect(f"$oc/devices/{dev.id}/sys/shadow/get/response/request_id={request_id}").json()
    assert body["object_device_id"] == dev.id
    assert body.get("shadow", []) == []
