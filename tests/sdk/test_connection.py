"""MqttConnection behaviour over real sockets: auth refusals, TLS, X.509, reconnect, buffer, threads."""
from __future__ import annotations

import logging
import socket
import threading
import time

import pytest

from iot_device_sdk_python import (ConnectActionListener, ConnectListener, PublishError, RawDeviceMessageListener,
                                   RawMessage, ServiceProperty)
from iot_device_sdk_python.client.client_conf import ClientConf
from iot_device_sdk_python.client.connect_auth_info import ConnectAuthInfo
from iot_device_sdk_python.iot_device import IotDevice
from iot_device_sdk_python.protocol import topics
from tests.sdk.helpers import Recorder, sdk_threads, wait_until


class Conn(ConnectListener):
    def __init__(self):
        self.events = []

    def connection_lost(self, cause):
        self.events.append(("lost", cause))

    def connect_complete(self, reconnect, server_uri):
        self.events.append(("complete", reconnect))


class Action(ConnectActionListener):
    def __init__(self):
        self.calls = []

    def on_success(self, token):
        self.calls.append(("ok", token))

    def on_failure(self, token, err):
        self.calls.append(("fail", token, err))


def _refusals(caplog, device_id):
    return [r for r in caplog.records if r.name.startswith("iotda_emulator") and "refused client id" in r.getMessage()
            and device_id in r.getMessage()]


def test_bad_secret_returns_4_without_retry(emulator, make_device, caplog):
    caplog.set_level(logging.INFO, logger="iotda_emulator")
    rec = emulator.create_device()
    device = make_device(record=dict(rec, secret="wrong-secret"), connect=False)
    action = Action()
    device.get_client().set_connect_action_listener(action)
    assert device.connect() == 4
    wait_until(lambda: action.calls)
    assert action.calls[0][:2] == ("fail", 4)
    # no retry: wait longer than the first backoff (200-400 ms) and check the platform saw one CONNECT
    time.sleep(1.0)
    assert len(_refusals(caplog, rec["device_id"])) == 1
    assert not [t for t in sdk_threads() if t.name.startswith("iot-reconnect-" + rec["device_id"])]
    assert not emulator.is_online(rec["device_id"])


def test_frozen_device_returns_5(emulator, make_device):
    rec = emulator.create_device()
    emulator.freeze_device(rec["device_id"])
    device = make_device(record=rec, connect=False)
    assert device.connect() == 5


def test_unreachable_returns_minus_1_promptly(make_device, emulator):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free_port = s.getsockname()[1]
    device = make_device(connect=False, port=free_port, reconnect_on_failure=False, timeout=3)
    started = time.monotonic()
    assert device.connect() == -1
    assert time.monotonic() - started < 5


def test_validation_errors_name_the_field(emulator):
    info = ConnectAuthInfo()
    info.id, info.server_uri, info.port = "dev_1", "127.0.0.1", 70000
    info.secret = "s"
    with pytest.raises(ValueError, match="port"):
        IotDevice(ClientConf(info))
    info.port = 1883
    info.secret = None
    with pytest.raises(ValueError, match="secret"):
        IotDevice(ClientConf(info))
    info.auth_type = ConnectAuthInfo.X509_AUTH
    info.port = 8883
    info.cert_path = "c.pem"
    with pytest.raises(ValueError, match="key_path"):
        IotDevice(ClientConf(info))
    info.auth_type = ConnectAuthInfo.SECRET_AUTH
    info.secret = "s"
    conf = ClientConf(info)
    conf.mqtt_connect_conf.keep_alive_time = 10
    with pytest.raises(ValueError, match="keep_alive_time"):
        IotDevice(conf)
    conf.mqtt_connect_conf.keep_alive_time = 60
    conf.mqtt_connect_conf.timeout = 3  # int accepted
    IotDevice(conf).destroy()


def test_tls_with_emulator_ca(emulator, make_device):
    device = make_device(tls=True)
    assert emulator.is_online(device.get_device_id())
    device.get_client().report_properties([ServiceProperty("s", {"a": 1})]).result(5)


def test_tls_wrong_ca_fails(emulator, make_device, tmp_path):
    # a CA that did not sign the server certificate: the emulator's device CA
    device = make_device(tls=True, connect=False, iot_cert_path=emulator.device_ca_file, reconnect_on_failure=False)
    assert device.connect() == -1
    err = str(device.get_client()._get_connection().last_error).lower()
    assert "certificate verify failed" in err and "hostname" not in err


def test_tls_wrong_host_name_fails(emulator, make_device):
    # "127.1" reaches the emulator (127.0.0.1) but is not a name in its certificate (localhost, 127.0.0.1)
    try:
        socket.create_connection(("127.1", emulator.mqtts_port), 2).close()
    except OSError:
        pytest.skip("this platform does not resolve 127.1 to the loopback address")
    device = make_device(tls=True, connect=False, server_uri="127.1", reconnect_on_failure=False)
    assert device.connect() == -1
    err = str(device.get_client()._get_connection().last_error).lower()
    assert "hostname mismatch" in err


