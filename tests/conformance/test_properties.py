"""Properties: report, gateway batch report, set, get, desired values (doc/protocol.md §2.5-§2.8, §6.3)."""
from __future__ import annotations

import threading
import time

import pytest

from tests.conformance._device import event_time, new_id
from tests.conformance.conftest import COMMAND_TIMEOUT


def _reported(api, device_id, service_id="Sensor", timeout=5.0):
    """The ``reported`` section of one service in ShowDeviceShadow, once it has properties."""
    deadline = time.monotonic() + timeout
    while True:
        for entry in api.shadow(device_id):
            if entry["service_id"] == service_id and (entry.get("reported") or {}).get("properties"):
                return entry["reported"]
        if time.monotonic() > deadline:
            raise TimeoutError(f"no reported {service_id} for {device_id}")
        time.sleep(0.05)


def _in_background(fn, *args, **kwargs):
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("rsp", fn(*args, **kwargs)))
    t.start()
    return t, out


# ---- report -------------------------------------------------------------------------------------

def test_properties_report_updates_the_shadow(api, make_device):
    dev = make_device()
    stamp = "20250102T030405Z"
    dev.publish(f"$oc/devices/{dev.id}/sys/properties/report",
                {"services": [{"service_id": "Sensor", "properties": {"temperature": 21.5, "humidity": 40},
                               "event_time": stamp}]})
    reported = _reported(api, dev.id)
    assert reported["properties"] == {"temperature": 21.5, "humidity": 40}
    assert reported["event_time"] == stamp


def test_properties_report_with_request_id_suffix_and_no_event_time(api, make_device):
    dev = make_device()
    before = event_time(time.time() - 2)
    dev.publish(f"$oc/devices/{dev.id}/sys/properties/report?request_id={new_id('r')}",
                {"services": [{"service_id": "Sensor", "properties": {"temperature": 3}}]})
    reported = _reported(api, dev.id)
    assert reported["properties"]["temperature"] == 3
    # no event_time: the platform's receive time is used
    assert reported["event_time"] >= before


def test_malformed_event_time_is_replaced_by_receive_time(api, make_device):
    dev = make_device()
    before = event_time(time.time() - 2)
    dev.publish(f"$oc/devices/{dev.id}/sys/properties/report",
                {"services": [{"service_id": "Sensor", "properties": {"temperature": 4}, "event_time": "yesterday"}]})
    assert _reported(api, dev.id)["event_time"] >= before


def test_gateway_batch_report_updates_each_sub_devices_shadow(api, make_device):
    gw = make_device()
    child_a = api.add_device(gateway_id=gw.id)["device_id"]
    child_b = api.add_device(gateway_id=gw.id)["device_id"]
    gw.publish(f"$oc/devices/{gw.id}/sys/gateway/sub_devices/properties/report", {"devices": [
        {"device_id": child_a, "services": [{"service_id": "Sensor", "properties": {"temperature": 1}}]},
        {"device_id": child_b, "services": [{"service_id": "Sensor", "properties": {"temperature": 2},
                                             "event_time": event_time()}]},
    ]})
    assert _reported(api, child_a)["properties"] == {"temperature": 1}
    assert _reported(api, child_b)["properties"] == {"temperature": 2}


# ---- set ---------------------------------------------------------------------------------------

def test_property_set_round_trip_without_subscribe(api, make_device):
    dev = make_device()
    services = [{"service_id": "Sensor", "properties": {"temperature": 30}}]
    t, out = _in_background(api.put, f"/devices/{dev.id}/properties", {"services": services},
                            timeout=COMMAND_TIMEOUT + 10)
    prefix = f"$oc/devices/{dev.id}/sys/properties/set/request_id="
    msg = dev.expect(prefix)
    assert msg.qos == 0
    assert msg.json() == {"services": services}
    request_id = msg.topic[len(prefix):]
    dev.publish(f"$oc/devices/{dev.id}/sys/properties/set/response/request_id={request_id}",
                {"result_code": 0, "result_desc": "applied"})
    t.join()
    rsp = out["rsp"]
    assert rsp.status_code == 200, rsp.text
    assert rsp.json()["request_id"] == request_id
    assert rsp.json()["response"] == {"result_code": 0, "result_desc": "applied"}


def test_unanswered_property_set_times_out(api, make_device):
    dev = make_device()
    rsp = api.put(f"/devices/{dev.id}/properties",
                  {"services": [{"service_id": "Sensor", "properties": {"temperature": 1}}]},
                  timeout=COMMAND_TIMEOUT + 10)
    assert rsp.status_code == 200 and rsp.json()["error_code"] == "IOTDA.014111"


# ---- get ---------------------------------------------------------------------------------------

def test_property_get_round_trip_does_not_touch_the_shadow(api, make_device):
    dev = make_device()
    dev.publish(f"$oc/devices/{dev.id}/sys/properties/report",
                {"services": [{"service_id": "Sensor", "properties": {"temperature": 10}}]})
    assert _reported(api, dev.id)["properties"]["temperature"] == 10
    t, out = _in_background(api.get, f"/devices/{dev.id}/properties", params={"service_id": "Sensor"},
                            timeout=COMMAND_TIMEOUT + 10)
    prefix = f"$oc/devices/{dev.id}/sys/properties/get/request_id="
    msg = dev.expect(prefix)
    assert msg.qos == 0 and msg.json() == {"service_id": "Sensor"}
    answer = {"services": [{"service_id": "Sensor", "properties": {"temperature": 99},
                            "event_time": event_time()}]}
    dev.publish(f"$oc/devices/{dev.id}/sys/properties/get/response/request_id={msg.topic[len(prefix):]}", answer)
    t.join()
    assert out["rsp"].status_code == 200, out["rsp"].text
    assert out["rsp"].json()["response"] == answer
    assert _reported(api, dev.id)["properties"]["temperature"] == 10


