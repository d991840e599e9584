"""The SDK's small WebSocket client (``iot_device_sdk_python.tunnel.websocket_client``) against a hand-written
RFC 6455 server on a real socket: upgrade with extra headers, fragmented messages, server pings, close codes,
refusals and limits."""
from __future__ import annotations

import base64
import hashlib
import socket
import struct
import threading

import pytest

from iot_device_sdk_python.tunnel.websocket_client import WebSocketClient, WebSocketClosed, WebSocketError

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _frame(opcode, payload, fin=True):
    head = bytes([(0x80 if fin else 0) | opcode])
    size = len(payload)
    if size < 126:
        head += bytes([size])
    elif size < 65536:
        head += bytes([126]) + struct.pack("!H", size)
    else:
        head += bytes([127]) + struct.pack("!Q", size)
    return head + payload


def _read_client_frame(conn):
    b1, b2 = conn.recv(2, socket.MSG_WAITALL)
    assert b2 & 0x80, "client frames must be masked"
    size = b2 & 0x7F
    if size == 126:
        size = struct.unpack("!H", conn.recv(2, socket.MSG_WAITALL))[0]
    elif size == 127:
        size = struct.unpack("!Q", conn.recv(8, socket.MSG_WAITALL))[0]
    mask = conn.recv(4, socket.MSG_WAITALL)
    data = conn.recv(size, socket.MSG_WAITALL) if size else b""
    return b1 & 0x0F, bytes(c ^ mask[i % 4] for i, c in enumerate(data))


class Server:
    """Accepts one connection, answers the upgrade (``status``/``accept`` overridable), then runs ``script``."""

    def __init__(self, script, status="101 Switching Protocols", bad_accept=False):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.request = b""
        self.received = []
        self.error = None
        self._script, self._status, self._bad = script, status, bad_accept
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            conn, _ = self.sock.accept()
            with conn:
                while b"\r\n\r\n" not in self.request:
                    self.request += conn.recv(4096)
                key = [line.split(":", 1)[1].strip() for line in self.request.decode().split("\r\n")
                       if line.lower().startswith("sec-websocket-key:")][0]
                accept = base64.b64encode(hashlib.sha1(key.encode() + (b"x" if self._bad else GUID)).digest())
                conn.sendall(f"HTTP/1.1 {self._status}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             f"Sec-WebSocket-Accept: {accept.decode()}\r\n\r\n".encode())
                self._script(self, conn)
        except Exception as exc:  # reported by the test
            self.error = exc
        finally:
            self.sock.close()


def _connect(server, **kwargs):
    return WebSocketClient.connect(f"ws://127.0.0.1:{server.port}/v5/iot/tunnels/t1/device-connect",
                                   {"tunnel_access_token": "tok-123"}, timeout=5, **kwargs)


def test_upgrade_fragments_pings_and_close():
    def script(srv, conn):
        # a ping in the middle of a fragmented message, split across TCP writes
        data = _frame(0x1, b'{"operation_type":', fin=False) + _frame(0x9, b"p1") + _frame(0x0, b'"ping"}')
        conn.sendall(data[:5])
        conn.sendall(data[5:])
        srv.received.append(_read_client_frame(conn))      # the pong
        srv.received.append(_read_client_frame(conn))      # the client's text
        conn.sendall(_frame(0x8, struct.pack("!H", 1000) + b"bye"))
        srv.received.append(_read_client_frame(conn))      # the client's close answer

    server = Server(script)
    ws = _connect(server)
    assert ws.recv_text(timeout=5) == '{"operation_type":"ping"}'
    ws.send_text("é" * 200)        # 400 bytes: a 16-bit length
    with pytest.raises(WebSocketClosed) as closed:
        ws.recv_text(timeout=5)
    assert (closed.value.code, closed.value.reason) == (1000, "bye")
    ws.close()
    server.thread.join(5)
    assert server.error is None
    assert b"tunnel_access_token: tok-123\r\n" in server.request
    assert server.received[0] == (0xA, b"p1")
    assert server.received[1] == (0x1, ("é" * 200).encode())
    assert server.received[2][0] == 0x8 and server.received[2][1][:2] == struct.pack("!H", 1000)


def test_timeout_returns_none_and_keeps_a_partial_frame():
    go = threading.Event()

    def script(srv, conn):
        frame = _frame(0x1, b"x" * 70000)   # 64-bit length
        conn.sendall(frame[:1000])
        go.wait(5)
        conn.sendall(frame[1000:])
        conn.recv(1)

    server = Server(script)
    ws = _connect(server)
    assert ws.recv_text(timeout=0.2) is None      # half a frame: nothing lost, nothing returned
    go.set()
    assert ws.recv_text(timeout=5) == "x" * 70000
    ws.close()


def test_refusals_and_limits():
    server = Server(lambda srv, conn: None, status="401 Unauthorized")
    with pytest.raises(WebSocketError) as refused:
        _connect(server)
    assert refused.value.status == 401
    server = Server(lambda srv, conn: None, bad_accept=True)
    with pytest.raises(WebSocketError, match="Accept"):
        _connect(server)

    def big(srv, conn):
        conn.sendall(_frame(0x1, b"y" * 2000))
        conn.recv(1)

    server = Server(big)
    ws = _connect(server, max_message=1024)
    with pytest.raises(WebSocketError, match="over the limit"):
        ws.recv_text(timeout=5)
    ws.close()

    def binary(srv, conn):
        conn.sendall(_frame(0x2, b"\x00\x01"))
        conn.recv(1)

    server = Server(binary)
    ws = _connect(server)
    with pytest.raises(WebSocketError, match="binary"):
        ws.recv_text(timeout=5)
    ws.close()
    with pytest.raises(WebSocketError):
        WebSocketClient.connect("http://127.0.0.1:1/x")
    with pytest.raises(WebSocketError):
        WebSocketClient.connect("ws://127.0.0.1:1/x", {"evil": "a\r\nb"})
