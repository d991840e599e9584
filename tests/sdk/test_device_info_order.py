"""``auto_report_device_info`` goes out before ``connect()`` returns, so the application's own
``report_device_info`` made right after connect() is always the platform's last word (issue 14, item 4)."""
from __future__ import annotations

from iot_device_sdk_python.client.request.device_base_info import DeviceBaseInfo
from tests.sdk.helpers import wait_until


def test_application_device_info_always_wins_over_the_automatic_one(emulator, make_device):
    sdk_info = emulator.service("$sdk_info")
    for run in range(8):
        device = make_device(auto_report_device_info=True)  # connect() has returned
        did = device.get_device_id()
        info = DeviceBaseInfo()
        info.fw_version, info.sw_version = "v1.0", f"v1.{run}"
        device.get_client().report_device_info(info).result(5)
        # both reports (the automatic one and the application's) reached the platform
        wait_until(lambda: len(sdk_info.history(did)) >= 2, 5, what=f"run {run}: two sdk_info reports")
        device.get_client().get_dispatcher().wait_idle(5)
        last = sdk_info.info(did)
        assert (last["fw_version"], last["sw_version"]) == ("v1.0", f"v1.{run}"), (run, sdk_info.history(did))
        assert [h["fw_version"] for h in sdk_info.history(did)] == ["", "v1.0"], run
        device.destroy()


def test_no_automatic_report_after_the_application_reported(emulator, make_device):
    """A reconnect does not send the empty automatic report again over the application's."""
    sdk_info = emulator.service("$sdk_info")
    device = make_device(auto_report_device_info=True)
    did = device.get_device_id()
    info = DeviceBaseInfo()
    info.fw_version = "v2.0"
    device.get_client().report_device_info(info).result(5)
    back = []
    device.get_client().add_connect_listener(type("L", (), {
        "connection_lost": lambda self, cause: None,
        "connect_complete": lambda self, reconnect, uri: back.append(reconnect)})())
    emulator.cut(did)
    wait_until(lambda: True in back, 10, what="reconnected")
    device.get_client().report_device_info(info).result(5)  # a marker after the reconnect
    wait_until(lambda: len(sdk_info.history(did)) >= 3, 5)
    assert [h["fw_version"] for h in sdk_info.history(did)] == ["", "v2.0", "v2.0"]
