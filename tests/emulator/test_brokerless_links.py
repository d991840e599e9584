"""Brokerless device links (issue 15): a device link gets its Mosquitto connection only once the device needs
the broker; until then the access front answers it and the platform core's downlinks are written to it by the
front. Real Mosquitto, real sockets, bare paho devices (or raw MQTT where a test needs packet control)."""
from __future__ import annotations

import gc
import os
import socket
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from iotda_emulator import Emulator
from iotda_emulator.access_front import AccessFront, AuthDecision, hmac_password
from iotda_emulator.mqtt_packets import ConnectInfo, encode_connect, encode_publish, encode_subscribe
from iotda_emulator.protocol import topics
from tests.emulator.bare_device import hour_stamp
from tests.emulator.helpers import Responder, online_device, wait_until


@pytest.fixture(scope="module")
def emu():
    e = Emulator(command_timeout=5.0, http=False).start()
    e.add_topic_policy("bl-test/%u/#")
    try:
        yield e
    finally:
        e.stop()


def _has_broker(emu: Emulator, did: str) -> bool:
    """Whether the device's current link has its Mosquitto connection (checked on the front's loop)."""
    return bool(emu.front._call(lambda: emu.front._links[did].broker_writer is not None))


def _raw_connect(host: str, port: int, rec: dict, keepalive: int, *, will: bool = False) -> socket.socket:
    """A raw MQTT 3.1.1 device socket after CONNECT/CONNACK 0 (clean session; optionally with a will)."""
    ts = hour_stamp()
    info = ConnectInfo("MQTT", 4, 0x02 | (0x04 if will else 0), keepalive, f"{rec['device_id']}_0_0_{ts}",
                       rec["device_id"], hmac_password(rec["secret"], ts).encode(),
                       will_topic=f"bl-test/{rec['device_id']}/will" if will else None,
                       will_payload=b"gone" if will else None)
    s = socket.create_connection((host, port), timeout=5)
    s.sendall(encode_connect(info))
    ack = _recv_exact(s, 4)
    assert ack[0] >> 4 == 2 and ack[3] == 0, ack
    return s


def _recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def _closed_by_peer(s: socket.socket, within: float) -> bool:
    s.settimeout(within)
    try:
        while True:
            if s.recv(4096) == b"":
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# ---- downlinks without a broker connection -----------------------------------------------------------------

def test_brokerless_device_gets_downlinks_without_subscribing_and_answers(emu):
    dev = online_device(emu, subscribe=False)
    responder = Responder(dev)
    try:
        did = dev.device_id
        assert not _has_broker(emu, did) and did in emu.front.connected()
        direct = emu.core.downlinks_direct
        assert emu.send_command(did, "svc", "cmd", {"x": 1}, timeout=5)["paras"] == {"echo": {"x": 1}}
        assert emu.core.set_properties(did, [{"service_id": "s", "properties": {"v": 1}}], timeout=5)[
            "result_desc"] == "done"
        got = emu.core.get_properties(did, "s", timeout=5)
        assert got["services"][0]["properties"] == {"temp": 21}
        emu.send_message(did, "hello")
        emu.core.send_event(did, "$time_sync", "time_sync_response", {"device_send_time": 1})
        assert wait_until(lambda: [m.payload for m in responder.received
                                   if topics.classify(m.topic).kind == topics.MESSAGES_DOWN] == [b"hello"], 5)
        assert wait_until(lambda: any(topics.classify(m.topic).kind == topics.EVENTS_DOWN
                                      for m in responder.received), 5)
        assert {m.qos for m in responder.received} == {0}   # the implicit subscription's QoS
        assert emu.core.downlinks_direct - direct == 5
        assert not _has_broker(emu, did)   # answering (direct uplinks) did not need the broker either
        downs = emu.trace(device_id=did, direction="down")
        assert [e.kind for e in downs] == [topics.COMMAND, topics.PROPERTIES_SET, topics.PROPERTIES_GET,
                                           topics.MESSAGES_DOWN, topics.EVENTS_DOWN]
    finally:
        responder.stop()
        dev.close()


