"""Emulator life cycle: nothing left running after stop, data dir persistence, sub-device hooks."""
from __future__ import annotations

import json
import os
import threading

from iot_device_sdk_python.protocol import topics
from iotda_emulator import Emulator
from tests.emulator.helpers import RawDevice, online_device

_OUR_THREADS = ("emu-core", "iotda-front", "paho-mqtt")


def _ours():
    return [t for t in threading.enumerate() if t.name.startswith(_OUR_THREADS)]


def test_stop_leaves_nothing_running_and_data_dir_persists(tmp_path):
    before = set(_ours())
    emu = Emulator(data_dir=str(tmp_path / "d"), http=False).start()
    rec = emu.create_device("keep_me", secret="s3cret-value")
    emu.set_desired("keep_me", "svc", {"a": 1})
    dev = online_device(emu, rec, subscribe=False)
    proc = emu.broker._proc
    dev.close()
    emu.stop()
    assert proc.poll() is not None, "mosquitto still running"
    leftover = [t for t in _ours() if t not in before and t.is_alive()]
    assert not leftover, leftover
    assert os.path.exists(tmp_path / "d" / "emulator.sqlite3")
    with Emulator(data_dir=str(tmp_path / "d"), http=False) as emu2:
        assert emu2.get_device("keep_me")["secret"] == "s3cret-value"
        assert emu2.shadow("keep_me")[0]["desired"]["properties"] == {"a": 1}
        assert not emu2.is_online("keep_me")
        dev = RawDevice(emu2, "keep_me", "s3cret-value", tls=True)
        try:
            assert dev.connect() == 0   # the reused certificates still verify
        finally:
            dev.close()


def test_temporary_data_dir_removed_on_stop():
    emu = Emulator(http=False).start()
    path = emu.data_dir
    assert os.path.isdir(path)
    emu.stop()
    assert not os.path.exists(path)


def test_sub_device_online_pushes_its_desired_through_the_gateway(emulator):
    gw = emulator.create_device()
    child = emulator.create_device(gateway_id=gw["device_id"])
    emulator.set_desired(child["device_id"], "s", {"p": 3})
    dev = online_device(emulator, gw)
    try:
        emulator.core.set_online(child["device_id"], True)
        assert emulator.is_online(child["device_id"])
        while True:
            m = dev.next_message(5)
            if topics.classify(m.topic).kind == topics.PROPERTIES_SET:
                break
        assert json.loads(m.payload) == {"object_device_id": child["device_id"],
                                         "services": [{"service_id": "s", "properties": {"p": 3}}]}
        assert m.topic.startswith(topics.device_root(gw["device_id"]))
    finally:
        dev.close()
