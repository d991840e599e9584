"""The Tornado TCP gateway demo end to end: socket children <-> SimpleGateway <-> emulator."""
from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from iot_gateway_demo.simple_gateway import SimpleGateway
from iot_gateway_demo.string_tcp_server import GatewayServer
from iot_gateway_demo.sub_devices_file_persistence import SubDevicesFilePersistence
from iot_gateway_demo.tcp_device import TcpDevice

from tests.gateway.conftest import wait_until


class LineClient:
    """A raw socket child speaking the demo's line protocol."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def send(self, line) -> None:
        self.sock.sendall(line if isinstance(line, bytes) else line.encode("utf-8") + b"\n")

    def read_line(self, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line within {timeout} s (buffer {self.buf[:200]!r})")
            self.sock.settimeout(left)
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError(f"connection closed (buffer {self.buf[:200]!r})")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode("utf-8")

    def expect(self, prefix: str, timeout: float = 10.0) -> str:
        """Read lines until one starts with ``prefix`` (others are skipped)."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            line = self.read_line(max(0.1, deadline - time.monotonic()))
            if line.startswith(prefix):
                return line
            seen.append(line)
            if time.monotonic() > deadline:
                raise AssertionError(f"no {prefix!r} line; got {seen}")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def tcp_gateway(gateways, tmp_path):
    persistence = SubDevicesFilePersistence(str(tmp_path / "subdevices.json"))
    gw = gateways.make(cls=SimpleGateway, persistence=persistence, sub_product_id="tcp_child", request_timeout=1.5)
    server = GatewayServer(gw, "127.0.0.1", 0)
    port = server.start()
    clients = []

    def client() -> LineClient:
        c = LineClient(port)
        clients.append(c)
        return c

    try:
        yield gw, server, client
    finally:
        for c in clients:
            c.close()
        server.stop()


def _login(client, node_id: str) -> str:
    client.send(f"LOGIN {node_id}")
    first = client.read_line()
    assert first in (f"OK adding {node_id}",) or first.startswith("OK online"), first
    line = first if first.startswith("OK online") else client.expect("OK online")
    return line.split()[-1]


def test_child_command_set_message_and_delete_through_tcp(emulator, tcp_gateway):
    gw, server, connect = tcp_gateway
    child = connect()
    device_id = _login(child, "tcp1")
    assert device_id == "tcp_child_tcp1"
    assert emulator.wait_online(device_id, 10)
    assert gw.get_sub_device_by_node_id("tcp1").device_id == device_id

    # platform command -> CMD line -> CMDRSP -> command response
    result = {}
    t = threading.Thread(target=lambda: result.update(
        emulator.send_command(device_id, "smokeDetector", "ringAlarm", {"duration": 5})))
    t.start()
    cmd = child.expect("CMD ")
    _, request_id, body = cmd.split(" ", 2)
    assert json.loads(body) == {"service_id": "smokeDetector", "command_name": "ringAlarm", "paras": {"duration": 5}}
    child.send(f'CMDRSP {request_id} {{"result_code": 0, "response_name": "ok", "paras": {{"rang": true}}}}')
    assert child.expect("OK answered") == f"OK answered {request_id}"
    t.join(10)
    assert result == {"result_code": 0, "response_name": "ok", "paras": {"rang": True}}

    # property set for the child reaches it and its answer is returned
    out = {}
    t = threading.Thread(target=lambda: out.update(
        emulator.set_properties(device_id, [{"service_id": "smokeDetector", "properties": {"alarm": 1}}])))
    t.start()
    _, rid, body = child.expect("SET ").split(" ", 2)
    assert json.loads(body) == [{"service_id": "smokeDetector", "properties": {"alarm": 1}}]
    child.send(f'SETRSP {rid} {{"result_code": 0, "result_desc": "applied"}}')
    t.join(10)
    assert out == {"result_code": 0, "result_desc": "applied"}

    # a request the child never answers gets an error response from the gateway (no platform timeout)
    rsp = emulator.send_command(device_id, "smokeDetector", "ringAlarm", {}, timeout=10)
    assert rsp["result_code"] != 0 and "did not answer" in rsp["paras"]["error"]
    child.expect("CMD ")   # (it was delivered)

    # downlink message, uplink message and properties
    emulator.send_message(device_id, "hello child")
    assert json.loads(child.expect("MSG ")[4:])["content"] == "hello child"
    child.send("MSG from the child")
    assert child.expect("OK message") == "OK message reported"
    child.send('PROPS {"service_id": "smokeDetector", "properties": {"temperature": 23.5}}')
    assert child.expect("OK ").startswith("OK 1 service")
    wait_until(lambda: emulator.shadow(device_id) and emulator.shadow(device_id)[0]["reported"]["properties"]
               == {"temperature": 23.5}, what="child shadow")

    # command for a child that is registered but not connected: immediate error
    absent = emulator.service("$sub_device_manager").add_child(gw.get_device_id(), "absent")["device_id"]
    rsp = emulator.send_command(absent, "s", "c", {}, timeout=10)
    assert rsp["result_code"] != 0 and "not connected" in rsp["paras"]["error"]
    # delete: platform deletes the child, the session ends with BYE
    child.send("DEL")
    assert child.expect("OK deleting") == "OK deleting"
    assert child.expect("BYE") == "BYE deleted"
    wait_until(lambda: emulator.get_device(device_id) is None, what="child deleted on the platform")
    wait_until(lambda: gw.get_sub_device_by_node_id("tcp1") is None, what="persistence updated")