def test_subscribe_opens_the_broker_link_and_downlinks_keep_their_order(emu):
    dev = online_device(emu, subscribe=False)
    try:
        did = dev.device_id
        sent = []
        stop = threading.Event()

        def _send():   # platform messages all along, across the switch to the broker path
            i = 0
            while not stop.is_set() and i < 400:
                emu.send_message(did, str(i))
                sent.append(str(i))
                i += 1
        t = threading.Thread(target=_send, daemon=True)
        t.start()
        assert wait_until(lambda: len(sent) >= 20, 5)
        custom = f"bl-test/{did}/in"
        mid = dev.c.subscribe(custom, qos=1)[1]
        assert dev.subscribed.get(timeout=5) == mid
        assert _has_broker(emu, did)
        time.sleep(0.2)
        stop.set()
        t.join(10)
        emu.core.deliver_message(did, b"custom", topic_full_name=custom)
        emu.send_message(did, "after")
        got = []
        while not got or got[-1].payload != b"after":
            got.append(dev.next_message(5))
        downs = [m.payload.decode() for m in got if m.topic == topics.messages_down(did)]
        assert downs == sent + ["after"]   # none lost, none reordered across the switch
        assert [m.payload for m in got if m.topic == custom] == [b"custom"]
        # the device's own system uplinks still skip the broker, and commands still reach it
        direct = emu.core.uplinks_direct
        responder = Responder(dev)
        try:
            assert emu.send_command(did, "svc", "cmd", {}, timeout=5)["result_code"] == 0
        finally:
            responder.stop()
        assert emu.core.uplinks_direct > direct
    finally:
        dev.close()


def test_custom_topic_publish_opens_the_broker_link(emu):
    dev = online_device(emu, subscribe=False)
    try:
        did = dev.device_id
        dev.publish(topics.messages_up(did), b"direct")
        assert not _has_broker(emu, did)
        dev.publish(f"bl-test/{did}/out", b"custom")
        assert _has_broker(emu, did)
        emu.wait_for_trace(lambda e: e.device_id == did and e.payload == b"custom", 5)
        emu.send_message(did, "still here")
        assert dev.next_message(5).payload == b"still here"
    finally:
        dev.close()


def test_will_opens_the_broker_link_at_once_and_is_published_on_abnormal_close(emu):
    rec = emu.create_device()
    did = rec["device_id"]
    s = _raw_connect(emu.host, emu.mqtt_port, rec, 60, will=True)
    try:
        assert emu.wait_online(did, 5)
        assert _has_broker(emu, did)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
    finally:
        s.close()
    entry = emu.wait_for_trace(lambda e: e.topic == f"bl-test/{did}/will", 5)
    assert entry.payload == b"gone"


def test_clean_session_0_opens_the_broker_link_at_once(emu):
    rec = emu.create_device()
    ts = hour_stamp()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{rec['device_id']}_0_0_{ts}", clean_session=False,
                    reconnect_on_failure=False)
    c.username_pw_set(rec["device_id"], hmac_password(rec["secret"], ts))
    c.connect(emu.host, emu.mqtt_port, keepalive=60)
    c.loop_start()
    try:
        assert emu.wait_online(rec["device_id"], 5) and _has_broker(emu, rec["device_id"])
    finally:
        c.disconnect()
        c.loop_stop()


# ---- what the front does for a brokerless link -------------------------------------------------------------

def test_second_connection_kicks_the_first(emu):
    rec = emu.create_device()
    did = rec["device_id"]
    first = online_device(emu, rec, subscribe=False)
    second = None
    try:
        second = online_device(emu, rec, subscribe=False)
        assert first.disconnected.wait(5)
        assert not _has_broker(emu, did) and emu.is_online(did)
        emu.send_message(did, "to the new one")
        assert second.next_message(5).payload == b"to the new one"
        assert first.no_message(0.3)
    finally:
        first.close()
        if second is not None:
            second.close()


