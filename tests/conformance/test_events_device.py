"""Device events: ``$time_sync``, ``$sdk_info``/``$device_info``, ``$log`` (doc/protocol.md §2.10, §3.3-§3.5)."""
from __future__ import annotations

import re
import time

import pytest

from tests.conformance._device import only_event


# ---- $time_sync ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("as_text", [False, True], ids=["long", "string"])
def test_time_sync_request_and_response(make_device, as_text):
    dev = make_device()
    sent = int(time.time() * 1000)
    before = sent
    dev.event_up("$time_sync", "time_sync_request", {"device_send_time": str(sent) if as_text else sent})
    msg = dev.expect_event("$time_sync", "time_sync_response")
    after = int(time.time() * 1000)
    event = only_event(msg)
    paras = event["paras"]
    assert paras["device_send_time"] == sent
    assert before <= paras["server_recv_time"] <= paras["server_send_time"] <= after
    assert re.fullmatch(r"\d{8}T\d{6}Z", event["event_time"])   # yyyyMMdd'T'HHmmss'Z'
    assert event["service_id"] == "$time_sync" and event["event_id"]


def test_events_down_carry_object_device_id_of_a_directly_connected_device(make_device):
    # doc/protocol.md §2.3: IoTDA sets object_device_id to the device's own id on events/down
    dev = make_device()
    dev.event_up("$time_sync", "time_sync_request", {"device_send_time": int(time.time() * 1000)})
    body = dev.expect_event("$time_sync", "time_sync_response").json()
    assert body.get("object_device_id") == dev.id


# ---- $sdk_info / $device_info ---------------------------------------------------------------------

@pytest.mark.parametrize("service_id,event_type", [("$sdk_info", "sdk_info_report"),
                                                   ("$device_info", "device_info_report")])
def test_sdk_info_report_shows_in_show_device(api, make_device, service_id, event_type):
    dev = make_device()
    dev.event_up(service_id, event_type, {"device_sdk_version": "Conformance_v1.0.0", "sw_version": "sw-1.2",
                                          "fw_version": "fw-3.4", "device_ip": "192.0.2.7"})
    deadline = time.monotonic() + 5
    while True:
        shown = api.show_device(dev.id)
        if shown.get("device_sdk_version") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert shown["device_sdk_version"] == "Conformance_v1.0.0"
    assert shown["sw_version"] == "sw-1.2" and shown["fw_version"] == "fw-3.4"


# ---- $log -------------------------------------------------------------------------------------------

def _logs(api, device_id, count, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        rsp = api.get(f"/emulator/devices/{device_id}/logs")
        assert rsp.status_code == 200, rsp.text
        logs = rsp.json()["logs"]
        if len(logs) >= count or time.monotonic() > deadline:
            return logs
        time.sleep(0.05)


def test_log_report_is_stored(api, make_device):
    dev = make_device()
    stamp = str(int(time.time() * 1000))
    for log_type in ("DEVICE_STATUS", "DEVICE_PROPERTY", "DEVICE_MESSAGE", "DEVICE_COMMAND"):
        dev.event_up("$log", "log_report", {"timestamp": stamp, "type": log_type, "content": f"{log_type} line"})
    logs = _logs(api, dev.id, 4)
    assert [(e["type"], e["content"]) for e in logs] == [
        ("DEVICE_STATUS", "DEVICE_STATUS line"), ("DEVICE_PROPERTY", "DEVICE_PROPERTY line"),
        ("DEVICE_MESSAGE", "DEVICE_MESSAGE line"), ("DEVICE_COMMAND", "DEVICE_COMMAND line")]
    assert logs[0]["timestamp"] == stamp and logs[0]["event_type"] == "log_report"


def test_security_log_report_is_stored(api, make_device):
    dev = make_device()
    dev.event_up("$log", "security_log_report", {"timestamp": str(int(time.time() * 1000)), "type": "MEMORY_REPORT",
                                                 "content": {"used": 10, "total": 100, "leak_alarm": 0}})
    [entry] = _logs(api, dev.id, 1)
    assert entry["type"] == "MEMORY_REPORT" and entry["content"] == {"used": 10, "total": 100, "leak_alarm": 0}


def test_log_config_is_delivered_without_subscribe(api, make_device):
    dev = make_device()
    rsp = api.put(f"/emulator/devices/{dev.id}/log-config", {"switch": "on", "end_time": "20300101T000000Z"})
    assert rsp.status_code == 200, rsp.text
    msg = dev.expect_event("$log", "log_config")
    assert msg.qos == 0
    event = only_event(msg)
    assert event["paras"] == {"switch": "on", "end_time": "20300101T000000Z"}
    assert event["event_id"] == rsp.json()["event_id"]
    rsp = api.put(f"/emulator/devices/{dev.id}/log-config", {"switch": "off"})
    assert rsp.status_code == 200, rsp.text
    assert only_event(dev.expect_event("$log", "log_config"))["paras"]["switch"] == "off"


def test_log_config_to_an_offline_device_is_refused(api, make_device):
    dev = make_device(connect=False)
    rsp = api.put(f"/emulator/devices/{dev.id}/log-config", {"switch": "on"})
    assert rsp.status_code == 409
