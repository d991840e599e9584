"""The few MQTT packets the access front must understand (3.1, 3.1.1, and 5 tolerated).

The front reads each packet whole (fixed header + remaining length + body), parses CONNECT to
authenticate, re-encodes CONNECT only when the username must change, builds CONNACK on refusal and
subscribes devices implicitly (its own SUBSCRIBE, whose SUBACK it keeps), checks and may trim a device's
SUBSCRIBE, and reads PUBLISH headers (topic, flags, payload size) to enforce IoTDA's rules and limits.
Every other packet passes unchanged.
"""
from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass, field, replace
from typing import List, Optional, Tuple

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, DISCONNECT = 8, 9, 10, 11, 12, 14

MAX_PACKET = 2 * 1024 * 1024  # IoTDA caps publishes at 1 MB; anything far larger is an attack or garbage
# A CONNECT carries a client id, username and password of at most 256 bytes each (IoTDA) and, at most,
# a will and MQTT 5 properties: anything larger before authentication only costs the server memory.
MAX_CONNECT = 64 * 1024

# MQTT 5 reason codes the front uses on SUBACK/PUBACK/DISCONNECT
RC_NOT_AUTHORIZED, RC_QUOTA_EXCEEDED = 0x87, 0x97
SUBACK_FAILURE = 0x80  # 3.1.1

# CONNACK return codes (3.1.1) and their MQTT 5 reason codes.
ACCEPTED, BAD_PROTOCOL, BAD_CLIENT_ID, SERVER_UNAVAILABLE, BAD_CREDENTIALS, NOT_AUTHORIZED = range(6)
_V5_REASON = {0: 0x00, 1: 0x84, 2: 0x85, 3: 0x88, 4: 0x86, 5: 0x87}


class PacketError(ValueError):
    """The bytes are not a well-formed MQTT packet of the expected kind."""


class PacketTooLarge(PacketError):
    """A packet announces a remaining length above the reader's limit (its body was not read)."""

    def __init__(self, first_byte: int, length: int, max_size: int) -> None:
        super().__init__(f"packet of {length} bytes exceeds {max_size}")
        self.first_byte = first_byte
        self.length = length


@dataclass
class Packet:
    """One MQTT control packet: ``raw`` holds every byte as received."""

    first_byte: int
    body: bytes
    raw: bytes

    @property
    def type(self) -> int:
        return self.first_byte >> 4


@dataclass
class ConnectInfo:
    """The parsed fields of a CONNECT packet (``password`` stays bytes; never log it)."""

    protocol_name: str
    protocol_level: int
    flags: int
    keepalive: int
    client_id: str
    username: Optional[str] = None
    password: Optional[bytes] = None
    will_topic: Optional[str] = None
    will_payload: Optional[bytes] = None
    properties: bytes = b""        # MQTT 5: raw property bytes (without the length)
    will_properties: bytes = b""   # MQTT 5
    extra: dict = field(default_factory=dict)

    @property
    def clean_session(self) -> bool:
        return bool(self.flags & 0x02)

    @property
    def will_flag(self) -> bool:
        return bool(self.flags & 0x04)

    @property
    def is_v5(self) -> bool:
        return self.protocol_level == 5

    def __repr__(self) -> str:  # keep the password out of logs and tracebacks
        return (f"ConnectInfo(level={self.protocol_level}, client_id={self.client_id!r}, "
                f"username={self.username!r}, keepalive={self.keepalive}, "
                f"password={'<set>' if self.password is not None else None})")


# ---- varints and strings -------------------------------------------------------------------

def encode_varint(n: int) -> bytes:
    """MQTT variable byte integer."""
    if n < 0 or n > 268_435_455:
        raise PacketError("remaining length out of range")
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _decode_varint(buf: bytes, pos: int) -> Tuple[int, int]:
    mult, value = 1, 0
    for _ in range(4):
        if pos >= len(buf):
            raise PacketError("truncated variable byte integer")
        b = buf[pos]
        pos += 1
        value += (b & 0x7F) * mult
        if not b & 0x80:
            return value, pos
        mult *= 128
    raise PacketError("variable byte integer longer than 4 bytes")


