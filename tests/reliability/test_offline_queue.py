"""Durable offline queue (``ConnectAuthInfo.offline_queue_path``): survives SIGKILL, keeps order, bounded."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys

import pytest

from iot_device_sdk_python.transport.publish_handle import PublishError
from iot_device_sdk_python.transport.raw_message import RawMessage
from iot_device_sdk_python.protocol import topics
from tests.reliability._harness import Stream, record_figures, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _rows(path):
    with sqlite3.connect(path) as db:
        return db.execute("SELECT COUNT(*) FROM offline_queue").fetchone()[0]


def test_queue_survives_sigkill_and_is_sent_in_order_by_next_process(emulator, make_device, tmp_path):
    n = 50
    queue = str(tmp_path / "device-queue.sqlite3")
    rec = emulator.create_device()
    did = rec["device_id"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.reliability._queue_proc", "--host", emulator.host, "--port",
         str(emulator.mqtt_port), "--device-id", did, "--secret", rec["secret"], "--queue", queue, "-n", str(n)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "CONNECTED"
        emulator.freeze_device(did)  # reconnects are refused (CONNACK 5): the link stays down
        emulator.cut(did)  # (freezing may already have closed it)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        word, size = proc.stdout.readline().split()
        # >= n: a system message the device made at connect may wait there too
        assert word == "QUEUED" and int(size) >= n
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    stored = _rows(queue)
    assert stored == int(size)  # on disk after the crash
    emulator.freeze_device(did, False)
    device = make_device(record=rec, offline_queue_path=queue)
    stream = Stream(device)
    wait_until(lambda: len(stream.received(emulator)) >= n, 15)
    got = stream.received(emulator)
    metrics = device.get_client().get_buffer_metrics()
    record_figures("durable queue: SIGKILL while offline, restart", dict(
        sent=n, delivered=len(set(got)), duplicated=len(got) - len(set(got)), lost=n - len(set(got)), faults=1))
    assert got == list(range(n))
    assert metrics.restored == stored and metrics.durable
    wait_until(lambda: device.get_client().get_buffer_metrics().sent == stored, 5)
    # the SDK counts a message as sent, then deletes its row (outside its lock): wait for the delete
    wait_until(lambda: _rows(queue) == 0, 5, what="every restored row deleted from the queue file")
    # new reports still work and go after the restored ones
    stream.handles = [None] * n  # type: ignore[list-item] - numbering continues after process A's
    stream.send(3)
    for h in stream.handles[n:]:
        h.result(10)
    wait_until(lambda: stream.received(emulator) == list(range(n + 3)), 10)


def test_durable_queue_is_bounded_drops_oldest_and_fails_its_handle(emulator, make_device, tmp_path):
    queue = str(tmp_path / "q.sqlite3")
    device = make_device(connect=False, offline_queue_path=queue, offline_queue_max=4)
    did = device.get_device_id()
    client = device.get_client()
    handles = [client.publish_raw_message(RawMessage(topics.user_topic(did, "q"), str(i).encode(), 1))
               for i in range(7)]
    for h in handles[:3]:
        assert h.exception(2).reason == PublishError.REASON_BUFFER_OVERFLOW
    assert not any(h.done() for h in handles[3:])
    m = client.get_buffer_metrics()
    assert (m.queued, m.dropped, m.size, m.durable) == (7, 3, 4, True)
    assert _rows(queue) == 4
    assert device.connect() == 0
    for h in handles[3:]:
        h.result(10)
    wait_until(lambda: [e.payload for e in emulator.trace(did, "up") if e.topic.endswith("/user/q")]
               == [b"3", b"4", b"5", b"6"], 10)
    m = client.get_buffer_metrics()
    assert (m.sent, m.size) == (4, 0)
    # rows of acknowledged messages are deleted in batches, a few ms after their PUBACK
    wait_until(lambda: _rows(queue) == 0, 5, what="acknowledged rows deleted")


def test_requeued_in_flight_messages_keep_order_on_disk(emulator, make_device, tmp_path):
    """Messages in flight when the link drops go back to the durable queue in publish order."""
    queue = str(tmp_path / "q.sqlite3")
    device = make_device(offline_queue_path=queue, max_backoff=500, min_backoff=100)
    did = device.get_device_id()
    stream = Stream(device)
    emulator.pause(did)
    stream.send(5)  # in flight on a half-open link
    emulator.cut(did)
    stream.send(5)  # offline
    stream.settle(20)
    wait_until(lambda: sorted(set(stream.received(emulator))) == list(range(10)), 10)
    got = stream.received(emulator)
    first = []
    for s in got:
        if s not in first:
            first.append(s)
    assert first == list(range(10))
    wait_until(lambda: _rows(queue) == 0, 5, what="acknowledged rows deleted (batched)")


@pytest.mark.parametrize("field,value", [("offline_queue_max", 0), ("offline_queue_max", "10"),
                                         ("ack_timeout", -1), ("ack_timeout", "5")])
def test_reliability_options_are_validated(emulator, make_device, field, value):
    with pytest.raises(ValueError, match=field):
        make_device(connect=False, **{field: value})


def test_unwritable_queue_path_is_a_clear_error(emulator, make_device, tmp_path):
    folder = tmp_path / "dir"
    folder.mkdir()
    with pytest.raises(ValueError, match="offline_queue_path"):
        make_device(connect=False, offline_queue_path=str(folder))  # a directory, not a file
