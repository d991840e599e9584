"""State-machine tests of the lock-free pending map in MqttConnection (``_track`` / ``_on_publish`` /
requeue / ``close``): every in-flight message is resolved or requeued exactly once, whatever the order in
which the publishing thread and paho's thread get to it.

The interleavings are forced deterministically by a dict that runs a hook just before or just after the
entry is inserted; the threaded test then lets the interpreter interleave the two sides freely. The
end-to-end behaviour (link cuts, broker restarts with real Mosquitto) is in tests/reliability.
"""
from __future__ import annotations

import sys
import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from iot_device_sdk_python.client.connect_auth_info import ConnectAuthInfo
from iot_device_sdk_python.client.mqtt_connect_conf import MqttConnectConf
from iot_device_sdk_python.transport.mqtt.mqtt_connection import MqttConnection, _Attempt, _Out
from iot_device_sdk_python.transport.publish_handle import PublishError


class HookDict(dict):
    """A pending map that runs ``hook`` around the insertion of an entry (``when`` = before/after)."""

    def __init__(self, hook, when: str) -> None:
        super().__init__()
        self.hook, self.when = hook, when

    def __setitem__(self, key, value) -> None:
        if self.when == "before":
            self.hook()
        super().__setitem__(key, value)
        if self.when == "after":
            self.hook()


@pytest.fixture
def link():
    """An online-looking connection whose paho client never touches the network."""
    auth = ConnectAuthInfo()
    auth.id, auth.secret, auth.server_uri, auth.port = "dev_claims", "secret", "127.0.0.1", 1883
    auth.max_buffer_message = 100  # the offline buffer is on: a lost link requeues instead of failing
    conn = MqttConnection(auth, MqttConnectConf(), None)
    conn.CLOSE_DRAIN_SECONDS = 0.0
    attempt = _Attempt()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="dev_claims_0_0_2025010100")
    client.user_data_set(attempt)
    with conn._lock:
        conn._client = conn._live = client
        conn._online = True
        conn._attempt = attempt
    yield conn, client, attempt
    conn.close()


def _out(conn: MqttConnection, successes: list) -> _Out:
    bm = _Out("$oc/devices/dev_claims/sys/messages/up", b"{}", 1, None, next(conn._seq), None)
    bm.add_done_callback(lambda h: successes.append(h))  # runs in the resolving thread: counts resolutions
    return bm


def _lose_link(conn: MqttConnection, attempt: _Attempt) -> None:
    """What _on_disconnect does: the attempt is marked lost, then the map is requeued under the lock."""
    attempt.lost = True
    with conn._lock:
        conn._online = False
        conn._live = None
        conn._requeue_pending_locked("connection lost")


def test_ack_after_registration_resolves_once(link):
    conn, client, attempt = link
    done: list = []
    bm = _out(conn, done)
    conn._track(client, bm, 7)
    assert conn._pending == {7: bm} and not bm.done()
    conn._on_publish(client, attempt, 7)
    assert bm.succeeded() and bm.mid == 7 and done == [bm]
    assert conn._pending == {} and conn._early_acks == {}


def test_ack_before_registration_resolves_once(link):
    conn, client, attempt = link
    done: list = []
    bm = _out(conn, done)
    conn._on_publish(client, attempt, 7)   # a QoS 0 write reported before publish() returned
    assert list(conn._early_acks) == [7]
    conn._track(client, bm, 7)
    assert bm.succeeded() and done == [bm]
    assert conn._pending == {} and conn._early_acks == {}


@pytest.mark.parametrize("when", ["before", "after"])
def test_ack_racing_the_insertion_resolves_once(link, when):
    conn, client, attempt = link
    done: list = []
    bm = _out(conn, done)
    conn._pending = HookDict(lambda: conn._on_publish(client, attempt, 9), when)
    conn._track(client, bm, 9)
    assert bm.succeeded() and done == [bm]
    assert dict(conn._pending) == {} and conn._early_acks == {}


@pytest.mark.parametrize("when", ["before", "after"])
def test_link_lost_racing_the_insertion_requeues_once(link, when):
    conn, client, attempt = link
    done: list = []
    bm = _out(conn, done)
    conn._pending = HookDict(lambda: _lose_link(conn, attempt), when)
    conn._track(client, bm, 11)
    assert not bm.done() and done == []
    assert list(conn._buffer) == [bm]       # in the offline buffer exactly once, to be sent again
    assert dict(conn._pending) == {}


def test_link_lost_after_registration_requeues_in_order(link):
    conn, client, attempt = link
    done: list = []
    first, second, third = (_out(conn, done) for _ in range(3))
    conn._track(client, second, 2)
    conn._track(client, first, 1)
    conn._on_publish(client, attempt, 2)    # the second was acknowledged before the loss
    conn._track(client, third, 3)
    _lose_link(conn, attempt)
    assert done == [second]
    assert list(conn._buffer) == [first, third]  # by publish order, not by mid or insertion order


@pytest.mark.parametrize("when", ["before", "after"])
def test_close_racing_the_insertion_fails_once(link, when):
    conn, client, attempt = link
    done: list = []
    bm = _out(conn, done)
    conn._pending = HookDict(conn.close, when)
    conn._track(client, bm, 13)
    assert done == [bm]
    exc = bm.exception(0)
    assert isinstance(exc, PublishError) and exc.reason == PublishError.REASON_CLOSED
    assert dict(conn._pending) == {}


def test_ack_of_a_retired_client_is_ignored(link):
    conn, client, attempt = link
    done: list = []
    bm = _out(conn, done)
    conn._track(client, bm, 5)
    other = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="dev_claims_0_0_2025010101")
    conn._on_publish(other, _Attempt(), 5)  # same mid, but from a client that is no longer ours
    assert not bm.done() and conn._pending == {5: bm} and conn._early_acks == {}


def test_two_threads_interleaving_freely_resolve_every_message_once(link):
    """The publishing side and paho's side race on 20,000 mids; the interpreter switches threads as
    often as it can, so every order of the two sides' steps occurs many times."""
    conn, client, attempt = link
    n = 20000
    done: list = []
    outs = [_out(conn, done) for _ in range(n)]
    start = threading.Barrier(2)

    def publisher() -> None:
        start.wait()
        for mid, bm in enumerate(outs, 1):
            conn._track(client, bm, mid)

    def network() -> None:
        start.wait()
        for mid in range(1, n + 1):
            conn._on_publish(client, attempt, mid)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=publisher), threading.Thread(target=network)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        sys.setswitchinterval(old)
    assert all(bm.succeeded() for bm in outs)
    assert len(done) == n and len({id(h) for h in done}) == n
    assert conn._pending == {} and conn._early_acks == {}