def _read_bin(buf: bytes, pos: int) -> Tuple[bytes, int]:
    if pos + 2 > len(buf):
        raise PacketError("truncated length prefix")
    (n,) = struct.unpack_from("!H", buf, pos)
    pos += 2
    if pos + n > len(buf):
        raise PacketError("field longer than the packet")
    return bytes(buf[pos:pos + n]), pos + n


def _read_str(buf: bytes, pos: int) -> Tuple[str, int]:
    raw, pos = _read_bin(buf, pos)
    try:
        return raw.decode("utf-8"), pos
    except UnicodeDecodeError:
        raise PacketError("string is not UTF-8") from None


def _bin(b: bytes) -> bytes:
    if len(b) > 0xFFFF:
        raise PacketError("field too long")
    return struct.pack("!H", len(b)) + b


def _str(s: str) -> bytes:
    return _bin(s.encode("utf-8"))


# ---- reading from a stream ------------------------------------------------------------------

async def read_packet(reader: asyncio.StreamReader, max_size: int = MAX_PACKET) -> Optional[Packet]:
    """Read one whole packet; None on a clean EOF before its first byte.

    Raises ``PacketError`` on a malformed length and ``asyncio.IncompleteReadError`` on EOF mid-packet.
    """
    first = await reader.read(1)
    if not first:
        return None
    header = bytearray(first)
    mult, length = 1, 0
    for _ in range(4):
        b = (await reader.readexactly(1))[0]
        header.append(b)
        length += (b & 0x7F) * mult
        if not b & 0x80:
            break
        mult *= 128
    else:
        raise PacketError("remaining length longer than 4 bytes")
    if length > max_size:
        raise PacketTooLarge(first[0], length, max_size)
    body = await reader.readexactly(length) if length else b""
    return Packet(first[0], body, bytes(header) + body)


def _remaining_length(data: bytes | bytearray, pos: int, n: int) -> Optional[Tuple[int, int]]:
    """(remaining length, index where the body starts) of the packet at ``data[pos]``; None while its length bytes
    are not all in ``data[:n]``. Raises ``PacketError`` for a length field longer than 4 bytes."""
    i, mult, length = pos + 1, 1, 0
    while i < n:
        b = data[i]
        i += 1
        length += (b & 0x7F) * mult
        if not b & 0x80:
            return length, i
        mult *= 128
        if i - pos > 4:
            raise PacketError("remaining length longer than 4 bytes")
    return None


def next_packet(data: bytes, pos: int, max_size: int = MAX_PACKET) -> Optional[Tuple[Packet, int]]:
    """The whole packet starting at ``data[pos]`` and the position after it; None when it is not complete in
    ``data``, longer than ``max_size`` or its length is malformed (a stream reader then gives the exact error)."""
    n = len(data)
    try:
        got = _remaining_length(data, pos, n)
    except PacketError:
        return None
    if got is None:
        return None
    length, i = got
    end = i + length
    if length > max_size or end > n:
        return None
    raw = data[pos:end]
    return Packet(data[pos], raw[i - pos:], raw), end


class PacketReader:
    """Reads whole packets from a stream a chunk at a time: every packet already received comes back from one
    call, instead of several awaits (and reads) per packet. Limits and errors as :func:`read_packet`."""

    def __init__(self, reader: asyncio.StreamReader, max_size: int = MAX_PACKET, chunk: int = 65536) -> None:
        self._reader = reader
        self._buf = bytearray()
        self._error: Optional[PacketError] = None
        self.max_size = max_size
        self._chunk = chunk

    @property
    def idle(self) -> bool:
        """True when nothing read is waiting to be returned: no partial packet here, nothing in the stream's buffer."""
        return not self._buf and self._error is None and not getattr(self._reader, "_buffer", b"")

    async def read_packets(self) -> List[Packet]:
        """The next packets (at least one); [] on a clean EOF between packets.

        Raises ``PacketError``/``PacketTooLarge`` once the packets before the bad one were returned, and
        ``asyncio.IncompleteReadError`` on EOF mid-packet.
        """
        while True:
            packets = self._split()
            if packets:
                return packets
            if self._error is not None:
                raise self._error
            data = await self._reader.read(self._chunk)
            if not data:
                if self._buf:
                    raise asyncio.IncompleteReadError(bytes(self._buf), None)
                return []
            self._buf += data

    def _split(self) -> List[Packet]:
        buf, out, pos, n = self._buf, [], 0, len(self._buf)
        while pos + 1 < n and self._error is None:
            first = buf[pos]
            try:
                got = _remaining_length(buf, pos, n)
            except PacketError as exc:
                self._error = exc
                break
            if got is None:
                break  # the length is not complete yet
            length, i = got
            if length > self.max_size:
                self._error = PacketTooLarge(first, length, self.max_size)
                break
            end = i + length
            if end > n:
                break
            raw = bytes(buf[pos:end])
            out.append(Packet(first, raw[i - pos:], raw))
            pos = end
        if pos:
            del buf[:pos]
        return out


