"""The python block of the README section "MicroPython" (EN and CN) runs under MicroPython as written, with only
the placeholders a reader replaces (address, port, CA file, device id, secret) set to the emulator's values."""
from __future__ import annotations

import re

import pytest
import requests

from tests.micropython._mp import REPO, MpProcess
from tests.waiting import wait_until


def micropython_block(readme: str) -> str:
    """The first ```python block after the heading ``## MicroPython``."""
    text = (REPO / readme).read_text(encoding="utf-8")
    section = text[text.index("\n## MicroPython\n"):]
    match = re.search(r"\n```python\n(.*?)\n```\n", section, re.S)
    assert match, f"{readme}: no python block in the MicroPython section"
    return match.group(1) + "\n"


def test_the_two_readmes_show_the_same_code():
    strip = lambda code: [ln.split("#")[0].rstrip() for ln in code.splitlines()]   # noqa: E731 - comments translate
    assert strip(micropython_block("README.md")) == strip(micropython_block("README_CN.md"))


@pytest.mark.parametrize("readme", ["README.md", "README_CN.md"])
def test_readme_block_runs_on_micropython(emu, tmp_path, readme):
    record = emu.create_device()
    device_id = record["device_id"]
    code = micropython_block(readme)
    for literal, value in {'"iot-mqtts.cn-north-4.myhuaweicloud.com"': '"127.0.0.1"',
                           "8883": str(emu.mqtts_port), '"root.pem"': repr(emu.ca_file),
                           '"your device id"': repr(device_id), '"your device secret"': repr(record["secret"])}.items():
        assert literal in code, f"{readme}: placeholder {literal} missing"
        code = code.replace(literal, value)
    script = tmp_path / "readme_block.py"
    script.write_text(code, encoding="utf-8")
    proc = MpProcess(script, [])
    try:
        assert emu.wait_online(device_id, 15), proc.output()
        emu.wait_for_trace(lambda e: e.device_id == device_id and e.topic.endswith("/sys/properties/report"), 10)
        api = f"http://127.0.0.1:{emu.http_port}/v5/iot/readme/devices/{device_id}"

        def reported() -> dict:   # the shadow is updated once the platform has processed the report
            shadow = requests.get(api + "/shadow", timeout=10).json()["shadow"]
            return {s["service_id"]: s["reported"]["properties"] for s in shadow if s.get("reported")}
        assert wait_until(reported, 10, what="reported properties") == {"smokeDetector": {"temperature": 21}}
        rsp = requests.post(api + "/commands", json={"command_name": "ring", "paras": {"n": 2}}, timeout=20)
        assert rsp.json()["response"] == {"result_code": 0, "paras": {"result": "success"}}, rsp.text
        assert proc.expect("command:") == "command: ring {'n': 2}"
    finally:
        proc.stop()
