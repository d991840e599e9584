"""SharedNetworkLoop works functionally (no timing): many devices, one network thread, pooled dispatchers."""
from __future__ import annotations

import threading

import pytest

from iot_device_sdk_python import CommandListener, CommandRsp, RawDeviceMessageListener, ServiceProperty
from iot_device_sdk_python.iot_device import IotDevice
from iot_device_sdk_python.transport import process_keeper
from iot_device_sdk_python.transport.mqtt.shared_loop import SharedNetworkLoop
from tests.fixtures_sdk import build_client_conf
from tests.sdk.helpers import wait_until


class Echo(CommandListener):
    def __init__(self, device):
        self.device = device
        self.threads = []

    def on_command(self, request_id, service_id, command_name, paras):
        self.threads.append(threading.current_thread().name)
        self.device.get_client().respond_command(request_id, CommandRsp(0, command_name, {"echo": paras}))


class Collect(RawDeviceMessageListener):
    def __init__(self):
        self.payloads = []

    def on_raw_device_message(self, message):
        self.payloads.append(message.payload)


@pytest.fixture
def shared_loop():
    loop = SharedNetworkLoop(dispatcher_threads=2, name="iot-test-shared-loop")
    yield loop
    loop.close()


def _make(emulator, loop, made, tls=False):
    conf = build_client_conf(emulator, emulator.create_device(), tls=tls)
    conf.mqtt_connect_conf.network_loop = loop
    device = IotDevice(conf)
    made.append(device)
    assert device.connect() == 0
    return device


def test_devices_share_one_network_thread(emulator, shared_loop):
    made = []
    try:
        before = {t.name for t in threading.enumerate()}
        devices = [_make(emulator, shared_loop, made, tls=(i == 0)) for i in range(4)]
        new = [t.name for t in threading.enumerate() if t.name not in before
               and t.name.startswith(("iot-", "paho-", "MqttThread"))  # SDK threads only (not the emulator's)
               and t.name != process_keeper.THREAD_NAME]  # one per process, not per device
        # no per-device paho thread; at most the loop thread + 2 pool threads
        assert not [n for n in new if n.startswith("paho-mqtt-client-")], new
        assert len(new) <= 3, new
        assert shared_loop.client_count == 4

        # uplink at QoS 1: acknowledged and seen by the platform
        for i, d in enumerate(devices):
            handle = d.get_client().report_properties([ServiceProperty("s", {"v": i})])
            assert handle.result(10) is not None
        for i, d in enumerate(devices):
            did = d.get_client().get_device_id()
            wait_until(lambda: emulator.shadow(did) and emulator.shadow(did)[0]["reported"]["properties"] == {"v": i})

        # downlink + response through the pool
        listeners = []
        for d in devices:
            listeners.append(Echo(d))
            d.get_client().set_command_listener(listeners[-1])
        for d in devices:
            rsp = emulator.send_command(d.get_client().get_device_id(), "s", "ping", {"n": 1}, timeout=10)
            assert rsp["paras"] == {"echo": {"n": 1}}
        assert all(t.startswith("iot-test-shared-loop-dispatch") for l in listeners for t in l.threads)
    finally:
        for d in made:
            d.destroy()
    wait_until(lambda: shared_loop.client_count == 0, timeout=5)


def test_per_device_order_is_kept(emulator, shared_loop):
    made = []
    try:
        devices = [_make(emulator, shared_loop, made) for _ in range(3)]
        collectors = []
        for d in devices:
            collectors.append(Collect())
            d.get_client().set_raw_device_msg_listener(collectors[-1])
        for n in range(30):
            for d in devices:
                emulator.send_message(d.get_client().get_device_id(), f"m{n}".encode())
        for c in collectors:
            wait_until(lambda: len(c.payloads) == 30)
            assert c.payloads == [f"m{n}".encode() for n in range(30)]
    finally:
        for d in made:
            d.destroy()


def test_reconnects_after_a_cut(emulator, shared_loop):
    made = []
    try:
        device = _make(emulator, shared_loop, made)
        did = device.get_client().get_device_id()
        emulator.cut(did)
        wait_until(lambda: not device.get_client().is_connected(), timeout=10)
        wait_until(lambda: device.get_client().is_connected(), timeout=15)
        assert device.get_client().report_properties([ServiceProperty("s", {"after": 1})]).result(10) is not None
    finally:
        for d in made:
            d.destroy()


def test_close_leaves_no_thread():
    loop = SharedNetworkLoop(dispatcher_threads=2, name="iot-test-close-loop")
    d = loop.new_dispatcher("x")
    done = threading.Event()
    d.submit(done.set)
    assert done.wait(5)
    assert d.wait_idle(5)
    d.stop()
    assert d.submit(done.set) is False
    loop.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("iot-test-close-loop")]
