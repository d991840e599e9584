"""ActionListener outcomes handed to the dispatcher in batches (issue 15): still in order, exactly once,
never on paho's network thread, and a raising callback does not stop the ones after it.

Functional only (no timing assertions); the cost is measured by ``python -m tests.bench --only listener``.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from typing import List, Optional, Tuple

import pytest

from iot_device_sdk_python.client.request.device_message import DeviceMessage
from iot_device_sdk_python.client.request.service_property import ServiceProperty
from iot_device_sdk_python.transport import dispatcher as dispatcher_mod
from iot_device_sdk_python.transport.action_listener import ActionListener
from iot_device_sdk_python.transport.dispatcher import Dispatcher
from tests.sdk.helpers import wait_until


class _Ordered(ActionListener):
    """Records (mid, thread ident, thread name) per outcome; raises on the calls listed in ``raise_on``."""

    def __init__(self, raise_on: Tuple[int, ...] = ()) -> None:
        self.calls: List[Tuple[int, int, str]] = []
        self.failures: List[str] = []
        self._raise_on = raise_on

    def on_success(self, message: str) -> None:
        mid = int(message.rsplit("=", 1)[1])
        self.calls.append((mid, threading.get_ident(), threading.current_thread().name))
        if len(self.calls) in self._raise_on:
            raise RuntimeError(f"listener failure at call {len(self.calls)}")

    def on_failure(self, message: str, e: Optional[Exception]) -> None:
        self.failures.append(message)


@pytest.mark.parametrize("qos", [0, 1])
@pytest.mark.parametrize("kind", ["report_properties", "report_device_message"])
def test_listener_outcomes_in_order_once_off_network_thread(emulator, make_device, caplog, qos, kind):
    n = 400
    device = make_device(qos=qos)
    client = device.get_client()
    paho_thread = client._connection._get_paho_client()._thread
    assert paho_thread is not None
    listener = _Ordered(raise_on=(5, 200))
    caplog.set_level(logging.ERROR, logger="iot_device_sdk_python.transport.dispatcher")
    handles = []
    for i in range(n):  # published back to back: many in flight, so most outcomes go through submit_batched
        if kind == "report_properties":
            handles.append(client.report_properties([ServiceProperty("s", {"i": i})], listener))
        else:
            m = DeviceMessage()
            m.content = f"m{i}"
            handles.append(client.report_device_message(m, listener))
    wait_until(lambda: len(listener.calls) >= n, 30, what="every listener outcome")
    assert client.get_dispatcher().wait_idle(5)
    assert listener.failures == []
    assert all(h.succeeded() for h in handles)
    mids = [c[0] for c in listener.calls]
    assert mids == [h.mid for h in handles]  # exactly once each, in publish order (the two raises included)
    assert {c[1] for c in listener.calls} == {client.get_dispatcher()._thread.ident}
    assert paho_thread.ident not in {c[1] for c in listener.calls}
    assert all(c[2].startswith("iot-dispatch-") for c in listener.calls)
    raised = [r for r in caplog.records if r.name == dispatcher_mod.__name__ and "raised" in r.getMessage()]
    assert len(raised) == 2  # each raise logged once, and the thread went on


def test_a_single_outcome_wakes_the_dispatcher_at_once(emulator, make_device, monkeypatch):
    # the last (here: only) publish in flight uses submit(), not submit_batched(): a program that waits for
    # each outcome before publishing again must not wait for a batch. A nap of 60 s makes a mistake visible.
    monkeypatch.setattr(Dispatcher, "BATCH_DELAY", 60.0)
    device = make_device(qos=1)
    client = device.get_client()
    listener = _Ordered()
    for i in range(3):
        before = len(listener.calls)
        client.report_properties([ServiceProperty("s", {"i": i})], listener).result(10)
        wait_until(lambda: len(listener.calls) > before, 10, what=f"outcome {i} without a batch delay")
    assert len(listener.calls) == 3


# ---- the Dispatcher itself --------------------------------------------------------------------------

def test_batched_calls_wait_for_the_nap_and_submit_wakes_it():
    d = Dispatcher("iot-test-batched")
    d.BATCH_DELAY = 60.0  # instance attribute: a nap that never ends by itself during this test
    seen: List[int] = []
    try:
        d.submit_batched(seen.append, 1)
        wait_until(lambda: seen == [1] and d._state == dispatcher_mod._NAPPING, 5, what="napping after a batch")
        d.submit_batched(seen.append, 2)  # joins the batch: the napping thread is not woken for it
        time.sleep(0.2)
        assert seen == [1] and d.pending() == 1
        d.submit(seen.append, 3)  # an ordinary call wakes it; FIFO: the batched call runs first
        wait_until(lambda: seen == [1, 2, 3], 5, what="batch run after submit()")
        wait_until(lambda: d._state == dispatcher_mod._NAPPING, 5, what="napping again")
    finally:
        d.stop(timeout=5)  # must wake the napping thread rather than wait out the nap
    assert not d._thread.is_alive()
    assert not d.submit_batched(seen.append, 4) and not d.submit(seen.append, 5)


def test_batched_and_plain_calls_from_many_threads_run_once_in_order(caplog):
    d = Dispatcher("iot-test-race")
    d.BATCH_DELAY = 0.0005  # short naps: many nap/sleep/wake transitions race with the producers
    seen: List[Tuple[int, int]] = []
    per = 3000

    def boom() -> None:
        raise RuntimeError("callback failure")

    def produce(k: int) -> None:
        for i in range(per):
            if i % 7 == 0:
                d.submit(seen.append, (k, i))
            else:
                d.submit_batched(seen.append, (k, i))
            if k == 0 and i == 1000:
                d.submit_batched(boom)
            if i % 500 == 0:
                time.sleep(0.002)  # let the thread drain and nap or sleep now and then

    producers = [threading.Thread(target=produce, args=(k,)) for k in range(4)]
    for t in producers:
        t.start()
    for t in producers:
        t.join()
    try:
        assert d.wait_idle(10)
        for k in range(4):
            assert [i for kk, i in seen if kk == k] == list(range(per))
        assert len(seen) == 4 * per
        assert sum(r.name == dispatcher_mod.__name__ and "raised" in r.getMessage() for r in caplog.records) == 1
    finally:
        d.stop()



def test_a_batched_call_appended_just_after_the_last_look_wakes_the_sleeping_thread():
    # submit_batched appends without the mutex while the thread is awake or napping (issue 15). That is safe
    # only because the thread sets "sleeping" before its last look at the queue: a call appended just after
    # that look then reads "sleeping" and wakes it. This forces exactly that interleaving: the queue's truth
    # test, made by the dispatcher thread right before it sleeps, starts a real submit_batched in another
    # thread and lets it run (to its end, or until it waits for the mutex the dispatcher holds).
    d = Dispatcher("iot-test-late-append")
    seen: List[str] = []

    class _LateAppend(collections.deque):  # type: ignore[type-arg]
        armed = False

        def __bool__(self) -> bool:
            empty = len(self) == 0
            if empty and self.armed and threading.current_thread() is d._thread:
                self.armed = False
                late = threading.Thread(target=d.submit_batched, args=(seen.append, "late"))
                late.start()
                late.join(0.3)  # returns early when it did not need to wake the thread
            return not empty

    queue = _LateAppend()
    d._queue = queue
    try:
        d.submit(seen.append, "first")  # a plain call: the thread sleeps untimed afterwards
        wait_until(lambda: d._state == dispatcher_mod._SLEEPING, 5, what="the thread asleep")
        queue.armed = True
        d.submit(seen.append, "second")  # wakes it; its next look at the empty queue lets "late" in
        # no submit() from here on: a call left behind by a sleeping thread would stay behind
        wait_until(lambda: seen == ["first", "second", "late"], 5, what="the late batched call run")
        assert not queue.armed
    finally:
        d.stop(timeout=5)
