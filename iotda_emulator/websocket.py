"""MQTT over WebSocket for the access front: the RFC 6455 handshake and framing, nothing more.

IoTDA serves MQTT over WebSocket with TLS (``wss://``, port 443; doc/protocol.md §1.1). The front accepts such a
connection on a listener of its own, answers the HTTP upgrade here, and then hands the device's MQTT byte
stream to the same code path as a TCP connection (:meth:`AccessFront._handle`) through an
``asyncio.StreamReader`` fed with the payload of the device's frames and an ``asyncio.StreamWriter`` whose
transport wraps every write in a binary frame. Authentication, implicit subscription and topic rules are thus
the front's own, unchanged; the TLS client certificate (X.509 devices) is that of the WebSocket's TLS link.

Choices where IoTDA's documentation is silent (doc/emulator.md): the path is ``/mqtt``; the sub-protocol must be
``mqtt`` (MQTT 5 §6) or the older ``mqttv3.1``; text frames, unmasked client frames and frames above
``MAX_FRAME`` close the connection (1003, 1002, 1009).
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import struct
from typing import Any, Dict, Optional, Tuple

logger = logging.getLogger(__name__)

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
MAX_HANDSHAKE = 8 * 1024            # request line and headers
MAX_FRAME = 4 * 1024 * 1024         # one frame's payload (an MQTT packet is at most 2 MB here)
_CHUNK = 64 * 1024                  # a frame's payload is read and handed on in pieces of this size
SUBPROTOCOLS = ("mqtt", "mqttv3.1")
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class HandshakeError(Exception):
    """The HTTP request is not a WebSocket upgrade we serve (``status`` is the HTTP answer)."""

    def __init__(self, status: str, why: str) -> None:
        super().__init__(why)
        self.status = status


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key``."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + _GUID).digest()).decode("ascii")


def parse_request(head: bytes, path: str) -> Tuple[str, Optional[str]]:
    """(accept key, chosen sub-protocol) for a valid upgrade request to ``path``; raises HandshakeError."""
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes everything
        raise HandshakeError("400 Bad Request", "undecodable request") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[0] != "GET" or not parts[2].startswith("HTTP/1.1"):
        raise HandshakeError("400 Bad Request", f"not an HTTP/1.1 GET: {lines[0][:80]!r}")
    if parts[1].split("?", 1)[0] != path:
        raise HandshakeError("404 Not Found", f"path {parts[1][:80]!r} is not {path!r}")
    headers: Dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise HandshakeError("400 Bad Request", "malformed header line")
        headers[name.strip().lower()] = value.strip()
    if headers.get("upgrade", "").lower() != "websocket" or "upgrade" not in headers.get("connection", "").lower():
        raise HandshakeError("400 Bad Request", "not a WebSocket upgrade")
    if headers.get("sec-websocket-version") != "13":
        raise HandshakeError("426 Upgrade Required", "WebSocket version 13 required")
    key = headers.get("sec-websocket-key", "")
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            raise ValueError
    except ValueError:
        raise HandshakeError("400 Bad Request", "bad Sec-WebSocket-Key") from None
    offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    chosen = next((p for p in offered if p in SUBPROTOCOLS), None)
    if chosen is None:
        raise HandshakeError("400 Bad Request", "the sub-protocol 'mqtt' was not offered")
    return accept_key(key), chosen


def encode_frame(payload: bytes, opcode: int = OP_BINARY) -> bytes:
    """One unmasked (server) frame with FIN set."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 0x10000:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


def _close_frame(code: int) -> bytes:
    return encode_frame(struct.pack("!H", code), OP_CLOSE)


class _FrameTransport(asyncio.Transport):
    """The transport the front writes to: each write becomes one binary frame on the real transport."""

    def __init__(self, real: asyncio.BaseTransport, reader: asyncio.StreamReader) -> None:
        super().__init__()
        self._real: Any = real
        self._reader = reader
        self._closing = False

    def write(self, data: Any) -> None:
        if not self._closing and data:
            self._real.write(encode_frame(bytes(data)))

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(bytes(d) for d in list_of_data))

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        try:
            self._real.write(_close_frame(1000))
        except Exception:  # noqa: BLE001 - already gone
            pass
        self._real.close()

    def abort(self) -> None:
        self._closing = True
        self._real.abort()

    def is_closing(self) -> bool:
        return self._closing or self._real.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._real.get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        return int(self._real.get_write_buffer_size())

    def can_write_eof(self) -> bool:
        return False

    def pause_reading(self) -> None:  # the front's reader asks for a pause: the frame pump waits
        self._reader_room.clear()

    def resume_reading(self) -> None:
        self._reader_room.set()

    _reader_room: asyncio.Event