# ---- CONNECT / CONNACK ----------------------------------------------------------------------

def parse_connect(body: bytes) -> ConnectInfo:
    """Parse a CONNECT body (variable header + payload). Raises ``PacketError`` when malformed."""
    name, pos = _read_str(body, 0)
    if pos + 4 > len(body):
        raise PacketError("truncated CONNECT header")
    level, flags = body[pos], body[pos + 1]
    (keepalive,) = struct.unpack_from("!H", body, pos + 2)
    pos += 4
    if flags & 0x01:
        raise PacketError("reserved CONNECT flag set")
    info = ConnectInfo(name, level, flags, keepalive, "")
    if level == 5:
        plen, pos = _decode_varint(body, pos)
        info.properties = bytes(body[pos:pos + plen])
        pos += plen
    info.client_id, pos = _read_str(body, pos)
    if flags & 0x04:
        if level == 5:
            wlen, pos = _decode_varint(body, pos)
            info.will_properties = bytes(body[pos:pos + wlen])
            pos += wlen
        info.will_topic, pos = _read_str(body, pos)
        info.will_payload, pos = _read_bin(body, pos)
    if flags & 0x80:
        info.username, pos = _read_str(body, pos)
    if flags & 0x40:
        info.password, pos = _read_bin(body, pos)
    if pos != len(body):
        raise PacketError("trailing bytes after CONNECT payload")
    return info


def encode_connect(info: ConnectInfo) -> bytes:
    """Encode ``info`` as a whole CONNECT packet (flags follow the optional fields present)."""
    flags = info.flags & 0x3E  # keep clean session, will flag/QoS/retain; recompute user/password
    if info.will_topic is None:
        flags &= ~0x3C & 0xFF
    if info.username is not None:
        flags |= 0x80
    if info.password is not None:
        flags |= 0x40
    vh = _str(info.protocol_name) + bytes([info.protocol_level, flags]) + struct.pack("!H", info.keepalive)
    if info.protocol_level == 5:
        vh += encode_varint(len(info.properties)) + info.properties
    payload = _str(info.client_id)
    if info.will_topic is not None:
        if info.protocol_level == 5:
            payload += encode_varint(len(info.will_properties)) + info.will_properties
        payload += _str(info.will_topic) + _bin(info.will_payload or b"")
    if info.username is not None:
        payload += _str(info.username)
    if info.password is not None:
        payload += _bin(info.password)
    body = vh + payload
    return bytes([CONNECT << 4]) + encode_varint(len(body)) + body


def with_username(info: ConnectInfo, username: str) -> ConnectInfo:
    """A copy of ``info`` whose username is ``username``."""
    return replace(info, username=username)


def connack(return_code: int, protocol_level: int = 4, session_present: bool = False) -> bytes:
    """A CONNACK with a 3.1.1 return code (mapped to the MQTT 5 reason code for a v5 client)."""
    if protocol_level == 5:
        return bytes([CONNACK << 4, 3, 1 if session_present else 0, _V5_REASON.get(return_code, 0x80), 0])
    return bytes([CONNACK << 4, 2, 1 if session_present else 0, return_code])


