"""A connected device keeps the process alive until destroy(), as upstream did; ``keep_process_alive =
False`` opts out (issue 14, item 5). The programs run as real subprocesses."""
from __future__ import annotations

import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _start(emulator, rec, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "tests.sdk._lifetime_proc", "--host", emulator.host, "--port",
         str(emulator.mqtt_port), "--device-id", rec["device_id"], "--secret", rec["secret"], *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_program_returning_after_connect_stays_alive_and_answers(emulator):
    rec = emulator.create_device()
    proc = _start(emulator, rec)
    try:
        assert proc.stdout.readline().strip() == "CONNECTED"
        time.sleep(1.0)  # main() has returned by now
        assert proc.poll() is None, proc.stderr.read()
        result = emulator.send_command(rec["device_id"], "svc", "ping", {"n": 7})
        assert result["result_code"] == 0 and result["paras"] == {"echo": {"n": 7}}
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait(10)
        emulator.delete_device(rec["device_id"])


def test_program_with_the_opt_out_exits_when_main_returns(emulator):
    rec = emulator.create_device()
    proc = _start(emulator, rec, "--opt-out")
    try:
        assert proc.stdout.readline().strip() == "CONNECTED"
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        emulator.delete_device(rec["device_id"])


def test_destroy_releases_the_process(make_device):
    device = make_device()
    keeper = device.get_client()._keeper
    assert keeper.holding
    device.destroy()
    assert not keeper.holding


def test_keeper_hold_and_release_are_idempotent():
    from iot_device_sdk_python.transport.process_keeper import ProcessKeeper

    keeper = ProcessKeeper("iot-keep-process-test")
    keeper.hold()
    keeper.hold()
    assert keeper.holding
    keeper.release()
    keeper.release()
    assert not keeper.holding
