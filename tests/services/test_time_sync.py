"""Time sync end to end: emulator $time_sync answers, SDK computes the documented formula."""
from __future__ import annotations

import threading

from iot_device_sdk_python.client.request.device_event import DeviceEvent
from iot_device_sdk_python.protocol import codec
from iot_device_sdk_python.timesync.time_sync_listener import TimeSyncListener

HOUR_MS = 3_600_000


class Recorder(TimeSyncListener):
    def __init__(self):
        self.calls = []
        self.event = threading.Event()

    def on_time_sync_response(self, device_send_time, server_recv_time, server_send_time):
        self.calls.append((device_send_time, server_recv_time, server_send_time))
        self.event.set()


def test_sync_returns_platform_time(emulator, make_device):
    device = make_device(emulator)
    emu_ts = emulator.service("$time_sync")
    svc = device.get_time_sync_service()
    recorder = Recorder()
    svc.set_listener(recorder)
    emu_ts.clock_offset_ms = HOUR_MS      # the platform clock is one hour ahead of the device
    try:
        synced = svc.sync(timeout=15)
        local = codec.now_ms()
    finally:
        emu_ts.clock_offset_ms = 0
    # corrected time = local + 1 h (within the round trip, generously bounded)
    assert abs(synced - (local + HOUR_MS)) < 5_000
    assert recorder.event.wait(5)
    dst, srt, sst = recorder.calls[0]
    assert all(isinstance(t, int) for t in (dst, srt, sst))
    assert srt >= dst + HOUR_MS - 5_000
    req = emu_ts.requests(device.get_device_id())[0]
    assert isinstance(req["raw"], int) and req["raw"] == dst    # sent as an integer, not a string


def test_request_time_sync_and_string_send_time(emulator, make_device):
    device = make_device(emulator)
    recorder = Recorder()
    device.get_time_sync_service().set_listener(recorder)
    # an upstream-style request with the time as a string is accepted and echoed as an int
    event = DeviceEvent()
    event.service_id = "$time_sync"
    event.event_type = "time_sync_request"
    event.paras = {"device_send_time": "1700000000000"}
    device.get_client().report_event(event)
    assert recorder.event.wait(15)
    assert recorder.calls[0][0] == 1_700_000_000_000
    recorder.event.clear()
    device.get_time_sync_service().request_time_sync()
    assert recorder.event.wait(15)
    assert abs(recorder.calls[1][0] - codec.now_ms()) < 15_000


def test_sync_refuses_to_block_the_dispatcher(emulator, make_device):
    device = make_device(emulator)
    svc = device.get_time_sync_service()
    outcome = {}
    done = threading.Event()

    def in_dispatcher():
        try:
            svc.sync(timeout=1)
        except Exception as exc:  # noqa: BLE001 - the type is asserted below
            outcome["exc"] = exc
        done.set()

    device.get_client().get_dispatcher().submit(in_dispatcher)
    assert done.wait(10)
    assert isinstance(outcome.get("exc"), RuntimeError)
