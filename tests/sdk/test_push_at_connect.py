"""IoTDA pushes downlinks as soon as it accepts a device (implicit subscription), often before the SDK has
restored its own subscriptions. An answer made in that window must go out, never be dropped."""
from __future__ import annotations

import threading

from iot_device_sdk_python import CommandListener, CommandRsp
from iot_device_sdk_python.iot_device import IotDevice
from iot_device_sdk_python.transport.raw_message import RawMessage
from tests.fixtures_sdk import build_client_conf


class _Answer(CommandListener):
    def __init__(self, device):
        self.device = device

    def on_command(self, request_id, service_id, command_name, paras):
        self.device.get_client().respond_command(request_id, CommandRsp(0))


def test_a_command_pushed_right_after_connack_is_answered(emulator):
    record = emulator.create_device()
    # latency on the link: the command (sent when the platform accepts the device) reaches the SDK before
    # the SUBACKs of the subscriptions it restores after CONNACK
    emulator.delay(record["device_id"], 0.3)
    conf = build_client_conf(emulator, record)   # offline buffer off (the default)
    device = IotDevice(conf)
    device.get_client().set_command_listener(_Answer(device))
    result = {}

    def platform():
        emulator.wait_online(record["device_id"], 10)
        try:
            result["rsp"] = emulator.send_command(record["device_id"], "svc", "now", {}, timeout=5)
        except Exception as exc:  # noqa: BLE001 - reported below
            result["err"] = exc
    t = threading.Thread(target=platform)
    t.start()
    try:
        assert device.connect() == 0
        t.join(10)
        assert result.get("rsp", {}).get("result_code") == 0, result
    finally:
        emulator.delay(record["device_id"], 0)
        device.destroy()
        emulator.delete_device(record["device_id"])


def test_a_publish_between_connack_and_online_is_queued_not_dropped(emulator):
    """The state of the window itself, made deterministic: CONNACK accepted, link not yet online."""
    record = emulator.create_device()
    device = IotDevice(build_client_conf(emulator, record))   # offline buffer off (the default)
    try:
        assert device.connect() == 0
        conn = device.get_client()._connection
        with conn._lock:   # back to "CONNACK 0 in, subscriptions being restored"
            conn._online, conn._live = False, None
        handle = conn.publish_message(RawMessage(f"$oc/devices/{record['device_id']}/sys/messages/up", b"x", 1))
        assert not handle.done(), "dropped although the link is up"
        assert list(conn._buffer) == [handle]
        conn._client.user_data_get().lost = True   # the same window after the link died: not queued
        handle2 = conn.publish_message(RawMessage(f"$oc/devices/{record['device_id']}/sys/messages/up", b"y", 1))
        assert handle2.exception(1).reason == "offline"
    finally:
        device.destroy()
        emulator.delete_device(record["device_id"])
