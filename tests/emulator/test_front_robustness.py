"""The access front and broker under hostile or unlucky conditions (issue: emulator robustness).

- a PUBACK means the platform has the report, also right after a broker restart;
- the internal broker is not reachable by other local processes;
- memory is bounded before authentication (CONNECT size, waiting connections) and after it (a device
  that never reads its socket).
"""
from __future__ import annotations

import os
import socket
import stat
import struct
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from iotda_emulator import Emulator
from iotda_emulator.access_front import hmac_password
from iotda_emulator.mqtt_packets import ConnectInfo, encode_connect, encode_varint
from iotda_emulator.protocol import topics
from tests.emulator.bare_device import RecordingDevice as BareDevice, hour_stamp


def _connect_until_accepted(emu, rec, deadline: float) -> mqtt.Client:
    """Connect again and again (as a device with a very short backoff would) until CONNACK 0."""
    while time.monotonic() < deadline:
        ts = hour_stamp()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{rec['device_id']}_0_0_{ts}",
                        reconnect_on_failure=False)
        c.username_pw_set(rec["device_id"], hmac_password(rec["secret"], ts))
        accepted = threading.Event()
        done = threading.Event()

        def on_connect(client, userdata, flags, rc, props, accepted=accepted, done=done):
            if not rc.is_failure:
                accepted.set()
            done.set()
        c.on_connect = on_connect
        c.on_disconnect = lambda *a, done=done: done.set()
        try:
            c.connect(emu.host, emu.mqtt_port, keepalive=60)
        except OSError:
            time.sleep(0.01)
            continue
        c.loop_start()
        done.wait(10)
        if accepted.is_set():
            return c
        c.loop_stop()
        time.sleep(0.01)
    raise AssertionError("never accepted")


def test_every_report_acknowledged_right_after_a_broker_restart_reaches_the_platform(fresh_emulator):
    emu = fresh_emulator
    rec = emu.create_device()
    emu.broker.kill()
    emu.core.wait_disconnected(10)
    result = {}

    def device():
        c = _connect_until_accepted(emu, rec, time.monotonic() + 20)
        acked = []
        for i in range(100):
            payload = f"r{i}".encode()
            info = c.publish(topics.messages_up(rec["device_id"]), payload, qos=1)
            try:
                info.wait_for_publish(5)
            except (RuntimeError, ValueError):
                break
            if info.is_published():
                acked.append(payload)
        result["acked"] = acked
        c.disconnect()
        c.loop_stop()
    t = threading.Thread(target=device)
    t.start()
    emu.broker.restart()   # the device races the platform core back in
    t.join(30)
    acked = result["acked"]
    assert acked, "the device never got a report acknowledged"
    assert emu.core.wait_connected(10)
    deadline = time.monotonic() + 10
    while True:
        traced = {e.payload for e in emu.trace(rec["device_id"], direction="up")}
        missing = [p for p in acked if p not in traced]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged reports never reached the platform"


def test_the_internal_broker_is_not_reachable_from_outside(emulator):
    broker = emulator.broker
    path = broker.address.path
    assert path and stat.S_ISSOCK(os.stat(path).st_mode)
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    with open(broker.conf_file) as fh:
        listeners = [line for line in fh if line.startswith("listener")]
    assert listeners == [f"listener 0 {path}\n"], "no TCP listener at all"
    # the platform's account name is drawn per run, and a device can never take it
    assert broker.service_account.startswith("platform-") and len(broker.service_account) > 20
    assert broker.service_account not in open(broker.conf_file).read()


def test_a_device_cannot_claim_the_platform_account(emulator):
    for name in ("platform", emulator.broker.service_account):
        ts = hour_stamp()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{name}_0_0_{ts}", reconnect_on_failure=False)
        c.username_pw_set(name, "0" * 64)
        codes = []
        got = threading.Event()
        c.on_connect = lambda cl, u, f, rc, p: (codes.append(rc), got.set())
        c.connect(emulator.host, emulator.mqtt_port, 60)
        c.loop_start()
        assert got.wait(5)
        c.loop_stop()
        assert codes[0].is_failure


