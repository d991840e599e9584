"""The message trace: SQL filters, limits, indexes, and wait_for_trace reading each entry once."""
from __future__ import annotations

import collections
import threading
import time

import pytest

from iot_device_sdk_python.protocol import topics
from tests.emulator.helpers import online_device, wait_until


@pytest.fixture
def device(emulator):
    dev = online_device(emulator)
    yield dev
    dev.close()
    emulator.delete_device(dev.device_id)


def _publish_n(dev, n, start=0):
    for i in range(start, start + n):
        dev.publish(topics.messages_up(dev.device_id), f"m{i}".encode())


def test_filters_limit_newest_since_and_cursor(emulator, device):
    did = device.device_id
    t0 = time.time()
    _publish_n(device, 5)
    emulator.send_message(did, b"down")
    wait_until(lambda: len(emulator.trace(device_id=did, kind=topics.MESSAGES_UP)) == 5)
    ups = emulator.trace(device_id=did, direction="up", kind=topics.MESSAGES_UP)
    assert [e.payload for e in ups] == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    assert [e.payload for e in emulator.trace(device_id=did, kind=topics.MESSAGES_UP, limit=2)] == [b"m0", b"m1"]
    assert [e.payload for e in emulator.trace(device_id=did, kind=topics.MESSAGES_UP, limit=2, newest=True)] \
        == [b"m3", b"m4"]
    assert [e.payload for e in emulator.trace(device_id=did, kind=topics.MESSAGES_UP, since_id=ups[2].id)] \
        == [b"m3", b"m4"]
    assert all(e.time >= t0 for e in emulator.trace(device_id=did, since=t0))
    assert emulator.trace(device_id=did, since=time.time() + 60) == []
    downs = emulator.trace(device_id=did, direction="down", kind=topics.MESSAGES_DOWN)
    assert [e.payload for e in downs] == [b"down"]
    assert emulator.core.last_trace_id >= max(e.id for e in ups + downs)


def test_trace_filters_use_indexes(emulator):
    plan = emulator.core.db.query(
        "EXPLAIN QUERY PLAN SELECT * FROM trace WHERE id > 0 AND device_id = 'x' ORDER BY id")
    assert any("trace_device" in r["detail"] for r in plan), [r["detail"] for r in plan]
    names = {r["name"] for r in emulator.core.db.query("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"trace_device", "trace_kind", "trace_time"} <= names


def test_wait_for_trace_reads_each_entry_once_and_wakes_on_new_ones(emulator, device):
    did = device.device_id
    _publish_n(device, 3)
    wait_until(lambda: len(emulator.trace(device_id=did, kind=topics.MESSAGES_UP)) == 3)
    seen = collections.Counter()

    def predicate(entry):
        seen[entry.id] += 1
        return entry.device_id == did and entry.payload == b"late"

    later = threading.Timer(0.3, lambda: device.publish(topics.messages_up(did), b"late"))
    later.start()
    try:
        found = emulator.wait_for_trace(predicate, timeout=10)
    finally:
        later.join()
    assert found.payload == b"late" and found.kind == topics.MESSAGES_UP
    assert seen and max(seen.values()) == 1  # no entry was examined twice: a cursor, not rescans
    # past entries are found too, and since_id skips what the caller has already looked at
    first = emulator.wait_for_trace(lambda e: e.device_id == did and e.payload == b"m0", timeout=1)
    with pytest.raises(TimeoutError):
        emulator.wait_for_trace(lambda e: e.id == first.id, timeout=0.3, since_id=first.id)


def test_wait_for_trace_pages_through_a_big_backlog(emulator, device):
    did = device.device_id
    emulator.core.db.executemany(
        "INSERT INTO trace(time, device_id, direction, kind, topic, payload) VALUES (?,?,?,?,?,?)",
        [(time.time(), did, "up", "backlog", "t", str(i).encode()) for i in range(1200)])
    found = emulator.wait_for_trace(lambda e: e.device_id == did and e.kind == "backlog" and e.payload == b"1100",
                                    timeout=5)
    assert found.payload == b"1100"
    assert len(emulator.trace(device_id=did, kind="backlog")) == 1200