def test_property_get_of_every_service_carries_no_service_id(api, make_device):
    dev = make_device()
    t, out = _in_background(api.get, f"/devices/{dev.id}/properties", timeout=COMMAND_TIMEOUT + 10)
    prefix = f"$oc/devices/{dev.id}/sys/properties/get/request_id="
    msg = dev.expect(prefix)
    assert "service_id" not in msg.json()
    dev.publish(f"$oc/devices/{dev.id}/sys/properties/get/response/request_id={msg.topic[len(prefix):]}",
                {"services": []})
    t.join()
    assert out["rsp"].json()["response"] == {"services": []}


# ---- desired values -------------------------------------------------------------------------------

def test_desired_value_is_pushed_to_an_online_device_until_reported(api, make_device):
    dev = make_device()
    rsp = api.put(f"/devices/{dev.id}/shadow", {"shadow": [{"service_id": "Sensor", "desired": {"temperature": 25}}]})
    assert rsp.status_code == 200, rsp.text
    prefix = f"$oc/devices/{dev.id}/sys/properties/set/request_id="
    msg = dev.expect(prefix)
    assert msg.json() == {"services": [{"service_id": "Sensor", "properties": {"temperature": 25}}]}
    dev.publish(f"$oc/devices/{dev.id}/sys/properties/set/response/request_id={msg.topic[len(prefix):]}",
                {"result_code": 0})
    dev.publish(f"$oc/devices/{dev.id}/sys/properties/report",
                {"services": [{"service_id": "Sensor", "properties": {"temperature": 25}}]})
    assert _reported(api, dev.id)["properties"]["temperature"] == 25
    with pytest.raises(TimeoutError):   # reported == desired: nothing more to deliver
        dev.expect(prefix, timeout=0.6)


def test_desired_value_set_while_offline_arrives_on_connect(api, make_device):
    dev = make_device(connect=False)
    rsp = api.put(f"/devices/{dev.id}/shadow", {"shadow": [{"service_id": "Sensor", "desired": {"temperature": 7}}]})
    assert rsp.status_code == 200, rsp.text
    assert dev.connect() == 0
    prefix = f"$oc/devices/{dev.id}/sys/properties/set/request_id="
    msg = dev.expect(prefix)
    assert msg.json()["services"][0]["properties"] == {"temperature": 7}
    dev.publish(f"$oc/devices/{dev.id}/sys/properties/set/response/request_id={msg.topic[len(prefix):]}", {})


def test_property_set_to_a_sub_device_goes_through_its_gateway(api, make_device):
    gw = make_device()
    child = api.add_device(gateway_id=gw.id)["device_id"]
    # a sub-device is online once its gateway says so
    gw.event_up("$sub_device_manager", "sub_device_update_status",
                {"device_statuses": [{"device_id": child, "status": "ONLINE"}]})
    gw.expect_event("$sub_device_manager", "sub_device_update_status_response")
    services = [{"service_id": "Sensor", "properties": {"temperature": 5}}]
    t, out = _in_background(api.put, f"/devices/{child}/properties", {"services": services},
                            timeout=COMMAND_TIMEOUT + 10)
    prefix = f"$oc/devices/{gw.id}/sys/properties/set/request_id="
    msg = gw.expect(prefix)
    assert msg.json() == {"object_device_id": child, "services": services}
    gw.publish(f"$oc/devices/{gw.id}/sys/properties/set/response/request_id={msg.topic[len(prefix):]}",
               {"result_code": 0})
    t.join()
    assert out["rsp"].json()["response"]["result_code"] == 0


def test_gzip_encoded_report_is_unpacked(api, make_device):
    # SDK evidence only (Huawei's C SDK appends ?encoding=gzip and gzips the body); the docs are silent
    import gzip
    import json as _json
    dev = make_device()
    body = gzip.compress(_json.dumps({"services": [{"service_id": "Sensor",
                                                    "properties": {"temperature": 66}}]}).encode())
    dev.publish(f"$oc/devices/{dev.id}/sys/properties/report?encoding=gzip", body)
    assert _reported(api, dev.id, timeout=2)["properties"] == {"temperature": 66}


# ---- the product model (doc/protocol.md §2.5, §2.7, §6.3) -------------------------------------------

def test_reported_data_outside_the_product_model_is_discarded(api, make_device):
    dev = make_device()
    dev.publish(f"$oc/devices/{dev.id}/sys/properties/report",
                {"services": [{"service_id": "Sensor", "properties": {"temperature": 1, "not_in_model": 2}},
                              {"service_id": "NoSuchService", "properties": {"x": 1}}]})
    assert _reported(api, dev.id)["properties"] == {"temperature": 1}
    assert [s["service_id"] for s in api.shadow(dev.id)] == ["Sensor"]


def test_desired_value_of_a_read_only_property_is_refused(api, make_device):
    dev = make_device(connect=False)
    rsp = api.put(f"/devices/{dev.id}/shadow", {"shadow": [{"service_id": "Sensor", "desired": {"humidity": 5}}]})
    assert rsp.status_code == 400


def test_property_set_of_a_read_only_property_is_refused(api, make_device):
    dev = make_device()
    rsp = api.put(f"/devices/{dev.id}/properties",
                  {"services": [{"service_id": "Sensor", "properties": {"humidity": 5}}]},
                  timeout=COMMAND_TIMEOUT + 10)
    assert rsp.status_code == 400
