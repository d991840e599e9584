"""Every README demo runs against its own local emulator, and the emulator saw the traffic the demo claims.

All local demo runs are started together on a small pool the first time a test needs one (each with its own
emulator and Mosquitto on free ports), then each test checks one run: exit code 0, a clean stop, and the
emulator's message trace (written by the demo with ``--trace-out``).
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from typing import Callable, Dict, List, Tuple

import pytest

from tests.demos._runner import REPO, DemoPool, DemoRun, demo_env, run_demo, wait_for_text

DURATION = "6"


def _contents(run: DemoRun, kind: str = "messages_up") -> List[str]:
    return [p.get("content") for p in run.payloads("up", kind)]


# ---- per-demo checks ---------------------------------------------------------------------------

def check_secret(run: DemoRun) -> None:
    assert "Hello Huawei" in _contents(run)


def check_x509(run: DemoRun) -> None:
    contents = _contents(run)
    assert any(c and "X.509" in c for c in contents), contents


def check_command(run: DemoRun) -> None:
    commands = run.payloads("down", "command")
    responses = run.payloads("up", "command_response")
    assert commands and commands[0]["command_name"] == "ringAlarm"
    assert responses, "no command response reached the platform"
    assert responses[0]["result_code"] == 0
    assert responses[0]["paras"]["result"] == "success"
    assert responses[0]["paras"]["echo"] == commands[0]["paras"]
    assert "[platform] command response" in run.stdout


def check_properties(run: DemoRun) -> None:
    reports = run.payloads("up", "properties_report")
    assert any(s["service_id"] == "smokeDetector" and "temperature" in s["properties"]
               for r in reports for s in r["services"]), reports
    assert run.select("down", "properties_set") and run.select("up", "properties_set_response")
    assert run.payloads("up", "properties_set_response")[0]["result_code"] == 0
    gets = run.payloads("up", "properties_get_response")
    assert gets and gets[0]["services"][0]["service_id"] == "smokeDetector"
    # the value the platform wrote is what the device then reports/returns
    assert "alarm" in gets[0]["services"][0]["properties"]


def check_shadow(run: DemoRun) -> None:
    assert run.select("up", "shadow_get")
    rsp = run.payloads("down", "shadow_get_response")
    assert rsp, "no shadow response"
    shadow = rsp[0]["shadow"]
    smoke = [s for s in shadow if s["service_id"] == "smokeDetector"]
    assert smoke and smoke[0]["desired"]["properties"]["alarm"] == 1
    assert "desired={'alarm': 1}" in run.stdout


def check_ntp(run: DemoRun) -> None:
    assert run.events("up", "$time_sync", "time_sync_request")
    assert run.events("down", "$time_sync", "time_sync_response")
    assert "[device] time sync: platform time" in run.stdout


def check_device_info(run: DemoRun) -> None:
    infos = run.events("up", "$sdk_info", "sdk_info_report")
    assert any(e["paras"].get("fw_version") == "v1.0" and e["paras"].get("sw_version") == "v1.0" for e in infos), infos
    # auto_report_device_info: the SDK reported its own version too
    assert len(infos) >= 2, infos


def check_reconnect(run: DemoRun) -> None:
    assert "connect complete (reconnect=True)" in run.stdout
    delivered = {int(c.split()[-1]) for c in _contents(run) if c and c.startswith("message ")}
    buffered = [int(n) for n in re.findall(r"\[device\] reported message (\d+) \(offline: buffered\)", run.stdout)]
    # the first outage ended before the demo did: everything buffered during it reached the platform, in order
    first_outage = run.stdout.split("connection lost", 1)[1].split("connect complete (reconnect=True)", 1)[0]
    buffered_first = [int(n) for n in re.findall(r"reported message (\d+) \(offline", first_outage)]
    assert buffered_first, "nothing was reported while offline"
    assert set(buffered_first) <= delivered, (buffered_first, sorted(delivered))
    order = [int(c.split()[-1]) for c in _contents(run) if c and c.startswith("message ")]
    assert order == sorted(order), order
    for n in buffered_first:
        assert f"buffered message {n} delivered" in run.stdout
    assert set(buffered) >= set(buffered_first)


def check_smoke(run: DemoRun) -> None:
    reports = run.payloads("up", "properties_report")
    props = [s["properties"] for r in reports for s in r["services"] if s["service_id"] == "smokeDetector"]
    assert props and {"alarm", "smokeConcentration", "humidity", "temperature"} <= set(props[0]), props
    responses = run.payloads("up", "command_response")
    assert responses and responses[0]["result_code"] == 0 and responses[0]["paras"] == {"result": "ring success"}
    assert "[platform] <- property report" in run.stdout


def check_message(run: DemoRun) -> None:
    assert "hello, system topic" in _contents(run)
    user = run.select("up", "user")
    assert any(e["payload"] == "hello raw message" for e in user), user
    assert any(e["payload_b64"] == "AQID/w==" for e in user), "binary payload not received"
    policy = run.select("up", "other", topic_contains="policy/")
    assert any(e["payload"] == "hello policy topic" for e in policy), "policy-topic message not received"
    assert run.select("down", "messages_down")
    assert "[device] message from the platform" in run.stdout


def check_delivery(run: DemoRun) -> None:
    out = run.stdout
    assert "[device] system message:" in out
    assert "[device] raw message: 'plain text" in out
    assert "[device] raw message: binary de ad be ef" in out
    assert "reconnect=True" in out
    # a custom-topic message sent after the cut still arrived: the SDK restored the subscription
    after_cut = out.split("connect complete", 1)[-1].split("reconnect=True", 1)[1]
    assert "[device] custom topic" in after_cut, out


def check_custom_topic(run: DemoRun) -> None:
    up = run.select("up", "user", topic_contains="/user/pub")
    assert up and up[0]["payload"].startswith("hello custom topic")
    assert run.select("down", "user", topic_contains="/user/sub")
    assert "[device] received on" in run.stdout


def check_ota(run: DemoRun, event_type: str = "firmware_upgrade") -> None:
    assert run.events("down", "$ota", "version_query")
    assert run.events("down", "$ota", event_type), "no package offered"
    assert run.events("up", "$ota", "version_report")
    progress = run.events("up", "$ota", "upgrade_progress_report")
    assert any(e["paras"].get("result_code") == 0 and e["paras"].get("progress") == 100
               and e["paras"].get("version") == "v2.0" for e in progress), progress


def check_ota_v2(run: DemoRun) -> None:
    check_ota(run, "firmware_upgrade_v2")


def check_file(run: DemoRun) -> None:
    uploads = run.events("up", "$file_manager", "upload_result_report")
    downloads = run.events("up", "$file_manager", "download_result_report")
    assert uploads and uploads[0]["paras"]["result_code"] == 0, uploads
    assert downloads and downloads[0]["paras"]["result_code"] == 0, downloads
    original = (REPO / "iot_device_demo" / "filemanage" / "download" / "upload_test.txt").read_bytes()
    downloaded = list(run.workdir.rglob("download.txt"))
    assert downloaded and downloaded[0].read_bytes() == original


def _check_rule_common(run: DemoRun) -> None:
    assert run.events("up", "$device_rule", "device_rule_config_request")
    assert run.events("down", "$device_rule", "device_rule_config_response")


def check_device_rule(run: DemoRun) -> None:
    _check_rule_common(run)
    assert "[device] rule command" in run.stdout


def check_custom_rule(run: DemoRun) -> None:
    _check_rule_common(run)
    assert "[device] rule actions: DEVICE_CMD" in run.stdout
    assert "ringAlarm" in run.stdout     # the DEVICE_DATA rule fired on a property report
    assert "selfTest" in run.stdout      # the SIMPLE_TIMER rule fired on the device's scheduler


def check_device_config(run: DemoRun) -> None:
    answers = [e["paras"] for e in run.events("up", "$device_config", "config_update_response")]
    assert {"result_code": 0, "description": "applied"} in answers, answers
    assert any(a["result_code"] == 1 for a in answers), answers      # the refused value is reported as such
    assert "[device] configuration applied" in run.stdout


def check_mqtt5_wss(run: DemoRun) -> None:
    assert any(c and c.startswith("hello over MQTT 5 and WSS") for c in _contents(run)), _contents(run)
    assert "[platform] command response" in run.stdout and "'echo'" in run.stdout


def check_broadcast(run: DemoRun) -> None:
    assert run.select("down", "broadcast", topic_contains="$oc/broadcast/test")
    assert "[device] broadcast on $oc/broadcast/test" in run.stdout


def check_tunnel(run: DemoRun) -> None:
    assert run.events("down", "$tunnel_manager", "tunnel_notify"), "no tunnel_notify reached the device"
    assert "[platform] through the tunnel and back: 'hello through the tunnel'" in run.stdout
    assert "[device] tunnel" in run.stdout and "closed by the platform" in run.stdout


def _check_bootstrap(run: DemoRun) -> None:
    assert run.select("up", "bootstrap_up"), "no bootstrap request"
    down = run.payloads("down", "bootstrap_down")
    assert down and "address" in down[0]
    # the written trace never carries a provisioned secret
    assert all(d.get("deviceSecret") in (None, "<redacted>") for d in down), down
    assert "Hello Huawei" in _contents(run)   # then it worked against the assigned IoTDA address


DEMOS: Dict[str, Tuple[str, List[str], Callable[[DemoRun], None]]] = {
    "secret_device_sample": ("device.secret_device_sample", ["--interval", "1"], check_secret),
    "x509_certificate_device_sample": ("device.x509_certificate_device_sample", ["--interval", "1"], check_x509),
    "command_sample": ("command.command_sample", ["--interval", "1"], check_command),
    "properties_sample": ("device.properties_sample", ["--interval", "1"], check_properties),
    "device_shadow_sample": ("device.device_shadow_sample", ["--interval", "1"], check_shadow),
    "ntp_sample": ("device.ntp_sample", ["--interval", "1"], check_ntp),
    "report_device_info_sample": ("device.report_device_info_sample", [], check_device_info),
    "device_reconnect_sample": ("device.device_reconnect_sample",
                                ["--duration", "8", "--interval", "0.5", "--cut-every", "3"], check_reconnect),
    "smoke_detector": ("device.smoke_detector", ["--interval", "1", "--platform-interval", "1"], check_smoke),
    "message_sample": ("message.message_sample", ["--interval", "1"], check_message),
    "message_delivery_sample": ("message.message_delivery_sample", ["--duration", "8", "--interval", "0.4"],
                                check_delivery),
    "custom_topic_sample": ("message.custom_topic_sample", ["--interval", "1"], check_custom_topic),
    "ota_sample": ("ota.ota_sample", [], check_ota),
    "ota_sample_v2": ("ota.ota_sample", ["--v2"], check_ota_v2),
    "file_sample": ("filemanage.file_sample", [], check_file),
    "device_rule_sample": ("rule.device_rule_sample", ["--interval", "1"], check_device_rule),
    "custom_device_rule_sample": ("rule.custom_device_rule_sample", ["--interval", "1"], check_custom_rule),
    "bootstrap_sample": ("bootstrap.bootstrap_sample", [], _check_bootstrap),
    "bootstrap_cert_sample": ("bootstrap.bootstrap_cert_sample", [], _check_bootstrap),
    "bootstrap_groups_sample": ("bootstrap.bootstrap_groups_sample", [], _check_bootstrap),
    "bootstrap_groups_cert_sample": ("bootstrap.bootstrap_groups_cert_sample", [], _check_bootstrap),
    "device_config_sample": ("device_config.device_config_sample", [], check_device_config),
    "broadcast_sample": ("broadcast.broadcast_sample", [], check_broadcast),
    "mqtt5_wss_sample": ("message.mqtt5_wss_sample", ["--interval", "1"], check_mqtt5_wss),
    "tunnel_sample": ("tunnel.tunnel_sample", [], check_tunnel),
    "quickstart": ("quickstart", ["--duration", "5", "--interval", "1", "--platform-interval", "1"], check_smoke),
}


@pytest.fixture(scope="module")
def demo_pool(request, tmp_path_factory):
    """Starts every selected demo of this module at once (4 at a time) and yields the pool."""
    pool = DemoPool(tmp_path_factory.mktemp("demos"), workers=4)
    wanted = [item.callspec.params["name"] for item in request.session.items
              if item.module is request.module and hasattr(item, "callspec") and "name" in item.callspec.params]
    for name in wanted:
        _submit(pool, name)
    yield pool
    pool.close()


def _submit(pool: DemoPool, name: str) -> None:
    module, args, _ = DEMOS[name]
    if "--duration" not in args:
        args = ["--duration", DURATION] + args
    pool.submit(name, module, args)


@pytest.mark.parametrize("name", sorted(DEMOS))
def test_demo_runs_and_platform_sees_traffic(name: str, demo_pool: DemoPool) -> None:
    if name not in demo_pool:   # e.g. selected in an unusual way: run it now
        _submit(demo_pool, name)
    run = demo_pool.result(name)
    assert run.returncode == 0, run.describe()
    assert "threads still running" not in run.stderr, run.describe()
    assert "Traceback" not in run.stderr, run.describe()
    assert " failed: " not in run.stdout, run.describe()   # a device/platform step of the demo raised
    assert run.entries, "no trace written\n" + run.describe()
    try:
        DEMOS[name][2](run)
    except (AssertionError, KeyError, IndexError, TypeError) as exc:
        raise AssertionError(f"{exc!r}\n{run.describe()}") from exc


def test_every_demo_module_is_covered() -> None:
    """The table above names every demo module in iot_device_demo/ (so a new demo cannot go untested)."""
    found = {str(p.relative_to(REPO / "iot_device_demo"))[:-3].replace("/", ".")
             for p in (REPO / "iot_device_demo").rglob("*.py")
             if not p.name.startswith("_") and p.name != "common.py"}
    # the MicroPython demo runs under MicroPython, in tests/micropython/test_demo.py
    assert found == {module for module, _, _ in DEMOS.values()} | {"message.micro_message_sample"}


def test_no_demo_turns_off_tls_verification() -> None:
    bad = re.compile(r"tls_insecure_set\(\s*True|verify\s*=\s*False|CERT_NONE|check_hostname\s*=\s*False")
    offenders = [str(p) for p in (REPO / "iot_device_demo").rglob("*.py") if bad.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_cloud_mode_flags_and_env(emulator, tmp_path) -> None:
    """Cloud mode: the test's emulator plays the cloud; settings come from flags, then from IOTDA_* variables."""
    record = emulator.create_device()
    flags = ["--server-uri", "localhost", "--port", str(emulator.mqtts_port), "--device-id", record["device_id"],
             "--ca-file", emulator.ca_file, "--duration", "2", "--interval", "0.5"]
    run = run_demo("device.secret_device_sample", flags, tmp_path / "flags", local=False,
                   env={"IOTDA_SECRET": record["secret"]})
    assert run.returncode == 0, run.describe()
    assert "emulator" not in run.stdout   # no local emulator was started
    env = {"IOTDA_SERVER_URI": "localhost", "IOTDA_PORT": str(emulator.mqtts_port),
           "IOTDA_DEVICE_ID": record["device_id"], "IOTDA_SECRET": record["secret"], "IOTDA_CA_FILE": emulator.ca_file}
    run2 = run_demo("device.secret_device_sample", ["--duration", "2", "--interval", "0.5"], tmp_path / "env",
                    local=False, env=env)
    assert run2.returncode == 0, run2.describe()
    ups = [e for e in emulator.trace(device_id=record["device_id"], direction="up", kind="messages_up")]
    assert len(ups) >= 2
    assert all(json.loads(e.payload)["content"] == "Hello Huawei" for e in ups)
    assert record["secret"] not in run.stdout + run.stderr + run2.stdout + run2.stderr


