"""Faults on a real Mosquitto through the emulator: every QoS 1 report the application makes is delivered
at least once and in order, or reported failed to its handle; nothing is silently dropped.

Each scenario counts sent / delivered / duplicated / lost (lost = neither received by the platform nor
reported failed) and asserts lost == 0, that every acknowledged report reached the platform, and that the
first deliveries are in publish order.
"""
from __future__ import annotations

import time

import pytest

from iot_device_sdk_python.transport.connect_listener import ConnectListener
from iot_device_sdk_python.transport.publish_handle import PublishError
from tests.reliability._harness import AuthGate, Stream, assert_nothing_lost, record_figures, wait_until

SETTINGS = dict(max_buffer_message=1000, min_backoff=100, max_backoff=800)


class Events(ConnectListener):
    def __init__(self):
        self.events = []

    def connection_lost(self, cause):
        self.events.append(("lost", time.monotonic()))

    def connect_complete(self, reconnect, server_uri):
        self.events.append(("up" if not reconnect else "reconnected", time.monotonic()))

    def count(self, kind):
        return sum(1 for e in self.events if e[0] == kind)


def test_broker_killed_and_restarted_mid_stream(fresh_emulator, make_device):
    emu = fresh_emulator
    gate = AuthGate(emu)
    device = make_device(emu, **SETTINGS)
    events = Events()
    device.get_client().add_connect_listener(events)
    stream = Stream(device)
    stream.send(15, pause=0.01)
    gate.hold.set()  # the platform stays "unavailable" until its core is subscribed again
    emu.kill_broker()
    wait_until(lambda: not device.get_client().is_connected(), 10)
    stream.send(15, pause=0.01)  # made while the broker is down: buffered
    did = device.get_device_id()
    wait_until(lambda: [a for a in gate.for_device(did) if a[2] == 3], 15)  # it retries meanwhile
    emu.restart_broker()
    gate.hold.clear()
    stream.send(10, pause=0.01)
    stream.settle(30)
    stream.wait_delivered(emu)
    tally = stream.tally(emu)
    record_figures("broker killed + restarted", dict(tally, faults=1))
    assert_nothing_lost(tally)
    assert tally["failed_reported"] == 0, tally  # the buffer was large enough: nothing had to fail
    assert events.count("lost") >= 1 and events.count("reconnected") >= 1


def test_link_cut_twice_mid_stream(emulator, make_device):
    device = make_device(**SETTINGS)
    did = device.get_device_id()
    stream = Stream(device)
    cuts = 0
    for burst in range(3):
        stream.send(12, pause=0.005)
        if burst < 2:  # cut the live link (after the previous reconnect)
            wait_until(lambda: device.get_client().is_connected() and emulator.cut(did), 15)
            cuts += 1
    stream.settle(30)
    stream.wait_delivered(emulator)
    tally = stream.tally(emulator)
    record_figures("link cut x2", dict(tally, faults=cuts))
    assert_nothing_lost(tally)
    assert tally["failed_reported"] == 0, tally


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
def test_half_open_link_detected_by_ack_watchdog_then_reconnect(emulator, make_device, tls):
    """A paused link (nothing forwarded, nothing closed) is invisible to TCP. IoTDA's keep-alive floor is
    30 s, so paho's keep-alive would need 30-60 s to notice. ``ConnectAuthInfo.ack_timeout`` drops the link
    when QoS 1 messages wait that long without any PUBACK; the SDK re-queues them and reconnects."""
    device = make_device(tls=tls, ack_timeout=1.5, keep_alive_time=60, **SETTINGS)
    did = device.get_device_id()
    events = Events()
    device.get_client().add_connect_listener(events)
    stream = Stream(device)
    stream.send(10, pause=0.005)
    stream.settle(10)
    assert emulator.pause(did)
    paused_at = time.monotonic()
    stream.send(10, pause=0.01)  # these wait in flight on the half-open link
    wait_until(lambda: events.count("lost") >= 1, 20)
    detected_after = next(t for k, t in events.events if k == "lost") - paused_at
    wait_until(lambda: events.count("reconnected") >= 1, 20)
    stream.send(5)
    stream.settle(20)
    stream.wait_delivered(emulator)
    emulator.resume(did)  # no-op for the replaced link; keeps the session emulator clean
    tally = stream.tally(emulator)
    record_figures(f"link paused (half-open, {'TLS' if tls else 'TCP'}), ack_timeout=1.5 s",
                   dict(tally, faults=1, detected_after_s=round(detected_after, 2)))
    assert_nothing_lost(tally)
    assert tally["failed_reported"] == 0, tally
    assert detected_after < 20  # far below the 30-60 s keep-alive detection


