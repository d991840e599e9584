"""The emulator is independent of the SDK it is used to check (issue 12, item 2).

(a) No module under ``iotda_emulator`` imports ``iot_device_sdk_python`` (parsed with ``ast``, so lazy
imports inside functions count too). (b) A fresh interpreter that runs an emulator with its HTTP API and
serves a bare paho-mqtt device end to end never loads the SDK.
"""
from __future__ import annotations

import ast
import json
import os
import pathlib
import subprocess
import sys
import textwrap

ROOT = pathlib.Path(__file__).resolve().parents[2]
EMULATOR_DIR = ROOT / "iotda_emulator"
SDK = "iot_device_sdk_python"


def _sdk_imports(path: pathlib.Path, root: pathlib.Path = ROOT) -> list:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
              in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant)):
            names = [str(node.args[0].value)]
        found += [f"{path.relative_to(root)}:{node.lineno} {n}" for n in names
                  if n == SDK or n.startswith(SDK + ".")]
    return found


def test_no_emulator_module_imports_the_sdk():
    files = sorted(EMULATOR_DIR.rglob("*.py"))
    assert len(files) > 20 and EMULATOR_DIR / "protocol" / "topics.py" in files
    offenders = [hit for f in files for hit in _sdk_imports(f)]
    assert offenders == []


def test_scanner_sees_every_import_form(tmp_path):
    # the check above could pass vacuously if the scanner missed a form: prove it catches each one
    sample = tmp_path / "sample.py"
    sample.write_text(textwrap.dedent(f"""
        import {SDK}
        import json, {SDK}.protocol.topics as t
        from {SDK}.protocol import codec
        def later():
            from {SDK}.rule.rule_parser import parse_rule
            importlib.import_module("{SDK}.protocol")
        from iotda_emulator.protocol import topics
        import {SDK}_not_it
    """))
    hits = _sdk_imports(sample, tmp_path)
    assert [h.split(" ", 1)[1] for h in hits] == [
        SDK, f"{SDK}.protocol.topics", f"{SDK}.protocol", f"{SDK}.rule.rule_parser", f"{SDK}.protocol"]


# Runs in a fresh interpreter: everything the emulator needs is loaded by the emulator itself.
_SCRIPT = r'''
import datetime, hashlib, hmac, json, queue, sys, threading, time, urllib.error, urllib.request

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from iotda_emulator import Emulator

out = {}


def wait(predicate, what, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


def rest(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def rule_body(device_id, value):
    return {"name": "independence", "rule_type": "DEVICE_SIDE", "condition_group": {"conditions": [
        {"type": "DEVICE_DATA", "device_property_condition": {"device_id": device_id, "filters": [
            {"path": "s/p", "operator": "between", "value": value}]}}]},
        "actions": [{"type": "DEVICE_CMD", "device_command": {"device_id": device_id, "cmd": {"command_name": "c"}}}]}


emu = Emulator(http=True, command_timeout=5.0).start()
try:
    record = emu.create_device()
    did, secret = record["device_id"], record["secret"]
    api = emu.http_url + "/v5/iot/proj"

    # REST: device query, and device rules through the emulator's own validator
    out["show_device"] = rest("GET", api + "/devices/" + did)[0]
    out["rule_ok"] = rest("POST", api + "/rules", rule_body(did, "1,5"))[0]
    status, err = rest("POST", api + "/rules", rule_body(did, "5,1"))
    out["rule_bad"] = [status, (err or {}).get("error_msg", "")]

    # a bare device: client id {id}_0_0_{YYYYMMDDHH}, password = hex HMAC-SHA256(key=stamp, msg=secret)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d%H")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{did}_0_0_{stamp}", protocol=mqtt.MQTTv311)
    client.username_pw_set(did, hmac.new(stamp.encode(), secret.encode(), hashlib.sha256).hexdigest())
    inbox = queue.Queue()
    connected = threading.Event()
    client.on_connect = lambda c, u, f, rc, p: connected.set() if not rc.is_failure else None
    client.on_message = lambda c, u, m: inbox.put((m.topic, m.payload))
    client.connect(emu.host, emu.mqtt_port, keepalive=60)
    client.loop_start()
    try:
        assert connected.wait(15), "CONNACK"
        root = f"$oc/devices/{did}/sys/"
        client.subscribe([(root + "messages/down", 1), (root + "commands/+", 1)])
        assert emu.wait_online(did, timeout=15), "device online"

        client.publish(root + "messages/up", b'{"content":"hi"}', qos=1).wait_for_publish(10)
        wait(lambda: any(e.payload == b'{"content":"hi"}' for e in emu.trace(device_id=did, kind="messages_up")),
             "messages_up in the trace")
        out["up_traced"] = True

        def take(prefix):
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                try:
                    topic, payload = inbox.get(timeout=0.2)
                except queue.Empty:
                    continue
                if topic.startswith(prefix):
                    return topic, payload
            raise AssertionError("no message on " + prefix)

        def deliver_until_received():
            # the subscription may land just after CONNACK: resend until the device has it
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                emu.send_message(did, b"down-1")
                try:
                    return take(root + "messages/down")
                except AssertionError:
                    continue
            raise AssertionError("messages/down never arrived")

        out["down"] = deliver_until_received()[1].decode()

        result = {}
        worker = threading.Thread(target=lambda: result.update(emu.send_command(did, "svc", "reboot", {"n": 1})))
        worker.start()
        topic, payload = take(root + "commands/request_id=")
        request_id = topic.rsplit("request_id=", 1)[1]
        client.publish(root + "commands/response/request_id=" + request_id,
                       b'{"result_code":0,"paras":{"ok":true}}', qos=1)
        worker.join(15)
        out["command_request"] = json.loads(payload)
        out["command_result"] = result
    finally:
        client.loop_stop()
        client.disconnect()
finally:
    emu.stop()

out["sdk_modules"] = sorted(m for m in sys.modules if m == "iot_device_sdk_python"
                            or m.startswith("iot_device_sdk_python."))
print("RESULT " + json.dumps(out))
'''


def test_a_running_emulator_never_loads_the_sdk():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=str(ROOT), env=env, capture_output=True,
                          text=True, timeout=180)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, f"rc={proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    out = json.loads(lines[-1][len("RESULT "):])
    # the end-to-end run really exercised the emulator ...
    assert out["show_device"] == 200
    assert out["rule_ok"] == 201
    assert out["rule_bad"][0] == 400 and "min <= max" in out["rule_bad"][1]
    assert out["up_traced"] is True and out["down"] == "down-1"
    assert out["command_request"]["command_name"] == "reboot" and out["command_request"]["paras"] == {"n": 1}
    assert out["command_result"].get("paras") == {"ok": True}
    # ... and the SDK was never imported
    assert out["sdk_modules"] == []
