"""The platform core's property-report path: shadow merge rules, order behind queued work, who runs it.

Reports are applied on the thread that takes them when the core's dispatcher has nothing queued and nobody
listens (doc/performance.md, "The emulator"); otherwise they wait their turn on the dispatcher. These tests
pin what must not change with that: IoTDA's merge (top-level keys replaced, others kept), one version per
report, order behind earlier work, listeners still called.
"""
from __future__ import annotations

import json
import threading
import time

from iot_device_sdk_python.protocol import topics
from tests.emulator.helpers import online_device, wait_until


def _report(dev, did, services):
    info = dev.c.publish(topics.properties_report(did), _json(services), qos=1)
    info.wait_for_publish(5)
    assert info.is_published()


def _json(services):
    return json.dumps({"services": services})


def _service(emulator, did, sid):
    rows = [s for s in emulator.shadow(did) if s["service_id"] == sid]
    return rows[0] if rows else None


def test_report_replaces_top_level_keys_and_keeps_the_others(emulator):
    dev = online_device(emulator, subscribe=False)
    did = dev.device_id
    try:
        _report(dev, did, [{"service_id": "cfg", "properties": {"mode": {"a": 1, "b": 2}, "level": 3, "note": "x"}}])
        first = wait_until(lambda: _service(emulator, did, "cfg"))
        _report(dev, did, [{"service_id": "cfg", "properties": {"mode": {"a": 9}, "note": None}}])
        second = wait_until(lambda: (s := _service(emulator, did, "cfg")) and s["version"] > first["version"] and s)
        # a nested object is replaced whole (not merged), a null is a value (not a deletion), "level" stays
        assert second["reported"]["properties"] == {"mode": {"a": 9}, "level": 3, "note": None}
        assert second["version"] == first["version"] + 1
    finally:
        dev.close()


def test_each_service_of_one_report_is_applied_with_its_event_time(emulator):
    dev = online_device(emulator, subscribe=False)
    did = dev.device_id
    try:
        _report(dev, did, [{"service_id": "a", "properties": {"x": 1}, "event_time": "20250102T030405Z"},
                           {"service_id": "b", "properties": {"y": 2}, "event_time": "not a time"}])
        a = wait_until(lambda: _service(emulator, did, "a"))
        b = wait_until(lambda: _service(emulator, did, "b"))
        assert a["reported"] == {"properties": {"x": 1}, "event_time": "20250102T030405Z"}
        # an unusable event_time is replaced by the platform's receive time, in IoTDA's format
        assert b["reported"]["properties"] == {"y": 2}
        assert b["reported"]["event_time"] != "not a time" and b["reported"]["event_time"].endswith("Z")
    finally:
        dev.close()


def test_a_report_waits_behind_work_queued_on_the_dispatcher(emulator):
    dev = online_device(emulator, subscribe=False)
    did = dev.device_id
    release = threading.Event()
    started = threading.Event()

    def blocker():
        started.set()
        release.wait(10)

    try:
        _report(dev, did, [{"service_id": "s", "properties": {"n": 1}}])
        wait_until(lambda: _service(emulator, did, "s"))
        emulator.core._dispatch(blocker)   # earlier work still running on the dispatcher
        assert started.wait(5)
        _report(dev, did, [{"service_id": "s", "properties": {"n": 2}}])   # acknowledged: taken, queued
        time.sleep(0.5)
        assert _service(emulator, did, "s")["reported"]["properties"]["n"] == 1   # not applied ahead of it
        release.set()
        wait_until(lambda: _service(emulator, did, "s")["reported"]["properties"]["n"] == 2)
    finally:
        release.set()
        dev.close()


def test_uplink_listeners_still_see_reports_and_the_shadow_is_updated(emulator):
    seen = []

    def listener(device_id, info, payload):
        seen.append((device_id, info.kind))

    emulator.core.add_uplink_listener(listener)
    try:
        dev = online_device(emulator, subscribe=False)
        did = dev.device_id
        try:
            _report(dev, did, [{"service_id": "s", "properties": {"n": 7}}])
            wait_until(lambda: (did, topics.PROPERTIES_REPORT) in seen)
            assert wait_until(lambda: _service(emulator, did, "s"))["reported"]["properties"] == {"n": 7}
        finally:
            dev.close()
    finally:
        emulator.core.remove_uplink_listener(listener)


def test_a_report_for_an_unregistered_device_leaves_no_shadow(emulator):
    ghost = "ghost_device_never_registered"
    emulator.core.take_uplink(topics.properties_report(ghost),
                              _json([{"service_id": "s", "properties": {"n": 1}}]).encode())
    # traced (as IoTDA's message trace would), but there is no device to hold a shadow
    wait_until(lambda: emulator.core.trace(device_id=ghost, kind=topics.PROPERTIES_REPORT))
    assert emulator.core.db.query("SELECT * FROM shadow WHERE device_id=?", (ghost,)) == []