def connack_code(packet: Packet) -> int:
    """The return/reason code of a CONNACK packet (0 = accepted)."""
    if packet.type != CONNACK or len(packet.body) < 2:
        raise PacketError("not a CONNACK")
    return packet.body[1]


def encode_disconnect(reason_code: Optional[int] = None) -> bytes:
    """A DISCONNECT; with ``reason_code`` the MQTT 5 form carrying it (server-sent reasons such as 0x9B)."""
    if reason_code is None:
        return bytes([DISCONNECT << 4, 0])
    return bytes([DISCONNECT << 4, 1, reason_code])


# MQTT 5 DISCONNECT reason codes the access front sends when it closes a link for a limit violation.
RC_PACKET_TOO_LARGE, RC_RETAIN_NOT_SUPPORTED, RC_QOS_NOT_SUPPORTED = 0x95, 0x9A, 0x9B


# ---- SUBSCRIBE / SUBACK / UNSUBSCRIBE (implicit subscriptions and topic checks) --------------

@dataclass
class Subscribe:
    """A parsed SUBSCRIBE: packet id, MQTT 5 property bytes, and (filter, options byte) entries."""

    packet_id: int
    properties: bytes
    entries: List[Tuple[str, int]]

    @property
    def filters(self) -> List[str]:
        return [f for f, _ in self.entries]


def parse_subscribe_full(body: bytes, protocol_level: int) -> Subscribe:
    """The packet id, properties and (filter, options) entries of a SUBSCRIBE body."""
    if len(body) < 2:
        raise PacketError("truncated SUBSCRIBE")
    (pid,) = struct.unpack_from("!H", body, 0)
    pos, props = 2, b""
    if protocol_level == 5:
        plen, pos = _decode_varint(body, pos)
        props = bytes(body[pos:pos + plen])
        pos += plen
    entries = []
    while pos < len(body):
        flt, pos = _read_str(body, pos)
        if pos >= len(body):
            raise PacketError("SUBSCRIBE filter without options")
        entries.append((flt, body[pos]))
        pos += 1
    if not entries:
        raise PacketError("SUBSCRIBE without a filter")
    return Subscribe(pid, props, entries)


def parse_subscribe(body: bytes, protocol_level: int) -> Tuple[int, List[str]]:
    """(packet id, topic filters) of a SUBSCRIBE body."""
    sub = parse_subscribe_full(body, protocol_level)
    return sub.packet_id, sub.filters


def encode_subscribe(packet_id: int, entries: List[Tuple[str, int]], protocol_level: int,
                     properties: bytes = b"") -> bytes:
    """A whole SUBSCRIBE packet (the fixed header's reserved bits are 0010)."""
    body = struct.pack("!H", packet_id)
    if protocol_level == 5:
        body += encode_varint(len(properties)) + properties
    for flt, opts in entries:
        body += _str(flt) + bytes([opts])
    return bytes([(SUBSCRIBE << 4) | 0x02]) + encode_varint(len(body)) + body


def encode_suback(packet_id: int, codes: List[int], protocol_level: int) -> bytes:
    """A whole SUBACK packet with ``codes`` (MQTT 5: no properties)."""
    body = struct.pack("!H", packet_id) + (b"\x00" if protocol_level == 5 else b"") + bytes(codes)
    return bytes([SUBACK << 4]) + encode_varint(len(body)) + body


def parse_unsubscribe(body: bytes, protocol_level: int) -> Tuple[int, List[str]]:
    """(packet id, topic filters) of an UNSUBSCRIBE body."""
    pid, pos = _packet_id_header(body, protocol_level, "UNSUBSCRIBE")
    filters = []
    while pos < len(body):
        flt, pos = _read_str(body, pos)
        filters.append(flt)
    return pid, filters


def parse_suback(body: bytes, protocol_level: int) -> Tuple[int, List[int]]:
    """(packet id, granted codes) of a SUBACK body."""
    pid, pos = _packet_id_header(body, protocol_level, "SUBACK")
    return pid, list(body[pos:])