def test_disconnect_reports_offline_and_reconnect_logs_in_again(emulator, tcp_gateway):
    gw, server, connect = tcp_gateway
    first = connect()
    device_id = _login(first, "tcp2")
    assert emulator.wait_online(device_id, 10)
    first.send("QUIT")
    assert first.expect("OK bye") == "OK bye"
    assert emulator.wait_offline(device_id, 10)
    # commands to a disconnected child are answered with an error by the gateway
    rsp = emulator.send_command(device_id, "s", "c", {}, timeout=10)
    assert rsp["result_code"] != 0 and "not connected" in rsp["paras"]["error"]
    second = connect()
    assert _login(second, "tcp2") == device_id      # known from the persistence: no new add
    assert emulator.wait_online(device_id, 10)
    # a newer connection for the same node replaces the older one
    third = connect()
    assert _login(third, "tcp2") == device_id
    assert second.expect("BYE") == "BYE replaced by a newer connection"
    # the reusable interactive client (tcp_device.py) answers commands automatically
    lines = []
    dev = TcpDevice("127.0.0.1", server.port, "tcp3", output=lines.append)
    dev.start()
    try:
        wait_until(lambda: any(line.startswith("<< OK online") for line in lines), what="tcp_device online")
        child3 = lines[-1].split()[-1] if lines[-1].startswith("<< OK online") else "tcp_child_tcp3"
        assert emulator.wait_online(child3, 10)
        rsp = emulator.send_command(child3, "smokeDetector", "ringAlarm", {})
        assert rsp["result_code"] == 0 and rsp["paras"]["node_id"] == "tcp3"
    finally:
        dev.stop()


def test_garbage_on_the_tcp_port_keeps_the_server_up(emulator, tcp_gateway):
    gw, server, connect = tcp_gateway
    bad = connect()
    bad.send(b"\xff\xfe\xfa garbage\n")
    assert bad.read_line().startswith("ERR")
    bad.send("NOPE what")
    assert bad.read_line().startswith("ERR unknown command")
    bad.send("MSG before login")
    assert bad.read_line().startswith("ERR log in first")
    bad.send("LOGIN ../etc/passwd")
    assert bad.read_line().startswith("ERR node id")
    bad.send("CMDRSP 123 {}")
    assert bad.read_line().startswith("ERR no pending")
    bad.send(b"   \r\n")
    assert bad.read_line().startswith("ERR empty")
    device_id = _login(bad, "tcp4")
    bad.send("PROPS {not json")
    assert bad.read_line().startswith("ERR PROPS argument is not valid JSON")
    bad.send('PROPS [1, 2]')
    assert bad.read_line().startswith("ERR expected")
    # an over-long line closes only that connection; a half line then a hang-up is harmless
    huge = connect()
    huge.send(b"MSG " + b"x" * (70 * 1024) + b"\n")
    with pytest.raises((AssertionError, OSError)):
        huge.read_line(5)
    half = connect()
    half.send(b"LOGIN tcp5")   # no newline
    half.close()
    raw = socket.create_connection(("127.0.0.1", server.port))
    raw.sendall(bytes(range(256)) * 10)
    raw.close()
    # the server still serves old and new connections
    bad.send("PING")
    assert bad.expect("OK pong") == "OK pong"
    fresh = connect()
    fresh.send("PING")
    assert fresh.read_line() == "OK pong"
    assert emulator.wait_online(device_id, 10), [(e.direction, e.kind, e.payload[:200]) for e in emulator.trace(device_id=gw.get_device_id())][-12:]


def test_gateway_resyncs_after_losing_its_connection(emulator, gateways, tmp_path):
    """Children change on the platform while the gateway's link is cut; the reconnect syncs them."""
    persistence = SubDevicesFilePersistence(str(tmp_path / "subdevices.json"))
    gw = gateways.make(cls=SimpleGateway, persistence=persistence, min_backoff=1500, max_backoff=3000)
    gid = gw.get_device_id()
    svc = emulator.service("$sub_device_manager")
    svc.add_children(gid, ["r1", "r2", "r3"])
    wait_until(lambda: len(persistence.all_devices()) == 3, what="initial children")
    syncs_before = len([e for e in emulator.trace(device_id=gid, direction="up", kind="events_up")
                        if b"sub_device_sync_request" in e.payload])
    assert emulator.cut(gid)
    assert emulator.wait_offline(gid, 10)
    svc.delete_child(gid, "emu_product_r1")
    svc.add_children(gid, ["r4"])
    assert emulator.wait_online(gid, 20)      # the SDK reconnects by itself
    expected = {c["node_id"] for c in svc.children(gid)}
    assert expected == {"r2", "r3", "r4"}
    wait_until(lambda: set(persistence.all_devices()) == expected, what="persistence resynced")
    assert persistence.get_version() == svc.version(gid)

    def syncs():
        return [e for e in emulator.trace(device_id=gid, direction="up", kind="events_up")
                if b"sub_device_sync_request" in e.payload]

    # the reconnect sent a sync request (waited for: the PUBACK comes from the broker, the trace a moment later)
    wait_until(lambda: len(syncs()) > syncs_before, what="a sync request after the reconnect")