def test_ping_and_disconnect_answered_by_the_front(emu):
    rec = emu.create_device()
    did = rec["device_id"]
    s = _raw_connect(emu.host, emu.mqtt_port, rec, 60)
    try:
        assert emu.wait_online(did, 5)
        s.sendall(bytes([0xC0, 0]))   # PINGREQ
        assert _recv_exact(s, 2) == bytes([0xD0, 0])
        assert not _has_broker(emu, did)
        s.sendall(bytes([0xE0, 0]))   # DISCONNECT
        assert _closed_by_peer(s, 5)
        assert emu.wait_offline(did, 5)
    finally:
        s.close()


def test_pause_holds_direct_downlinks_and_cut_closes(emu):
    dev = online_device(emu, subscribe=False)
    try:
        did = dev.device_id
        assert emu.pause(did)
        emu.send_message(did, "held")
        assert dev.no_message(0.5)
        assert emu.resume(did)
        assert dev.next_message(5).payload == b"held"
        assert not _has_broker(emu, did)
        emu.delay(did, 0.3)
        started = time.monotonic()
        emu.send_message(did, "late")
        assert dev.next_message(5).payload == b"late" and time.monotonic() - started >= 0.3
        emu.delay(did, 0)
        assert emu.cut(did)
        assert dev.disconnected.wait(5)
        assert emu.wait_offline(did, 5)
    finally:
        dev.close()


def test_slow_consumer_of_direct_downlinks_is_dropped(emu):
    rec = emu.create_device()
    did = rec["device_id"]
    s = _raw_connect(emu.host, emu.mqtt_port, rec, 60)
    old = emu.front.max_queued_bytes
    emu.front.max_queued_bytes = 256 * 1024
    try:
        assert emu.wait_online(did, 5)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        blob = "x" * 60000
        for _ in range(200):   # never read: the socket buffers fill, then the front's queue
            if not emu.is_online(did):
                break
            try:
                emu.send_message(did, blob, ttl_minutes=0)
            except Exception:  # noqa: BLE001 - offline in between
                break
        assert emu.wait_offline(did, 10)
        assert emu.wait_for_trace(lambda e: e.device_id == did and e.kind == "violation"
                                  and b"slow_consumer" in e.payload, 5)
    finally:
        emu.front.max_queued_bytes = old
        s.close()


def test_keepalive_is_enforced_for_a_brokerless_link(emu):
    # IoTDA's keep-alive floor is 30 s: a front of its own lets a test device ask for 1 s
    front = emu.add_front(AccessFront(
        emu.broker_address, lambda info, cert: AuthDecision(0, device_id=info.username),
        implicit_topics=topics.implicit_subscriptions, platform_intake=emu.core.take_uplink,
        brokerless_links=True, name="keepalive-front"))
    rec, other = emu.create_device(), emu.create_device()
    started = time.monotonic()   # before the CONNECT: the front's 1.5 s count starts after it
    silent = _raw_connect(front.host, front.port, rec, 1)
    alive = _raw_connect(front.host, front.port, other, 1)
    try:
        assert front._call(lambda: front._links[rec["device_id"]].broker_writer is None)
        closed = threading.Event()
        threading.Thread(target=lambda: _closed_by_peer(silent, 5) and closed.set(), daemon=True).start()
        # the other device pings every 0.5 s and stays
        while not closed.is_set() and time.monotonic() - started < 5:
            alive.sendall(bytes([0xC0, 0]))
            assert _recv_exact(alive, 2) == bytes([0xD0, 0])
            time.sleep(0.5)
        assert closed.is_set()
        assert time.monotonic() - started >= 1.5   # 1.5 x keep-alive (MQTT 3.1.1 §3.1.2.10), not earlier
        assert other["device_id"] in front.connected() and rec["device_id"] not in front.connected()
    finally:
        silent.close()
        alive.close()