def test_x509_device_with_key_password(emulator, make_device):
    rec = emulator.create_device(device_id=None, secret=None, auth_type="CERTIFICATES")
    cert, key, fingerprint = emulator.issue_device_cert(rec["device_id"], password="pw123")
    device = make_device(record=rec, tls=True, connect=False, auth_type=ConnectAuthInfo.X509_AUTH,
                         cert_path=cert, key_path=key, key_password="pw123", secret=None)
    assert device.connect() == 0
    assert emulator.is_online(rec["device_id"])


def test_reconnect_restores_subscriptions_and_flushes_buffer_in_order(emulator, make_device):
    device = make_device(max_buffer_message=50)
    did = device.get_device_id()
    client = device.get_client()
    conn = Conn()
    client.add_connect_listener(conn)
    got = []

    class L:
        def on_message_received(self, message):
            got.append(message.payload)

    raw = []

    class Raw(RawDeviceMessageListener):
        def on_raw_device_message(self, message):
            raw.append(message.payload)

    client.subscribe_topic(topics.user_topic(did, "cfg"), 1, L())
    client.set_raw_device_msg_listener(Raw())
    assert emulator.cut(did)
    wait_until(lambda: ("lost", ) == tuple(e[0] for e in conn.events[-1:]) or not client.is_connected(), 5)
    handles = [client.publish_raw_message(RawMessage(topics.user_topic(did, "seq"), str(i).encode(), 1))
               for i in range(10)]
    wait_until(lambda: client.is_connected(), 15)
    for h in handles:
        h.result(10)
    wait_until(lambda: ("complete", True) in conn.events, 5)
    seq = wait_until(lambda: [int(e.payload) for e in emulator.trace(did, "up") if e.topic.endswith("/user/seq")]
                     if len([e for e in emulator.trace(did, "up") if e.topic.endswith("/user/seq")]) >= 10 else None)
    assert seq == list(range(10))
    # system and custom subscriptions are back
    emulator.send_message(did, b"after-reconnect")
    emulator.send_message(did, b"custom", topic=topics.user_topic(did, "cfg"))
    wait_until(lambda: raw and got, 5)
    assert raw[-1] == b"after-reconnect" and got == [b"custom"]


def test_offline_without_buffer_fails_at_once(emulator, make_device):
    device = make_device(connect=False)
    rec = Recorder()
    handle = device.get_client().report_properties([ServiceProperty("s", {"a": 1})], rec)
    with pytest.raises(PublishError) as info:
        handle.result(1)
    assert info.value.reason == PublishError.REASON_OFFLINE
    wait_until(lambda: rec.failures)


def test_buffer_overflow_drops_oldest(emulator, make_device):
    device = make_device(connect=False, max_buffer_message=3)
    did = device.get_device_id()
    client = device.get_client()
    recs = [Recorder() for _ in range(5)]
    handles = [client.publish_raw_message(RawMessage(topics.user_topic(did, "b"), str(i).encode(), 1), recs[i])
               for i in range(5)]
    for i in (0, 1):
        with pytest.raises(PublishError) as info:
            handles[i].result(1)
        assert info.value.reason == PublishError.REASON_BUFFER_OVERFLOW
    assert device.connect() == 0
    for i in (2, 3, 4):
        handles[i].result(5)
    wait_until(lambda: all(r.event.is_set() for r in recs))
    assert [len(r.failures) for r in recs] == [1, 1, 0, 0, 0]
    wait_until(lambda: len([e for e in emulator.trace(did, "up") if e.topic.endswith("/user/b")]) >= 3)
    sent = [e.payload for e in emulator.trace(did, "up") if e.topic.endswith("/user/b")]
    assert sent == [b"2", b"3", b"4"]


def test_slow_listener_does_not_stall_traffic(emulator, make_device):
    device = make_device(keep_alive_time=30)
    did = device.get_device_id()
    client = device.get_client()
    release = threading.Event()
    entered = threading.Event()

    class Slow(RawDeviceMessageListener):
        def on_raw_device_message(self, message):
            entered.set()
            release.wait(10)

    client.set_raw_device_msg_listener(Slow())
    emulator.send_message(did, b"block")
    assert entered.wait(5)
    try:
        # while the dispatcher is blocked, publishing and acknowledgements keep working
        for i in range(5):
            client.report_properties([ServiceProperty("s", {"i": i})]).result(5)
        assert client.is_connected() and emulator.is_online(did)
    finally:
        release.set()


