"""Broadcast messages (doc/protocol.md §4.3) end to end: the official application SDK's BroadcastMessage on the
emulator, SDK devices subscribed with ``subscribe_broadcast``."""
from __future__ import annotations

import base64
import queue
import uuid

import pytest
import requests
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkiotda.v5 import BroadcastMessageRequest, DeviceBroadcastRequest

from iot_device_sdk_python import BroadcastListener
from tests.emulator_http.conftest import make_app_client
from tests.waiting import wait_until


class Inbox(BroadcastListener):
    def __init__(self):
        self.q = queue.Queue()

    def on_broadcast_message(self, topic, payload):
        self.q.put((topic, payload))

    def get(self, timeout=10.0):
        return self.q.get(timeout=timeout)


@pytest.fixture
def app(emulator):
    return make_app_client(f"http://{emulator.host}:{emulator.http_port}")


def _topic():
    return f"$oc/broadcast/test_{uuid.uuid4().hex[:8]}"


def _subscribed(emulator, topic, devices):
    ids = {d.get_device_id() for d in devices}
    wait_until(lambda: ids <= set(emulator.front.subscribers(topic)), what="subscriptions in place")


def _broadcast(app, topic, payload, **kw):
    body = DeviceBroadcastRequest(topic_full_name=topic, message=base64.b64encode(payload).decode(), **kw)
    return app.broadcast_message(BroadcastMessageRequest(body=body))


def test_broadcast_reaches_every_subscriber_and_only_them(emulator, make_device, app):
    topic = _topic()
    subscribers = [make_device(emulator) for _ in range(2)]
    other = make_device(emulator)
    inboxes = []
    for device in subscribers:
        inbox = Inbox()
        assert device.get_client().subscribe_broadcast(topic, inbox)
        inboxes.append(inbox)
    other_inbox = Inbox()
    other.get_client().subscribe_broadcast(topic + "_other", other_inbox)   # a different broadcast topic
    _subscribed(emulator, topic, subscribers)
    payload = bytes(range(256)) + b'{"a":1}'
    rsp = _broadcast(app, topic, payload, message_id="bc-" + uuid.uuid4().hex[:8])
    assert rsp.topic_full_name == topic and rsp.message_id.startswith("bc-") and rsp.created_time
    assert rsp.app_id
    for inbox in inboxes:
        assert inbox.get() == (topic, payload)                 # the decoded bytes, on the full topic
    assert other_inbox.q.empty()
    sent = emulator.service("$broadcast").messages(topic)
    assert sent[-1]["subscribers"] == sorted(d.get_device_id() for d in subscribers)


def test_name_and_wildcard_subscriptions(emulator, make_device, app):
    name = f"news_{uuid.uuid4().hex[:6]}"
    device = make_device(emulator)
    inbox = Inbox()
    device.get_client().subscribe_broadcast(name + "/#", inbox)          # the part after $oc/broadcast/
    _subscribed(emulator, f"$oc/broadcast/{name}/today", [device])
    _broadcast(app, f"$oc/broadcast/{name}/today", b"hello")
    assert inbox.get() == (f"$oc/broadcast/{name}/today", b"hello")
    device.get_client().unsubscribe_broadcast(name + "/#")
    wait_until(lambda: device.get_device_id() not in emulator.front.subscribers(f"$oc/broadcast/{name}/today"),
               what="unsubscribed")


def test_ttl_caches_for_later_subscribers(emulator, make_device, app):
    topic = _topic()
    _broadcast(app, topic, b"cached for 5 minutes", ttl=5)
    device = make_device(emulator)
    inbox = Inbox()
    device.get_client().subscribe_broadcast(topic, inbox)             # subscribes after the broadcast
    assert inbox.get() == (topic, b"cached for 5 minutes")
    # a message id is unique among cached broadcasts
    mid = "dup-" + uuid.uuid4().hex[:8]
    _broadcast(app, _topic(), b"x", ttl=5, message_id=mid)
    with pytest.raises(ClientRequestException) as err:
        _broadcast(app, _topic(), b"y", ttl=5, message_id=mid)
    assert err.value.status_code == 400 and "message_id" in err.value.error_msg


def test_ttl_refused_beyond_ten_subscribers(emulator, make_device, app):
    topic = _topic()
    devices = [make_device(emulator) for _ in range(11)]
    for device in devices:
        device.get_client().subscribe_broadcast(topic, Inbox())
    _subscribed(emulator, topic, devices)
    with pytest.raises(ClientRequestException) as err:
        _broadcast(app, topic, b"too many", ttl=5)
    assert err.value.status_code == 400 and "10" in err.value.error_msg
    _broadcast(app, topic, b"without ttl it goes out")               # ttl 0 has no such limit


def test_bad_broadcasts_are_refused(emulator):
    url = f"http://{emulator.host}:{emulator.http_port}/v5/iot/emu-project/broadcast-messages"
    good = {"topic_full_name": "$oc/broadcast/x", "message": base64.b64encode(b"m").decode()}
    cases = [dict(good, topic_full_name="$oc/devices/d/user/x"), dict(good, topic_full_name="$oc/broadcast/"),
             dict(good, topic_full_name="$oc/broadcast/a/#"), dict(good, message="not base64!"),
             dict(good, message=""), dict(good, ttl=7), dict(good, ttl=1445), dict(good, ttl="5"),
             dict(good, message_id="bad id"), dict(good, app_id="x" * 37),
             {"message": good["message"]}]
    for body in cases:
        resp = requests.post(url, json=body, timeout=10)
        assert resp.status_code == 400, (body, resp.text)
        assert resp.json()["error_code"] == "IOTDA.000006"
    resp = requests.post(url, json=good, timeout=10)
    assert resp.status_code == 201 and resp.json()["topic_full_name"] == "$oc/broadcast/x"


def test_subscribe_broadcast_checks_its_arguments(emulator, make_device):
    client = make_device(emulator, connect=False).get_client()
    with pytest.raises(ValueError):
        client.subscribe_broadcast("", Inbox())
    with pytest.raises(ValueError):
        client.subscribe_broadcast("$oc/broadcast/x", object())      # no on_broadcast_message
    assert client.subscribe_broadcast("x", Inbox())                   # before connect(): kept for later