async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str,
                 timeout: float) -> Optional[Tuple[asyncio.StreamReader, asyncio.StreamWriter, "asyncio.Task[None]"]]:
    """Answer the upgrade on a new connection; (reader, writer, pump task) of the MQTT stream, or None.

    On a refused or broken handshake the HTTP error is sent, the connection closed and None returned.
    """
    peer = writer.get_extra_info("peername")
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        if len(head) > MAX_HANDSHAKE:
            raise HandshakeError("431 Request Header Fields Too Large", "handshake too large")
        key, protocol = parse_request(head[:-4], path)
    except HandshakeError as exc:
        logger.info("websocket: refused %s: %s", peer, exc)
        try:
            writer.write(f"HTTP/1.1 {exc.status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
            await asyncio.wait_for(writer.drain(), 2)
        except Exception:  # noqa: BLE001 - the peer may be gone
            pass
        writer.close()
        return None
    except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError,
            OSError) as exc:
        logger.info("websocket: %s dropped before the handshake: %s", peer, type(exc).__name__)
        writer.close()
        return None
    writer.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Accept: {key}\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n").encode("ascii"))
    loop = asyncio.get_running_loop()
    mqtt_reader = asyncio.StreamReader(limit=64 * 1024)
    transport = _FrameTransport(writer.transport, mqtt_reader)
    transport._reader_room = asyncio.Event()
    transport._reader_room.set()
    mqtt_reader.set_transport(transport)  # a full buffer pauses the pump (back-pressure toward the device)
    # drain() waits on the real connection's protocol: its flow control is the real socket's
    mqtt_writer = asyncio.StreamWriter(transport, writer._protocol, mqtt_reader, loop)  # noqa: SLF001
    pump = asyncio.ensure_future(_pump(reader, writer, mqtt_reader, transport))
    return mqtt_reader, mqtt_writer, pump


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, out: asyncio.StreamReader,
                transport: _FrameTransport) -> None:
    """Device frames -> the MQTT stream, until a close frame, EOF or a protocol error."""
    code = 1000
    fragmented = False
    try:
        while True:
            await transport._reader_room.wait()
            b0, b1 = await reader.readexactly(2)
            opcode, masked, n = b0 & 0x0F, b1 & 0x80, b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", await reader.readexactly(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", await reader.readexactly(8))
            if not masked:
                code = 1002  # clients must mask every frame (RFC 6455 §5.1)
                break
            if n > MAX_FRAME or (opcode >= OP_CLOSE and (n > 125 or not b0 & 0x80)):
                code = 1009 if n > MAX_FRAME else 1002
                break
            mask = await reader.readexactly(4)
            if opcode >= OP_CLOSE:  # control frames: at most 125 bytes
                data = _unmask(await reader.readexactly(n), mask, 0) if n else b""
                if opcode == OP_PING:
                    writer.write(encode_frame(data, OP_PONG))
                    continue
                if opcode == OP_PONG:
                    continue
                if opcode == OP_CLOSE:
                    break
                code = 1002
                break
            if opcode == OP_TEXT or (opcode == OP_CONT and not fragmented) or opcode not in (OP_BINARY, OP_CONT):
                code = 1003 if opcode == OP_TEXT else 1002  # MQTT travels in binary frames only
                break
            fragmented = not (b0 & 0x80)
            # the payload in chunks, each waiting for room: memory stays bounded whatever the frame size
            # (the front applies its own CONNECT and packet size limits to the stream)
            offset = 0
            while offset < n:
                await transport._reader_room.wait()
                chunk = await reader.readexactly(min(n - offset, _CHUNK))
                out.feed_data(_unmask(chunk, mask, offset))
                offset += len(chunk)
    except (asyncio.IncompleteReadError, ConnectionError, OSError):
        code = 0
    except asyncio.CancelledError:
        code = 0
    finally:
        out.feed_eof()
    if code and not transport.is_closing():
        if code != 1000:
            logger.info("websocket: closing %s with code %d", writer.get_extra_info("peername"), code)
        try:
            writer.write(_close_frame(code))
        except Exception:  # noqa: BLE001
            pass


def _unmask(data: bytes, mask: bytes, offset: int) -> bytes:
    """XOR ``data`` (which starts ``offset`` bytes into its frame's payload) with the 4-byte ``mask``."""
    n = len(data)
    shift = offset % 4
    mask = mask[shift:] + mask[:shift]
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