def _connect_packet(rec: dict, keepalive: int) -> bytes:
    """An MQTT 3.1.1 CONNECT (clean session) as an IoTDA device with a secret sends it."""
    ts = hour_stamp()
    info = ConnectInfo("MQTT", 4, 0x02, keepalive, f"{rec['device_id']}_0_0_{ts}", rec["device_id"],
                       hmac_password(rec["secret"], ts).encode())
    return encode_connect(info)


def _raw(emu) -> socket.socket:
    s = socket.create_connection((emu.host, emu.mqtt_port), timeout=5)
    return s


def _closed_by_peer(s: socket.socket, within: float = 5.0) -> bool:
    s.settimeout(within)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_an_oversized_connect_is_refused_before_its_body_arrives(emulator):
    s = _raw(emulator)
    try:
        # CONNECT announcing 2 MB (remaining length 0x200000) and then nothing more
        s.sendall(bytes([0x10, 0x80, 0x80, 0x80, 0x01]))
        assert _closed_by_peer(s)
    finally:
        s.close()


def test_connections_waiting_to_authenticate_are_capped():
    emu = Emulator(command_timeout=5.0, http=False).start()
    emu.front.max_pending_connects = 20
    idle = []
    try:
        for _ in range(20):
            idle.append(_raw(emu))
        time.sleep(0.3)  # let the front accept them all
        extra = _raw(emu)
        assert _closed_by_peer(extra, 3), "a connection over the cap is closed at once"
        extra.close()
        assert not _closed_by_peer(idle[0], 0.2), "those already waiting keep their CONNECT timeout"
        for s in idle:
            s.close()
        time.sleep(0.3)
        dev = BareDevice(emu, emu.create_device()).connect()   # served again once the flood is gone
        dev.close()
    finally:
        for s in idle:
            s.close()
        emu.stop()


def test_a_device_that_never_reads_is_cut_off_as_a_slow_consumer(fresh_emulator):
    emu = fresh_emulator
    emu.add_topic_policy("loop/%u/#")
    emu.front.max_queued_bytes = 2 * 1024 * 1024
    rec = emu.create_device()
    s = _raw(emu)
    # a small receive buffer: the kernel cannot soak up what the device refuses to read
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(_connect_packet(rec, keepalive=60))
    assert s.recv(4)[:2] == b"\x20\x02"
    topic = f"loop/{rec['device_id']}/x".encode()
    sub = struct.pack("!H", 1) + struct.pack("!H", len(topic)) + topic + b"\x00"
    s.sendall(bytes([0x82, len(sub)]) + sub)
    payload = b"z" * 256 * 1024
    pub_body = struct.pack("!H", len(topic)) + topic + payload
    header = bytes([0x30]) + encode_varint(len(pub_body))
    s.settimeout(5)
    cut = False
    try:
        for _ in range(400):   # up to 100 MB echoed back at a device that reads nothing
            s.sendall(header + pub_body)
    except OSError:
        cut = True
    finally:
        s.close()
    entry = emu.wait_for_trace(lambda e: e.kind == "violation" and e.device_id == rec["device_id"], timeout=10)
    assert entry.json()["reason"] == "slow_consumer"
    assert cut or not emu.is_online(rec["device_id"])
    assert emu.wait_offline(rec["device_id"], 5)


def test_a_socket_that_never_sends_connect_is_closed_after_the_connect_timeout():
    emu = Emulator(command_timeout=5.0, http=False).start()
    emu.front.connect_timeout = 1.0
    try:
        s = _raw(emu)
        started = time.monotonic()
        assert _closed_by_peer(s, 5)
        assert time.monotonic() - started < 4
        s.close()
    finally:
        emu.stop()


@pytest.mark.slow
def test_a_silent_device_is_dropped_after_one_and_a_half_keepalives(emulator):
    """IoTDA's idle rule (1.5 x keep-alive, at least 30 s): a device that stops sending goes offline."""
    rec = emulator.create_device()
    s = _raw(emu := emulator)
    try:
        s.sendall(_connect_packet(rec, keepalive=30))   # then silence
        assert s.recv(4)[:2] == b"\x20\x02"
        assert emu.wait_online(rec["device_id"], 5)
        started = time.monotonic()
        assert _closed_by_peer(s, 60)
        assert 44 <= time.monotonic() - started <= 60
        assert emu.wait_offline(rec["device_id"], 5)
    finally:
        s.close()
        emu.delete_device(rec["device_id"])