def test_platform_delayed(emulator, make_device):
    device = make_device(**SETTINGS)
    did = device.get_device_id()
    stream = Stream(device)
    try:
        emulator.delay(did, 0.4)
        stream.send(20, pause=0.01)
        stream.settle(30)
        # a command round trip still works through the slow link (answered by the device's services)
        answer = emulator.send_command(did, "no_such_service", "x", {}, timeout=10)
        assert answer.get("result_code") not in (None, 0)
    finally:
        emulator.delay(did, 0)
    stream.wait_delivered(emulator)
    tally = stream.tally(emulator)
    record_figures("platform delayed 0.4 s each way", dict(tally, faults=1))
    assert_nothing_lost(tally)
    assert tally["failed_reported"] == 0 and tally["duplicated"] == 0, tally


def test_secret_changed_no_retry_storm_and_queue_survives(emulator, make_device, gate, tmp_path):
    """After a secret change the platform refuses the reconnect with CONNACK 4: the SDK tries ONCE, gives up
    (no retry storm), keeps the reports made meanwhile, fails their handles on close, and a device built with
    the new secret and the same durable queue file delivers them."""
    queue = str(tmp_path / "queue.sqlite3")
    rec = emulator.create_device()
    did = rec["device_id"]
    device = make_device(record=rec, offline_queue_path=queue, **SETTINGS)
    stream = Stream(device)
    stream.send(5)
    stream.settle(10)
    before = len(gate.for_device(did))
    emulator.reset_device_secret(did, "the-new-secret-123")
    assert emulator.cut(did)
    stream.send(6)  # made while refused: kept in the (durable) buffer
    wait_until(lambda: any(a[2] == 4 for a in gate.for_device(did)[before:]), 10)
    time.sleep(2.5)  # observe the absence of further attempts over many backoff periods (100-800 ms)
    attempts = gate.for_device(did)[before:]
    assert [a[2] for a in attempts] == [4], attempts
    assert not any(h.done() for h in stream.handles[5:])  # not silently succeeded, not dropped
    assert device.get_client().get_buffer_metrics().size == 6
    device.destroy()
    for h in stream.handles[5:]:
        assert h.exception(5).reason == PublishError.REASON_CLOSED
    again = make_device(record=dict(rec, secret="the-new-secret-123"), offline_queue_path=queue, **SETTINGS)
    assert again.get_client().get_buffer_metrics().restored == 6
    wait_until(lambda: len(stream.received(emulator)) >= 11, 15)
    tally = stream.tally(emulator)
    tally["failed_reported"] = 0  # the 6 closed handles were delivered by the second process
    record_figures("secret changed (CONNACK 4) + restart with new secret", dict(tally, faults=1,
                                                                               connect_attempts_refused=1))
    assert stream.received(emulator) == list(range(11))
    wait_until(lambda: again.get_client().get_buffer_metrics().size == 0, 5)


def test_hour_boundary_fresh_client_id_and_password(emulator, make_device, gate):
    """Client id and password carry the UTC hour (sign_type 1). A reconnect after the hour changed must use
    the new hour for BOTH; the emulator checks the HMAC against the client id's hour."""
    rec = emulator.create_device()
    did = rec["device_id"]
    device = make_device(record=rec, connect=False, **SETTINGS)
    conn = device.get_client()._get_connection()
    hour_start = (int(time.time()) // 3600) * 3600
    fake = {"now": hour_start - 0.5}  # 23:59:59.5 of the previous hour
    conn._clock = lambda: fake["now"]
    assert device.connect() == 0
    stream = Stream(device)
    stream.send(3)
    stream.settle(10)
    fake["now"] = hour_start + 0.5  # the hour turns while connected; then the link drops
    assert emulator.cut(did)
    stream.send(3)
    stream.settle(20)
    stream.wait_delivered(emulator)
    accepted = [a for a in gate.for_device(did) if a[2] == 0]
    stamps = [a[1].rsplit("_", 1)[1] for a in accepted]
    assert len(stamps) >= 2 and stamps[0] != stamps[-1], stamps
    assert stamps[0] == time.strftime("%Y%m%d%H", time.gmtime(hour_start - 1))
    assert stamps[-1] == time.strftime("%Y%m%d%H", time.gmtime(hour_start))
    assert conn._password(stamps[0]) != conn._password(stamps[-1])
    tally = stream.tally(emulator)
    record_figures("hour boundary reconnect", dict(tally, faults=1))
    assert_nothing_lost(tally)