def test_cloud_mode_file_transfer_trusts_http_ca_file(emulator, tmp_path) -> None:
    """Cloud mode: HTTPS transfers verify against --http-ca-file (the system trust store would refuse the emulator)."""
    record = emulator.create_device()
    flags = ["--server-uri", "localhost", "--port", str(emulator.mqtts_port), "--device-id", record["device_id"],
             "--ca-file", emulator.ca_file, "--http-ca-file", emulator.ca_file, "--duration", "0"]
    run = run_demo("filemanage.file_sample", flags, tmp_path, local=False, env={"IOTDA_SECRET": record["secret"]})
    assert run.returncode == 0, run.describe()
    files = emulator.service("$file_manager")
    original = (REPO / "iot_device_demo" / "filemanage" / "download" / "upload_test.txt").read_bytes()
    assert files.get_file(record["device_id"], "upload_test.txt") == original
    assert files.wait_result(record["device_id"], "download", "upload_test.txt", timeout=10)["result_code"] == 0
    assert (tmp_path / "download" / "download.txt").read_bytes() == original


def test_cloud_mode_refuses_wrong_secret_clearly(emulator, tmp_path) -> None:
    record = emulator.create_device()
    flags = ["--server-uri", "localhost", "--port", str(emulator.mqtts_port), "--device-id", record["device_id"],
             "--secret", "wrong-secret", "--ca-file", emulator.ca_file, "--duration", "2"]
    run = run_demo("device.secret_device_sample", flags, tmp_path, local=False, timeout=60)
    assert run.returncode == 2, run.describe()
    assert "connect failed: rc=4" in run.stderr