# ---- descriptors ----------------------------------------------------------------------------------------

@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc/self/fd (Linux)")
def test_brokerless_links_use_one_descriptor_each(emu):
    n = 40
    recs = [emu.create_device() for _ in range(n)]
    gc.collect()   # sockets earlier tests left to the collector would close mid-count
    base = _fds()
    socks = []
    try:
        for rec in recs:
            socks.append(_raw_connect(emu.host, emu.mqtt_port, rec, 60))
        assert wait_until(lambda: all(emu.is_online(r["device_id"]) for r in recs), 10)
        gc.collect()
        connected = _fds()
        brokerless = connected - base - n   # this process holds the devices' n sockets too
        assert brokerless <= n + 5, brokerless
        opened_before = emu.front.brokerless_opened
        for i, (s, rec) in enumerate(zip(socks, recs)):
            s.sendall(encode_subscribe(i + 1, [(f"bl-test/{rec['device_id']}/x", 0)], 4))
            assert _recv_exact(s, 5)[0] >> 4 == 9   # SUBACK
        assert emu.front.brokerless_opened - opened_before == n
        gc.collect()
        added = _fds() - connected
        assert added >= n - 5, added   # each now has its broker connection as well
    finally:
        for s in socks:
            s.close()


def test_without_direct_uplinks_every_link_has_its_broker_connection():
    e = Emulator(command_timeout=5.0, http=False, direct_uplinks=False).start()
    try:
        dev = online_device(e, subscribe=False)
        try:
            assert e.front._call(lambda: e.front._links[dev.device_id].broker_writer is not None)
            assert e.core.direct_downlink is None
            e.send_message(dev.device_id, "via the broker")
            assert dev.next_message(5).payload == b"via the broker"
        finally:
            dev.close()
    finally:
        e.stop()


# ---- hostile control packets: a brokerless link answers them as the broker path does ------------------------

_ODD_PACKETS = {
    "PINGREQ with flags": bytes([0xC1, 0]),
    "PINGREQ with a body": bytes([0xC0, 1, 0]),
    "DISCONNECT with flags": bytes([0xE2, 0]),
    "DISCONNECT with a body": bytes([0xE0, 1, 0]),
    "reserved type 0": bytes([0x00, 0]),
    "reserved type 15": bytes([0xF0, 0]),
    "a second CONNECT": encode_connect(ConnectInfo("MQTT", 4, 0x02, 60, "again", "again", b"x")),
    "PUBACK for nothing": bytes([0x40, 2, 0, 7]),
}


def _outcome(e: Emulator, packet: bytes) -> str:
    s = _raw_connect(e.host, e.mqtt_port, e.create_device(), 60)
    try:
        s.sendall(packet)
        if _closed_by_peer(s, 1.5):
            return "closed"
        s.sendall(bytes([0xC0, 0]))   # still served: a proper PINGREQ is answered
        return "served" if _recv_exact(s, 2) == bytes([0xD0, 0]) else "odd answer"
    except (ConnectionError, OSError):
        return "closed"
    finally:
        s.close()


def test_odd_control_packets_get_what_the_broker_path_gives_them(emu):
    """A client must not tell a brokerless link from one through Mosquitto, also when it misbehaves."""
    via_broker = Emulator(command_timeout=5.0, http=False, direct_uplinks=False).start()
    try:
        expected = {name: _outcome(via_broker, pkt) for name, pkt in _ODD_PACKETS.items()}
    finally:
        via_broker.stop()
    got = {name: _outcome(emu, pkt) for name, pkt in _ODD_PACKETS.items()}
    assert got == expected
    # and the broker path does close on some of them, so the comparison means something
    assert "closed" in expected.values() and "served" in expected.values()


# ---- packets served as they arrive (AccessFront._take_fast) ---------------------------------------------------

