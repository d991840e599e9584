"""Addresses, certificates, ShowDevice connection fields and the data-directory lock, with real sockets.

* the server certificate covers the configured ``--host`` (IP or DNS SAN) besides localhost/127.0.0.1, and is
  issued again (same CA) when the host changes;
* ``--host 0.0.0.0`` listens everywhere but advertises a reachable name; file URLs handed to a device use it
  and verify with the emulator's CA (host-name check on);
* ShowDevice: ``INACTIVE`` until the first connection, then ONLINE/OFFLINE; ``active_time`` is the first
  activation, ``connection_status_update_time`` moves on every change (UTC ``yyyyMMdd'T'HHmmss'Z'``);
* one data directory, one emulator: a second one is refused with a clear message, also from the CLI, and a
  SIGKILLed holder leaves the directory free.

Devices here are bare paho-mqtt clients (no SDK import).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import queue
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
import requests
from cryptography import x509
from paho.mqtt.enums import CallbackAPIVersion

from tests.emulator_http._cli import ROOT, read_banner
from iotda_emulator import Emulator
from iotda_emulator.certs import cert_names
from iotda_emulator.datalock import DataDirInUse

EVENT_TIME = re.compile(r"^\d{8}T\d{6}Z$")


def _server_cert_names(emu) -> list:
    with open(emu.certs.server_cert_file, "rb") as fh:
        return cert_names(x509.load_pem_x509_certificate(fh.read()))


def _tls_handshake(host: str, port: int, ca_file: str) -> None:
    """A TLS handshake that verifies the chain and the host name ``host``."""
    ctx = ssl.create_default_context(cafile=ca_file)
    with socket.create_connection((host, port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=host):
            pass


def _resolvable_hostname() -> str:
    name = socket.gethostname()
    try:
        socket.getaddrinfo(name, None)
    except socket.gaierror:
        pytest.skip(f"this machine's host name {name!r} does not resolve")
    return name


class Device:
    """A plain paho device (secret authentication, doc/protocol.md §1.2)."""

    def __init__(self, host: str, port: int, device_id: str, secret: str, ca_file=None) -> None:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d%H")
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{device_id}_0_0_{stamp}",
                                  protocol=mqtt.MQTTv311)
        self.client.username_pw_set(device_id, hmac.new(stamp.encode(), secret.encode(),
                                                        hashlib.sha256).hexdigest())
        if ca_file:
            self.client.tls_set_context(ssl.create_default_context(cafile=ca_file))
        self.host, self.port, self.device_id = host, port, device_id
        self.connack: "queue.Queue" = queue.Queue()
        self.messages: "queue.Queue[mqtt.MQTTMessage]" = queue.Queue()
        self.client.on_connect = lambda c, u, f, rc, p: self.connack.put(rc)
        self.client.on_message = lambda c, u, m: self.messages.put(m)

    def connect(self) -> "Device":
        self.client.connect(self.host, self.port, keepalive=60)
        self.client.loop_start()
        rc = self.connack.get(timeout=15)
        assert not rc.is_failure, rc
        return self

    def close(self) -> None:
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()


# ---- certificates cover the configured host -------------------------------------------------------------

def test_certificate_covers_a_dns_host_and_is_reissued_for_a_new_host(tmp_path):
    name = _resolvable_hostname()
    data = str(tmp_path / "data")
    emu = Emulator(data_dir=data, host=name, http=False).start()
    try:
        names = _server_cert_names(emu)
        assert {name.lower(), "localhost", "127.0.0.1"} <= set(names)
        assert emu.advertise_host == name
        _tls_handshake(name, emu.mqtts_port, emu.ca_file)
        with open(emu.ca_file, "rb") as fh:
            ca_before = fh.read()
    finally:
        emu.stop()
    try:
        socket.socket().bind(("127.0.0.2", 0))
    except OSError:
        pytest.skip("127.0.0.2 cannot be bound here; the IP-SAN half of this test needs it")
    emu = Emulator(data_dir=data, host="127.0.0.2", http=False).start()
    try:
        assert "127.0.0.2" in _server_cert_names(emu)              # an IP SAN for an IP host
        with open(emu.ca_file, "rb") as fh:
            assert fh.read() == ca_before                          # same CA: clients keep trusting it
        _tls_handshake("127.0.0.2", emu.mqtts_port, emu.ca_file)
        bs = emu.service("$bootstrap")
        assert bs.host == "127.0.0.2"
        _tls_handshake(bs.host, bs.port, emu.ca_file)
    finally:
        emu.stop()


# ---- 0.0.0.0: listen everywhere, advertise a reachable name ------------------------------------------------

@pytest.fixture(scope="module")
def everywhere(tmp_path_factory):
    name = _resolvable_hostname()
    emu = Emulator(data_dir=str(tmp_path_factory.mktemp("wild")), host="0.0.0.0", command_timeout=5).start()
    try:
        assert emu.advertise_host == name
        yield emu
    finally:
        emu.stop()


def test_wildcard_host_advertises_a_name_the_certificate_covers(everywhere):
    name = everywhere.advertise_host
    assert name not in ("0.0.0.0", "localhost")
    assert name.lower() in _server_cert_names(everywhere)
    for port in (everywhere.mqtts_port, everywhere.https_port):
        _tls_handshake(name, port, everywhere.ca_file)
        _tls_handshake("127.0.0.1", port, everywhere.ca_file)      # still reachable on loopback
    assert everywhere.https_url == f"https://{name}:{everywhere.https_port}"
    bs = everywhere.service("$bootstrap")
    assert bs.host == name and bs.iotda_address() == f"{name}:{everywhere.mqtts_port}"


def test_file_url_given_to_a_device_uses_the_advertised_name_and_verifies(everywhere):
    rec = everywhere.create_device()
    device_id = rec["device_id"]
    content = uuid.uuid4().bytes * 8
    everywhere.service("$file_manager").put_file(device_id, "cfg.bin", content)
    dev = Device(everywhere.advertise_host, everywhere.mqtts_port, device_id, rec["secret"],
                 ca_file=everywhere.ca_file).connect()
    try:
        dev.client.subscribe(f"$oc/devices/{device_id}/sys/events/down", qos=1)
        assert everywhere.wait_online(device_id, 10)
        request = {"services": [{"service_id": "$file_manager", "event_type": "get_download_url",
                                 "event_time": dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ"),
                                 "paras": {"file_name": "cfg.bin"}}]}
        deadline = time.monotonic() + 15
        url = None
        dev.client.publish(f"$oc/devices/{device_id}/sys/events/up", json.dumps(request), qos=1)
        while url is None:
            msg = dev.messages.get(timeout=max(0.1, deadline - time.monotonic()))
            for svc in json.loads(msg.payload).get("services", []):
                if svc.get("event_type") == "get_download_url_response":
                    url = svc["paras"]["url"]
    finally:
        dev.close()
        everywhere.delete_device(device_id)
    assert url.startswith(f"https://{everywhere.advertise_host}:{everywhere.https_port}/")
    got = requests.get(url, verify=everywhere.ca_file, timeout=10)   # chain + host name verified
    assert got.status_code == 200 and got.content == content


# ---- ShowDevice: status, active_time, connection_status_update_time --------------------------------------

def _show(emu, device_id: str) -> dict:
    r = requests.get(f"{emu.http_url}/v5/iot/emu-project/devices/{device_id}", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_show_device_status_and_connection_times(emulator):
    rec = emulator.create_device()
    device_id = rec["device_id"]
    try:
        shown = _show(emulator, device_id)
        assert shown["status"] == "INACTIVE"                       # registered, never connected
        assert shown["active_time"] is None and shown["connection_status_update_time"] is None

        dev = Device(emulator.host, emulator.mqtt_port, device_id, rec["secret"]).connect()
        try:
            assert emulator.wait_online(device_id, 10)
            online = _show(emulator, device_id)
            first = emulator.get_device(device_id)
        finally:
            dev.close()
        assert online["status"] == "ONLINE"
        assert EVENT_TIME.match(online["active_time"]) and EVENT_TIME.match(online["connection_status_update_time"])
        assert first["active_time"] == first["status_time"]         # activation is that first online change
        assert abs(first["active_time"] - time.time()) < 60
        # the ShowDevice text is the stored UTC time
        assert online["active_time"] == time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(first["active_time"]))

        assert emulator.wait_offline(device_id, 10)
        offline = _show(emulator, device_id)
        after_off = emulator.get_device(device_id)
        assert offline["status"] == "OFFLINE"
        assert after_off["status_time"] > first["status_time"]      # moved on the offline change
        assert offline["active_time"] == online["active_time"]

        dev = Device(emulator.host, emulator.mqtt_port, device_id, rec["secret"]).connect()
        try:
            assert emulator.wait_online(device_id, 10)
            again = emulator.get_device(device_id)
        finally:
            dev.close()
        assert again["status_time"] > after_off["status_time"]      # and on the next online change
        assert again["active_time"] == first["active_time"]         # activation stays the first one
        assert emulator.wait_offline(device_id, 10)
    finally:
        emulator.delete_device(device_id)


# ---- one data directory, one emulator -----------------------------------------------------------------------

def test_second_emulator_on_the_same_directory_is_refused(tmp_path):
    data = str(tmp_path / "data")
    first = Emulator(data_dir=data, http=False).start()
    try:
        second = Emulator(data_dir=data, http=False)
        with pytest.raises(DataDirInUse) as err:
            second.start()
        assert "in use by another emulator" in str(err.value) and f"pid {os.getpid()}" in str(err.value)
        second.stop()                    # harmless; must not touch the first one's files
        assert first.is_online("nobody") is False and os.path.exists(os.path.join(data, "emulator.sqlite3"))
    finally:
        first.stop()
    third = Emulator(data_dir=data, http=False).start()      # released on stop
    third.stop()


def _cli_start(data: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "iotda_emulator", "start", "--data-dir", data, "--mqtt-port", "0",
         "--mqtts-port", "0", "--http-port", "0", "--https-port", "0", "--bootstrap-port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_cli_refuses_a_second_emulator_and_a_killed_one_frees_the_directory(tmp_path):
    data = str(tmp_path / "data")
    first = _cli_start(data)
    try:
        banner = read_banner(first)
        assert "Press Ctrl-C" in banner, banner
        second = subprocess.run([sys.executable, "-m", "iotda_emulator", "start", "--data-dir", data,
                                 "--mqtt-port", "0", "--mqtts-port", "0", "--http-port", "0", "--https-port", "0"],
                                cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert "in use by another emulator" in second.stderr and f"pid {first.pid}" in second.stderr
        first.send_signal(signal.SIGKILL)          # no clean-up at all: the kernel drops the lock
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
        first.communicate()
    third = _cli_start(data)
    try:
        banner = read_banner(third)
        assert "Press Ctrl-C" in banner, banner + (third.stderr.read() if third.poll() is not None else "")
        third.send_signal(signal.SIGINT)
        out, err = third.communicate(timeout=30)
        assert third.returncode == 0, err
    finally:
        if third.poll() is None:
            third.kill()
            third.communicate()