def test_destroy_leaves_no_thread(emulator, make_device):
    before = {t.ident for t in sdk_threads()}
    device = make_device(auto_report_device_info=True)
    svc_thread_names = {t.name for t in sdk_threads() if t.ident not in before}
    assert any(n.startswith("iot-dispatch-") for n in svc_thread_names)
    device.get_service("$log")  # system services exist
    from tests.sdk.test_device_flows import Smoke
    smoke = Smoke()
    device.add_service("smoke", smoke)
    smoke.enable_auto_report(5)
    device.destroy()
    leftover = [t for t in sdk_threads() if t.ident not in before and t.is_alive()]
    assert leftover == []
    assert wait_until(lambda: not emulator.is_online(device.get_device_id()), 5)


def test_close_does_not_reconnect(emulator, make_device):
    device = make_device()
    did = device.get_device_id()
    device.get_client().close()
    assert emulator.wait_offline(did, 5)
    time.sleep(0.8)  # longer than the maximum first backoff in the fixture (400 ms)
    assert not emulator.is_online(did)


def test_publish_handle_callbacks(emulator, make_device):
    device = make_device()
    done = []
    handle = device.get_client().report_properties([ServiceProperty("s", {"a": 2})])
    handle.add_done_callback(lambda h: done.append((h.succeeded(), threading.current_thread().name)))
    handle.result(5)
    wait_until(lambda: done)
    assert done[0][0] is True and done[0][1].startswith("iot-dispatch-")
    assert handle.done() and handle.exception(0) is None


def test_logs_never_contain_secrets(emulator, make_device, caplog):
    caplog.set_level(logging.DEBUG)
    rec = emulator.create_device()
    device = make_device(record=rec, auto_report_device_info=True)
    did = device.get_device_id()
    emulator.send_message(did, b'{"url": "https://obs.example.com/bucket/f?X-Sig=abc", "access_token": "tok123"}')
    device.get_client().report_properties([ServiceProperty("s", {"password": "pw-777"})]).result(5)
    device.get_client().get_dispatcher().wait_idle(5)
    text = caplog.text
    assert rec["secret"] not in text
    for leaked in ("X-Sig=abc", "tok123", "pw-777"):
        assert leaked not in text


def test_unacked_messages_are_resent_after_reconnect(emulator, make_device):
    device = make_device(max_buffer_message=20)
    did = device.get_device_id()
    client = device.get_client()
    assert emulator.pause(did)  # half-open link: nothing is forwarded, no PUBACK comes back
    handles = [client.publish_raw_message(RawMessage(topics.user_topic(did, "inflight"), str(i).encode(), 1))
               for i in range(5)]
    assert not any(h.done() for h in handles)
    emulator.cut(did)
    for h in handles:
        h.result(15)
    got = wait_until(lambda: (lambda s: s if len(s) >= 5 else None)(
        [int(e.payload) for e in emulator.trace(did, "up") if e.topic.endswith("/user/inflight")]))
    assert sorted(set(got)) == list(range(5))
    assert got[-5:] == list(range(5))  # the resent copies arrive in the original order


def test_log_config_applies_at_any_time(emulator, make_device):
    device = make_device()
    did = device.get_device_id()
    client = device.get_client()
    log = device.get_device_log_service()

    def log_reports():
        return [e.json()["services"][0]["paras"]["content"] for e in emulator.trace(did, "up", topics.EVENTS_UP)
                if e.json()["services"][0].get("event_type") == "log_report"]

    wait_until(lambda: any("connect complete" in c for c in log_reports()))
    emulator.send_event(did, "$log", "log_config", {"switch": "off"})
    wait_until(lambda: not log.log_switch)
    before = len(log_reports())
    emulator.cut(did)
    wait_until(lambda: not client.is_connected(), 5)
    wait_until(lambda: client.is_connected(), 15)
    client.get_dispatcher().wait_idle(5)
    client.report_properties([ServiceProperty("s", {"a": 1})]).result(5)  # a later message as a fence
    assert len(log_reports()) == before  # switched off: nothing about the reconnect
    emulator.send_event(did, "$log", "log_config", {"switch": "on", "end_time": "20990101T000000Z"})
    wait_until(lambda: log.log_switch and log.end_time)
    emulator.cut(did)
    wait_until(lambda: not client.is_connected(), 5)
    wait_until(lambda: client.is_connected(), 15)
    wait_until(lambda: len([c for c in log_reports() if "connect lost" in c]) >= 1)
    client.get_dispatcher().wait_idle(5)
    lost_reports = [c for c in log_reports() if "connect lost" in c]
    # only the loss not yet reported (the second one); the first was recorded while logs were off
    assert 1 <= len(lost_reports) <= 2
    count = len(lost_reports)
    # an end time in the past stops reports immediately
    emulator.send_event(did, "$log", "log_config", {"end_time": "20000101T000000Z"})
    wait_until(lambda: log.end_time == "20000101T000000Z")
    assert not log.can_report_log()
    assert log.report_device_log("1", "DEVICE_STATUS", "x") is None
    assert len([c for c in log_reports() if "connect lost" in c]) == count