def _read_packets(s: socket.socket, within: float) -> list:
    """(first byte, body) of every packet the front sends within ``within`` s (until it closes)."""
    out, buf = [], b""
    s.settimeout(within)
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
            while len(buf) >= 2 and len(buf) >= 2 + buf[1]:   # short packets only (PUBACK, SUBACK, PINGRESP)
                out.append((buf[0], buf[2:2 + buf[1]]))
                buf = buf[2 + buf[1]:]
    except (socket.timeout, ConnectionError, OSError):
        pass
    return out


def test_reports_are_served_as_they_arrive_and_in_order_with_what_is_not(emu):
    rec = emu.create_device()
    did = rec["device_id"]
    report = topics.properties_report(did)
    s = _raw_connect(emu.host, emu.mqtt_port, rec, 60)
    try:
        assert emu.wait_online(did, 5)
        s.sendall(encode_publish(report, b'{"services":[{"service_id":"s","properties":{"n":0}}]}', 1, 1))
        assert _recv_exact(s, 4) == bytes([0x40, 2, 0, 1])   # decided (and remembered) the ordinary way
        fast = emu.front.fast_uplinks
        since = emu.core.last_trace_id
        # one write: a report, a SUBSCRIBE (only the broker can answer it), a PINGREQ, another report
        s.sendall(encode_publish(report, b'{"services":[{"service_id":"s","properties":{"n":1}}]}', 1, 2)
                  + encode_subscribe(3, [(f"bl-test/{did}/in", 1)], 4) + bytes([0xC0, 0])
                  + encode_publish(report, b'{"services":[{"service_id":"s","properties":{"n":2}}]}', 1, 4))
        got = _read_packets(s, 3)
        assert [fb for fb, _ in got] == [0x40, 0x90, 0xD0, 0x40], got   # PUBACK, SUBACK, PINGRESP, PUBACK in order
        assert got[0][1] == bytes([0, 2]) and got[1][1] == bytes([0, 3, 1]) and got[3][1] == bytes([0, 4])
        assert emu.front.fast_uplinks == fast + 1   # the first report; the rest waited behind the SUBSCRIBE
        assert _has_broker(emu, did)
        ups = emu.trace(device_id=did, direction="up", since_id=since)
        assert [e.payload for e in ups if e.kind == topics.PROPERTIES_REPORT] == [
            b'{"services":[{"service_id":"s","properties":{"n":1}}]}',
            b'{"services":[{"service_id":"s","properties":{"n":2}}]}']
    finally:
        s.close()


def test_a_malformed_publish_after_a_served_one_is_judged_as_through_the_broker(emu):
    def outcome(e: Emulator) -> list:
        rec = e.create_device()
        topic = topics.properties_report(rec["device_id"])
        s = _raw_connect(e.host, e.mqtt_port, rec, 60)
        try:
            good = encode_publish(topic, b'{"services":[]}', 1, 1)
            s.sendall(good)
            assert _recv_exact(s, 4) == bytes([0x40, 2, 0, 1])
            # its topic length claims more bytes than the packet has (a topic the link already knows as prefix)
            bad_body = bytes([0, len(topic) + 40]) + topic.encode()
            s.sendall(encode_publish(topic, b'{"services":[]}', 1, 2) + bytes([0x30, len(bad_body)]) + bad_body)
            answers = _read_packets(s, 2)
            closed = _closed_by_peer(s, 1)
            time.sleep(0.3)   # anything the platform took is traced by now
            traced = [x.payload for x in e.trace(device_id=rec["device_id"], kind=topics.PROPERTIES_REPORT)]
            return [answers, closed, traced]
        finally:
            s.close()

    via_broker = Emulator(command_timeout=5.0, http=False, direct_uplinks=False).start()
    try:
        expected = outcome(via_broker)
    finally:
        via_broker.stop()
    # the good one acknowledged and traced; the bad one never taken, and the link closed for it
    assert expected == [[(0x40, bytes([0, 2]))], True, [b'{"services":[]}'] * 2]
    assert outcome(emu) == expected
