"""A small blocking WebSocket client (RFC 6455) for device tunnels: text frames, ping/pong, close.

The SDK depends on paho-mqtt only; paho's own WebSocket code is private, so the tunnel speaks WebSocket with
this module: one HTTP/1.1 upgrade (with extra headers such as ``tunnel_access_token``), masked client frames,
fragmented messages reassembled, server pings answered, and a bound on the size of a message.
"""
from __future__ import annotations

import base64
import hashlib
import os
import select
import socket
import ssl
import struct
import threading
import time
from typing import Dict, List, Optional, Tuple
from urllib.parse import urlsplit

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_MAX_HEAD = 16 * 1024


class WebSocketError(Exception):
    """The WebSocket could not be opened (``status``: the HTTP status when the server answered) or broke."""

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.status = status


class WebSocketClosed(WebSocketError):
    """The peer closed the WebSocket (``code``/``reason`` of its close frame when it sent one)."""

    def __init__(self, code: Optional[int] = None, reason: str = "") -> None:
        super().__init__(f"WebSocket closed ({code}: {reason})" if code else "WebSocket closed")
        self.code = code
        self.reason = reason


class WebSocketClient:
    """A connected WebSocket. :meth:`recv_text` from one thread; :meth:`send_text` from any."""

    def __init__(self, sock: socket.socket, max_message: int) -> None:
        self._sock = sock
        self._max = max_message
        self._send_lock = threading.Lock()
        self._closed = False
        self._buf = b""
        # a fragmented message being reassembled (kept across recv_text calls that time out)
        self._opcode: Optional[int] = None
        self._parts: List[bytes] = []

    @classmethod
    def connect(cls, url: str, headers: Optional[Dict[str, str]] = None, timeout: float = 10.0,
                ssl_context: Optional[ssl.SSLContext] = None, max_message: int = 1024 * 1024) -> "WebSocketClient":
        """Open ``url`` (``ws://`` or ``wss://``) and upgrade; raises :class:`WebSocketError` (with the HTTP
        status when the server refused) or ``OSError``."""
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise WebSocketError(f"not a ws:// or wss:// URL: {parts.scheme}://{parts.hostname}")
        for name, value in (headers or {}).items():
            if ":" in name or any(c in f"{name}{value}" for c in "\r\n"):
                raise WebSocketError("a header name or value contains a line break or a colon in the name")
        port = parts.port or (443 if parts.scheme == "wss" else 80)
        raw = socket.create_connection((parts.hostname, port), timeout=timeout)
        sock: socket.socket = raw
        try:
            if parts.scheme == "wss":
                ctx = ssl_context or ssl.create_default_context()
                sock = ctx.wrap_socket(raw, server_hostname=parts.hostname)
            client = cls(sock, max_message)
            client._handshake(parts.hostname, port, parts.path or "/", parts.query, headers or {})
        except BaseException:
            sock.close()
            raise
        sock.settimeout(None)   # blocking from now on: recv_text waits with select (see _fill)
        return client

    def _handshake(self, host: str, port: int, path: str, query: str, headers: Dict[str, str]) -> None:
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        target = path + ("?" + query if query else "")
        lines = [f"GET {target} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        for name, value in headers.items():   # checked by connect()
            lines.append(f"{name}: {value}")
        self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        while b"\r\n\r\n" not in self._buf:
            if len(self._buf) > _MAX_HEAD:
                raise WebSocketError("the upgrade answer's head is too long")
            chunk = self._sock.recv(4096)
            if not chunk:
                raise WebSocketError("the server closed the connection during the upgrade")
            self._buf += chunk
        head, self._buf = self._buf.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        fields = status_line.split(" ", 2)
        status = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None
        if status != 101:
            raise WebSocketError(f"the server refused the WebSocket: {status_line[:100]}", status)
        answer = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            answer[name.strip().lower()] = value.strip()
        expected = base64.b64encode(hashlib.sha1(key.encode("ascii") + _GUID).digest()).decode("ascii")
        if answer.get("sec-websocket-accept") != expected:
            raise WebSocketError("the server's Sec-WebSocket-Accept is wrong")

    # ---- sending --------------------------------------------------------------------------------------
    def _send_frame(self, opcode: int, payload: bytes) -> None:
        size = len(payload)
        if size < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
        elif size < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
        mask = os.urandom(4)
        with self._send_lock:
            if self._closed and opcode != OP_CLOSE:
                raise WebSocketClosed()
            self._sock.sendall(header + mask + _mask(payload, mask))

    def send_text(self, text: str) -> None:
        """Send one text message."""
        self._send_frame(OP_TEXT, text.encode("utf-8"))

    # ---- receiving ------------------------------------------------------------------------------------
    def _fill(self, count: int, deadline: Optional[float]) -> None:
        """Read until ``count`` bytes are buffered; ``socket.timeout`` at ``deadline`` (nothing is lost: the
        bytes stay buffered). The socket itself stays blocking, so a sender in another thread never times out."""
        while len(self._buf) < count:
            pending = self._sock.pending() if isinstance(self._sock, ssl.SSLSocket) else 0
            if deadline is not None and not pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not select.select([self._sock], [], [], remaining)[0]:
                    raise socket.timeout("no WebSocket data in time")
            chunk = self._sock.recv(65536)
            if not chunk:
                raise WebSocketClosed()
            self._buf += chunk

    def _read_frame(self, deadline: Optional[float]) -> Tuple[bool, int, bytes]:
        """The next whole frame (consumed from the buffer only once complete)."""
        self._fill(2, deadline)
        b1, b2 = self._buf[0], self._buf[1]
        size, offset = b2 & 0x7F, 2
        if size == 126:
            self._fill(4, deadline)
            size, offset = struct.unpack("!H", self._buf[2:4])[0], 4
        elif size == 127:
            self._fill(10, deadline)
            size, offset = struct.unpack("!Q", self._buf[2:10])[0], 10
        if size > self._max:
            raise WebSocketError(f"a frame of {size} bytes is over the limit of {self._max}")
        masked = bool(b2 & 0x80)
        total = offset + (4 if masked else 0) + size
        self._fill(total, deadline)
        mask = self._buf[offset:offset + 4] if masked else b""
        payload = self._buf[total - size:total]
        self._buf = self._buf[total:]
        return bool(b1 & 0x80), b1 & 0x0F, _mask(payload, mask) if masked else payload

    def recv_text(self, timeout: Optional[float] = None) -> Optional[str]:
        """The next text message; None when ``timeout`` seconds passed first. Raises :class:`WebSocketClosed`
        when the peer closed (answering its close) and :class:`WebSocketError` for a binary or oversized
        message. Call it from one thread only."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                fin, op, payload = self._read_frame(deadline)
            except socket.timeout:
                return None
            if op == OP_PING:
                self._send_frame(OP_PONG, payload)
                continue
            if op == OP_PONG:
                continue
            if op == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                reason = payload[2:].decode("utf-8", "replace")
                try:
                    self._send_frame(OP_CLOSE, payload[:2])
                except OSError:
                    pass
                self._closed = True
                raise WebSocketClosed(code, reason)
            if op in (OP_TEXT, OP_BINARY):
                self._opcode, self._parts = op, [payload]
            elif op == OP_CONT and self._opcode is not None:
                self._parts.append(payload)
            else:
                raise WebSocketError(f"unexpected WebSocket opcode {op}")
            if sum(len(p) for p in self._parts) > self._max:
                raise WebSocketError(f"a message is over the limit of {self._max} bytes")
            if fin:
                opcode, parts = self._opcode, self._parts
                self._opcode, self._parts = None, []
                if opcode != OP_TEXT:
                    raise WebSocketError("a binary message where text was expected")
                return b"".join(parts).decode("utf-8")

    def close(self, code: int = 1000) -> None:
        """Send a close frame (best effort) and close the socket; idempotent."""
        if not self._closed:
            self._closed = True
            try:
                self._send_frame(OP_CLOSE, struct.pack("!H", code))
            except OSError:
                pass
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()


def _mask(data: bytes, mask: bytes) -> bytes:
    if not data:
        return data
    repeated = (mask * (len(data) // 4 + 1))[:len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")).to_bytes(len(data), "big")
