"""Durable queue vs. a crash with messages in flight (issue 14, item 1): a real device process makes 300
QoS 1 reports on a half-open link (it still believes it is online, nothing is acknowledged), is SIGKILLed,
and a new process with the same queue file restarts. The platform must receive all 300 (duplicates are
allowed, loss is not)."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys

from iot_device_sdk_python.protocol import codec, topics
from tests.reliability._harness import record_figures, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
N = 300


def _start(emulator, rec, queue, n):
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reliability._inflight_proc", "--host", emulator.host, "--port",
         str(emulator.mqtt_port), "--device-id", rec["device_id"], "--secret", rec["secret"], "--queue", queue,
         "-n", str(n)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def _received(emulator, device_id):
    out = []
    for e in emulator.trace(device_id, "up", topics.PROPERTIES_REPORT):
        try:
            for s in codec.loads_object(e.payload).get("services") or []:
                if s.get("service_id") == "rel":
                    out.append(int(s["properties"]["seq"]))
        except (ValueError, KeyError, TypeError):
            continue
    return out


def _kill(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def test_reports_in_flight_on_a_half_open_link_survive_sigkill(emulator, tmp_path):
    queue = str(tmp_path / "device-queue.sqlite3")
    rec = emulator.create_device()
    did = rec["device_id"]
    first = _start(emulator, rec, queue, N)
    try:
        assert first.stdout.readline().split()[0] == "CONNECTED"
        assert emulator.pause(did)  # half-open: nothing forwarded, nothing closed
        first.stdin.write("go\n")
        first.stdin.flush()
        assert first.stdout.readline().split() == ["REPORTED", "True"]  # the SDK still thinks it is online
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        _kill(first)
    assert _received(emulator, did) == []  # nothing got through the paused link
    with sqlite3.connect(queue) as db:
        stored = db.execute("SELECT COUNT(*) FROM offline_queue").fetchone()[0]
    assert stored >= N  # every report is on disk (plus any system message of the first connect)
    second = _start(emulator, rec, queue, 0)
    try:
        word, restored = second.stdout.readline().split()
        assert word == "CONNECTED" and int(restored) == stored
        wait_until(lambda: set(range(N)) <= set(_received(emulator, did)), 30, what="all 300 reports delivered")
    finally:
        _kill(second)
    got = _received(emulator, did)
    record_figures("durable queue: SIGKILL with 300 reports in flight on a half-open link, restart", dict(
        sent=N, delivered=len(set(got)), duplicated=len(got) - len(set(got)), lost=N - len(set(got)), faults=1))
    first_seen = []
    for s in got:
        if s not in first_seen:
            first_seen.append(s)
    assert first_seen == list(range(N))  # first deliveries in publish order
    emulator.delete_device(did)