def test_cloud_mode_names_missing_settings(tmp_path) -> None:
    run = run_demo("device.x509_certificate_device_sample", ["--server-uri", "iot.example.invalid"], tmp_path,
                   local=False, timeout=60)
    assert run.returncode == 2, run.describe()
    assert "cloud mode needs --device-id, --cert, --key" in run.stderr


def test_ctrl_c_stops_cleanly(tmp_path) -> None:
    out_file, err_file = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with open(out_file, "w") as out, open(err_file, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "iot_device_demo.device.smoke_detector", "--local",
                                 "--interval", "1", "--trace-out", str(tmp_path / "trace.json")],
                                cwd=str(tmp_path), env=demo_env(), stdout=out, stderr=err, start_new_session=True,
                                # a background shell may have left SIGINT ignored; a terminal would not
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            wait_for_text(out_file, "press Ctrl-C to stop", timeout=60, proc=proc)
            wait_for_text(out_file, "[platform] <- property report", timeout=30, proc=proc)
            # like Ctrl-C in a terminal: SIGINT to the whole process group (the demo and the emulator's broker)
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)   # the group this test started: demo and its broker
                proc.wait()
    stdout, stderr = out_file.read_text(), err_file.read_text()
    assert proc.returncode == 0, stdout + stderr
    assert "stopped cleanly" in stdout
    assert "emulator stopped" in stdout
    assert "Traceback" not in stderr and "threads still running" not in stderr
    assert json.loads((tmp_path / "trace.json").read_text())["entries"]
