"""``iotda-emulator start`` address flags: --bootstrap-host/--bootstrap-port, --advertise-host, the banner lines."""
from __future__ import annotations

import re
import signal
import socket
import ssl
import subprocess
import sys

import pytest

from tests.emulator_http._cli import ROOT, read_banner
from iotda_emulator import cli

ALIAS_OK = cli.address_is_local(cli.BOOTSTRAP_LOOPBACK)
NO_ALIAS = "127.0.0.2 cannot be bound on this system (Linux routes all of 127/8 to lo; stock macOS does not)"


def _start(*extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "iotda_emulator", "start", "--mqtt-port", "0", "--mqtts-port", "0",
         "--http-port", "0", "--https-port", "0", *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
    assert proc.returncode == 0


def _line(banner: str, label: str) -> re.Match:
    m = re.search(rf"^\s+{label}\s+\w+://(?P<host>[^:\s]+):(?P<port>\d+)", banner, re.M)
    assert m, banner
    return m


def _handshake(host: str, port: int, ca_file: str) -> None:
    ctx = ssl.create_default_context(cafile=ca_file)
    with socket.create_connection((host, port), timeout=10) as raw, ctx.wrap_socket(raw, server_hostname=host):
        pass


def test_bootstrap_choice_rules():
    parse = cli.build_parser().parse_args
    explicit = cli._choose_bootstrap(parse(["start", "--bootstrap-host", "127.0.0.1", "--bootstrap-port", "0"]))
    assert explicit == {"bootstrap_host": "127.0.0.1", "bootstrap_port": 0}
    shared = cli._choose_bootstrap(parse(["start", "--host", "127.0.0.1", "--bootstrap-host", "127.0.0.1"]))
    assert shared["bootstrap_host"] == "127.0.0.1"
    assert shared["bootstrap_port"] in (cli.DEFAULT_BOOTSTRAP_PORT, 0)       # its own port on a shared host
    auto = cli._choose_bootstrap(parse(["start"]))
    if ALIAS_OK:
        assert auto == {"bootstrap_host": "127.0.0.2", "bootstrap_port": None}   # None: IoTDA's MQTTS port
    else:
        assert auto["bootstrap_host"] == "127.0.0.1"


@pytest.mark.skipif(not ALIAS_OK, reason=NO_ALIAS)
def test_default_bootstrap_is_a_second_loopback_host_on_the_mqtts_port(tmp_path):
    proc = _start("--data-dir", str(tmp_path / "d"))
    try:
        banner = read_banner(proc)
        assert "Press Ctrl-C" in banner, banner + (proc.stderr.read() if proc.poll() is not None else "")
        mqtts = _line(banner, "MQTTS")
        boot = _line(banner, "Bootstrap")
        assert boot["host"] == "127.0.0.2" and boot["port"] == mqtts["port"]
        assert f"answers 127.0.0.1:{mqtts['port']}" in banner       # the IoTDA address it hands out
        ca = re.search(r"CA file\s+(\S+)", banner).group(1)
        _handshake("127.0.0.2", int(boot["port"]), ca)               # certificate covers the bootstrap host
        _handshake("127.0.0.1", int(mqtts["port"]), ca)
    finally:
        _stop(proc)


def test_explicit_bootstrap_port_and_advertised_host_on_a_wildcard(tmp_path):
    proc = _start("--data-dir", str(tmp_path / "d"), "--host", "0.0.0.0", "--advertise-host", "127.0.0.1",
                  "--bootstrap-port", "0")
    try:
        banner = read_banner(proc)
        assert "Press Ctrl-C" in banner, banner + (proc.stderr.read() if proc.poll() is not None else "")
        for label in ("MQTT", "MQTTS", "HTTP", "HTTPS", "Bootstrap"):
            assert _line(banner, label)["host"] == "127.0.0.1", label
        assert "Listening  on 0.0.0.0, advertised as 127.0.0.1" in banner
        boot, mqtts = _line(banner, "Bootstrap"), _line(banner, "MQTTS")
        assert boot["port"] != mqtts["port"]                          # same host: a port of its own
        ca = re.search(r"CA file\s+(\S+)", banner).group(1)
        _handshake("127.0.0.1", int(boot["port"]), ca)
    finally:
        _stop(proc)