def _packet_id_header(body: bytes, protocol_level: int, what: str) -> Tuple[int, int]:
    """(packet id, offset after it and, for MQTT 5, after the properties) of a SUBSCRIBE/SUBACK body."""
    if len(body) < 2:
        raise PacketError(f"truncated {what}")
    (pid,) = struct.unpack_from("!H", body, 0)
    pos = 2
    if protocol_level == 5:
        plen, pos = _decode_varint(body, pos)
        pos += plen
    return pid, pos


def publish_topic_qos_pid(first_byte: int, body: bytes) -> Tuple[str, int, Optional[int]]:
    """(topic, qos, packet id or None) of a PUBLISH."""
    topic, pos = _read_str(body, 0)
    qos = (first_byte >> 1) & 0x03
    pid = None
    if qos:
        if pos + 2 > len(body):
            raise PacketError("truncated PUBLISH packet id")
        (pid,) = struct.unpack_from("!H", body, pos)
    return topic, qos, pid


def publish_payload_size(first_byte: int, body: bytes, protocol_level: int) -> int:
    """The application payload size of a PUBLISH body (topic, packet id and MQTT 5 properties excluded)."""
    if len(body) < 2:
        raise PacketError("truncated PUBLISH topic")
    pos = 2 + struct.unpack_from("!H", body, 0)[0]
    if (first_byte >> 1) & 0x03:
        pos += 2
    if protocol_level == 5:
        plen, pos = _decode_varint(body, pos)
        pos += plen
    if pos > len(body):
        raise PacketError("PUBLISH header longer than the packet")
    return len(body) - pos


# MQTT 5 PUBLISH property ids -> value size in bytes ("s": a length-prefixed string or binary, "p": a string
# pair, "v": a variable byte integer)
_PUBLISH_PROPERTY_SIZE = {0x01: 1, 0x02: 4, 0x23: 2, 0x08: "s", 0x09: "s", 0x03: "s", 0x26: "p", 0x0B: "v"}
TOPIC_ALIAS = 0x23


def publish_topic_alias(first_byte: int, body: bytes) -> Optional[int]:
    """The Topic Alias property of an MQTT 5 PUBLISH body, or None (raises PacketError when malformed)."""
    if len(body) < 2:
        raise PacketError("truncated PUBLISH topic")
    pos = 2 + struct.unpack_from("!H", body, 0)[0]
    if (first_byte >> 1) & 0x03:
        pos += 2
    plen, pos = _decode_varint(body, pos)
    end = pos + plen
    if end > len(body):
        raise PacketError("PUBLISH properties longer than the packet")
    while pos < end:
        pid = body[pos]
        pos += 1
        size = _PUBLISH_PROPERTY_SIZE.get(pid)
        if size is None:
            raise PacketError(f"unknown PUBLISH property 0x{pid:02X}")
        if pid == TOPIC_ALIAS:
            if pos + 2 > end:
                raise PacketError("truncated topic alias")
            return int(struct.unpack_from("!H", body, pos)[0])
        if size == "s":
            pos = _read_bin(body, pos)[1]
        elif size == "p":
            pos = _read_bin(body, _read_bin(body, pos)[1])[1]
        elif size == "v":
            pos = _decode_varint(body, pos)[1]
        else:
            pos += int(size)
    return None


def encode_puback(packet_id: int, reason_code: Optional[int] = None) -> bytes:
    """A PUBACK: success (valid for 3.1.1 and 5), or with an MQTT 5 ``reason_code`` (e.g. 0x87 refused)."""
    if reason_code is None:
        return bytes([PUBACK << 4, 2]) + struct.pack("!H", packet_id)
    return bytes([PUBACK << 4, 3]) + struct.pack("!H", packet_id) + bytes([reason_code])


def encode_publish(topic: str, payload: bytes, qos: int = 0, packet_id: int = 1, retain: bool = False) -> bytes:
    """A 3.1.1 PUBLISH (used by tests that speak raw MQTT)."""
    body = _str(topic) + (struct.pack("!H", packet_id) if qos else b"") + payload
    return bytes([(PUBLISH << 4) | (qos << 1) | (1 if retain else 0)]) + encode_varint(len(body)) + body
