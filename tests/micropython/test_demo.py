"""``iot_device_demo/message/micro_message_sample.py`` under MicroPython against the emulator.

The demo is copied with only its settings changed (address, port, device id, secret, CA file) - the lines a
user edits - and run by the MicroPython unix port; the platform side is checked through the REST API.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict

import pytest
import requests

from tests.micropython._mp import REPO, MpProcess
from tests.waiting import wait_until

DEMO = REPO / "iot_device_demo" / "message" / "micro_message_sample.py"
SETTINGS = ("SERVER_ADDRESS", "PORT", "DEVICE_ID", "SECRET", "CA_FILE")


def configured_demo(target: Path, values: Dict[str, object]) -> Path:
    """Write the demo to ``target`` with each setting line ``NAME = ...`` replaced by ``values[NAME]``."""
    text = DEMO.read_text(encoding="utf-8")
    for name in SETTINGS:
        text, count = re.subn(rf"^{name} = .*$", f"{name} = {values[name]!r}", text, count=1, flags=re.M)
        assert count == 1, f"the demo has no {name} setting line"
    out = target / DEMO.name
    out.write_text(text, encoding="utf-8")
    return out


def test_only_the_settings_differ(tmp_path):
    copy = configured_demo(tmp_path, {n: "x" for n in SETTINGS})
    changed = [(a, b) for a, b in zip(DEMO.read_text().splitlines(), copy.read_text().splitlines()) if a != b]
    assert [b.split(" = ")[0] for _, b in changed] == list(SETTINGS)


@pytest.mark.parametrize("tls", [True, False], ids=["mqtts", "mqtt"])
def test_demo_runs_against_the_emulator(emu, tmp_path, tls):
    record = emu.create_device()
    device_id = record["device_id"]
    script = configured_demo(tmp_path, {
        "SERVER_ADDRESS": "127.0.0.1", "PORT": emu.mqtts_port if tls else emu.mqtt_port, "DEVICE_ID": device_id,
        "SECRET": record["secret"], "CA_FILE": emu.ca_file if tls else None})
    api = f"http://127.0.0.1:{emu.http_port}/v5/iot/demo/devices/{device_id}"
    proc = MpProcess(script, [])
    try:
        proc.expect("connected")
        entry = emu.wait_for_trace(lambda e: e.device_id == device_id and e.topic.endswith("/sys/messages/up"), 10)
        assert entry.json() == {"content": "raw message: Hello Huawei cloud IoT"}
        proc.expect("properties reported")

        def reported() -> dict:   # the shadow is updated once the platform has processed the report
            shadow = requests.get(api + "/shadow", timeout=10).json()["shadow"]
            return {s["service_id"]: s["reported"]["properties"] for s in shadow if s.get("reported")}
        assert wait_until(reported, 10, what="reported properties")["Agriculture"]["LightStatus"] == "OFF"
        # command round trip
        rsp = requests.post(api + "/commands", json={"service_id": "Agriculture", "command_name": "ring",
                                                     "paras": {"n": 1}}, timeout=20)
        assert rsp.status_code == 200 and rsp.json()["response"] == {"result_code": 0, "paras": {"result": "success"}}
        proc.expect("command: Agriculture ring")
        # property set, then get returns the written value
        rsp = requests.put(api + "/properties", json={"services": [{"service_id": "Agriculture",
                                                                    "properties": {"LightStatus": "ON"}}]}, timeout=20)
        assert rsp.json()["response"] == {"result_code": 0, "result_desc": "success"}
        rsp = requests.get(api + "/properties", params={"service_id": "Agriculture"}, timeout=20)
        assert rsp.json()["response"]["services"] == [{"service_id": "Agriculture",
                                                       "properties": {"LightStatus": "ON"}}]
        # message down
        rsp = requests.post(api + "/messages", json={"message": "hi board", "name": "greeting"}, timeout=10)
        assert rsp.status_code == 201
        assert "content = hi board" in proc.expect("message from the platform")
        assert proc.proc.poll() is None, proc.output()   # still running: a board demo runs until reset
    finally:
        proc.stop()
    assert "Traceback" not in proc.output()
