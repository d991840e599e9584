"""$sdk_info and $log end to end: reports stored by the emulator, log_config obeyed by the SDK."""
from __future__ import annotations

import time

from iot_device_sdk_python.client.request.device_base_info import DeviceBaseInfo
from iot_device_sdk_python.client.request.device_event import DeviceEvent
from iot_device_sdk_python.protocol import codec

from tests.services.conftest import wait_until


def test_sdk_info_report_is_stored(emulator, make_device):
    device = make_device(emulator)
    info = DeviceBaseInfo()
    info.fw_version = "fw-1.2"
    info.sw_version = "sw-3.4"
    device.get_client().report_device_info(info).result(10)
    stored = emulator.service("$sdk_info").wait_info(device.get_device_id(), timeout=10)
    assert (stored["fw_version"], stored["sw_version"]) == ("fw-1.2", "sw-3.4")
    assert stored["device_sdk_version"].startswith("Python_v")


def test_old_device_info_service_id_is_accepted(emulator, make_device):
    device = make_device(emulator)
    event = DeviceEvent()
    event.service_id = "$device_info"
    event.event_type = "device_info_report"
    event.paras = {"device_sdk_version": "C_v0.5.0", "fw_version": "f"}
    device.get_client().report_event(event).result(10)
    stored = emulator.service("$sdk_info").wait_info(device.get_device_id(), timeout=10)
    assert stored["device_sdk_version"] == "C_v0.5.0" and stored["service_id"] == "$device_info"


def test_log_report_stored_and_switch_off_stops_reports(emulator, make_device):
    device = make_device(emulator)
    dev_id = device.get_device_id()
    emu_log = emulator.service("$log")
    log_svc = device.get_device_log_service()
    handle = log_svc.report_device_log(str(codec.now_ms()), "DEVICE_STATUS", "battery ok")
    handle.result(10)
    assert wait_until(lambda: any(e["content"] == "battery ok" for e in emu_log.logs(dev_id)), timeout=10)
    before = len(emu_log.logs(dev_id))

    emu_log.set_log_config(dev_id, switch="off")
    wait_until(lambda: not log_svc.can_report_log(), timeout=10)
    assert log_svc.report_device_log(str(codec.now_ms()), "DEVICE_STATUS", "must not be sent") is None

    # switching back on (with an end time in the future) re-enables reports; the "off" one never arrived
    emu_log.set_log_config(dev_id, switch="on", end_time=time.time() + 3600)
    wait_until(log_svc.can_report_log, timeout=10)
    log_svc.report_device_log(str(codec.now_ms()), "DEVICE_MESSAGE", "back on").result(10)
    # wait for this very entry: the SDK's own "connect complete" report may land after `before` was counted
    assert wait_until(lambda: "back on" in [e["content"] for e in emu_log.logs(dev_id)], timeout=10)
    contents = [e["content"] for e in emu_log.logs(dev_id)]
    assert len(contents) > before and "must not be sent" not in contents
    assert [c["switch"] for c in emu_log.configs(dev_id)] == ["off", "on"]


def test_log_config_end_time_in_the_past_stops_reports(emulator, make_device):
    device = make_device(emulator)
    log_svc = device.get_device_log_service()
    end = codec.event_time(time.time() - 60)
    emulator.service("$log").set_log_config(device.get_device_id(), switch="on", end_time=end)
    wait_until(lambda: not log_svc.can_report_log(), timeout=10)
    assert log_svc.end_time == end
    assert log_svc.report_device_log(str(codec.now_ms()), "DEVICE_STATUS", "late") is None
