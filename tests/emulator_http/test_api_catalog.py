"""doc/emulator.md's table of implemented REST operations is generated from the route table (`make docs`), and
the generator's idea of "implemented" is checked against the running emulator: an operation marked missing
answers APIG's 404, one marked implemented does not."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "doc"))
import gen_emulator_api  # noqa: E402  (doc/ is not a package)


def test_the_operations_table_is_current():
    current = (ROOT / "doc" / "emulator.md").read_text(encoding="utf-8")
    assert current == gen_emulator_api.updated_doc(), "doc/emulator.md is stale: run `make docs`"


def test_the_table_agrees_with_the_running_emulator(emulator, base_url):
    table = gen_emulator_api._route_table()
    for name, method, path in gen_emulator_api.sdk_operations():
        concrete = re.sub(r"\{project_id\}", "p", path)
        concrete = re.sub(r"\{[^}]+\}", "no-such-id", concrete)
        rsp = requests.request(method, base_url + concrete, data=b"{}",
                               headers={"Content-Type": "application/json"}, timeout=10)
        missing = rsp.status_code == 404 and rsp.json().get("error_code") == "APIGW.0101"
        assert missing != gen_emulator_api.implemented(method, path, table), (name, method, path, rsp.status_code)
