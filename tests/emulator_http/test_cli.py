"""``iotda-emulator`` / ``python -m iotda_emulator``: device registry commands and ``start`` as a real process."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time


from tests.emulator_http._cli import ROOT, read_banner
from iotda_emulator import cli
from tests.emulator_http.conftest import RawDevice, make_app_client



def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "iotda_emulator", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def test_device_add_list_delete_without_running_emulator(tmp_path):
    data = str(tmp_path / "data")
    added = run_cli("device", "add", "--product-id", "cli_prod", "--node-id", "n1", "--secret", "cli-secret-1",
                    "--data-dir", data, "--json")
    assert added.returncode == 0, added.stderr
    record = json.loads(added.stdout)
    assert record["device_id"] == "cli_prod_n1" and record["secret"] == "cli-secret-1"

    second = run_cli("device", "add", "--device-id", "cli_dev_2", "--data-dir", data)
    assert second.returncode == 0, second.stderr
    assert "device_id: cli_dev_2" in second.stdout
    assert re.search(r"^secret: \S{8,}$", second.stdout, re.M)            # a generated secret is shown

    dup = run_cli("device", "add", "--device-id", "cli_dev_2", "--data-dir", data)
    assert dup.returncode == 1 and "already exists" in dup.stderr

    listed = run_cli("device", "list", "--data-dir", data, "--json")
    assert listed.returncode == 0, listed.stderr
    assert [d["device_id"] for d in json.loads(listed.stdout)] == ["cli_prod_n1", "cli_dev_2"]

    deleted = run_cli("device", "delete", "cli_prod_n1", "--data-dir", data)
    assert deleted.returncode == 0, deleted.stderr
    listed = run_cli("device", "list", "--data-dir", data)
    assert "cli_prod_n1" not in listed.stdout and "cli_dev_2" in listed.stdout
    assert run_cli("device", "delete", "nope", "--data-dir", data).returncode == 1


def test_bad_arguments_exit_with_usage_error(tmp_path):
    assert run_cli().returncode == 2
    assert run_cli("start", "--mqtt-port", "70000").returncode == 2
    bad_key = run_cli("start", "--app-key", "no-colon", "--data-dir", str(tmp_path))
    assert bad_key.returncode == 2 and "AK:SK" in bad_key.stderr


def test_default_ports_fall_back_to_free_ones_when_taken():
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    taken = holder.getsockname()[1]
    try:
        assert not cli.port_is_free("127.0.0.1", taken)
        original = dict(cli.DEFAULT_PORTS)
        cli.DEFAULT_PORTS.update(mqtt_port=taken)
        try:
            args = cli.build_parser().parse_args(["start", "--http-port", "0"])
            ports = cli._choose_ports(args)
        finally:
            cli.DEFAULT_PORTS.clear()
            cli.DEFAULT_PORTS.update(original)
        assert ports["mqtt_port"] == 0          # taken -> any free port
        assert ports["http_port"] == 0          # explicit value kept
    finally:
        holder.close()


def test_start_prints_listeners_serves_devices_and_stops_on_ctrl_c(tmp_path):
    data = str(tmp_path / "data")
    added = run_cli("device", "add", "--device-id", "cli_live", "--secret", "live-secret-1", "--data-dir", data)
    assert added.returncode == 0, added.stderr
    proc = subprocess.Popen(
        [sys.executable, "-m", "iotda_emulator", "start", "--data-dir", data, "--mqtt-port", "0",
         "--mqtts-port", "0", "--http-port", "0", "--https-port", "0", "--command-timeout", "3"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = read_banner(proc)
        assert "Press Ctrl-C" in banner, banner + (proc.stderr.read() if proc.poll() is not None else "")
        ports = {name: int(port) for name, port in re.findall(r"^\s+(MQTTS?|HTTPS?)\s+\w+://[^:]+:(\d+)", banner, re.M)}
        assert set(ports) == {"MQTT", "MQTTS", "HTTP", "HTTPS"} and all(ports.values())
        ca = re.search(r"CA file\s+(\S+)", banner).group(1)
        assert os.path.isfile(ca)
        assert re.search(r"Data dir\s+" + re.escape(os.path.abspath(data)), banner)

        # the device registered before start, and one registered while it runs, connect with their secrets
        late = run_cli("device", "add", "--device-id", "cli_late", "--secret", "late-secret-1", "--data-dir", data)
        assert late.returncode == 0, late.stderr
        client = make_app_client(f"http://127.0.0.1:{ports['HTTP']}")
        from huaweicloudsdkiotda.v5 import ShowDeviceRequest
        for device_id, secret in (("cli_live", "live-secret-1"), ("cli_late", "late-secret-1")):
            dev = RawDevice("127.0.0.1", ports["MQTT"], device_id, secret).connect()
            try:
                deadline = time.monotonic() + 10
                while client.show_device(ShowDeviceRequest(device_id=device_id)).status != "ONLINE":
                    assert time.monotonic() < deadline, "device never shown ONLINE"
                    time.sleep(0.1)
            finally:
                dev.close()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "Stopped." in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_start_fails_cleanly_when_an_explicit_port_is_taken(tmp_path):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    try:
        result = run_cli("start", "--data-dir", str(tmp_path / "d"), "--mqtt-port", "0", "--mqtts-port", "0",
                         "--https-port", "0", "--http-port", str(holder.getsockname()[1]))
    finally:
        holder.close()
    assert result.returncode == 1
    assert "could not start" in result.stderr


def test_start_tunes_the_collector_only_in_its_own_process():
    # `iotda-emulator start` raises the young-generation threshold (doc/performance.md, "The emulator"); importing
    # the emulator into another program does not touch the collector
    code = ("import gc; before = gc.get_threshold(); import iotda_emulator.cli as cli, iotda_emulator; "
            "assert gc.get_threshold() == before, 'import changed the collector'; "
            "cli.tune_collector(); after = gc.get_threshold(); "
            "print(after[0], after[1] == before[1] and after[2] == before[2])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    from iotda_emulator.cli import SERVER_GC_THRESHOLD0
    assert out.stdout.split() == [str(SERVER_GC_THRESHOLD0), "True"]
