"""A minimal MQTT 3.1.1 client for MicroPython, with the same interface as ``umqtt.simple``.

What it does: CONNECT (user name, password, keepalive, clean session), PUBLISH at QoS 0 and 1 (QoS 1 waits
for the PUBACK, with a time limit), SUBSCRIBE (waits for the SUBACK), PINGREQ, DISCONNECT, and receiving
PUBLISH at QoS 0/1 (QoS 1 is acknowledged before the callback runs). No QoS 2, retain or will: IoTDA has
none of them.

Memory: fixed headers are written from one preallocated buffer, the topic and payload of a PUBLISH are
written in place (no packet is assembled), and a PUBLISH larger than ``max_packet`` is read through a
small scratch buffer and dropped instead of being allocated.
"""
import socket

try:
    import select
except ImportError:   # a port without select: waits then rely on blocking reads
    select = None

from ..utils.iot_util import ticks_add, ticks_diff, ticks_ms

CONNECT = 0x10
CONNACK = 0x20
PUBLISH = 0x30
PUBACK = 0x40
SUBSCRIBE = 0x82
SUBACK = 0x90
PINGREQ = 0xC0
PINGRESP = 0xD0
DISCONNECT = 0xE0

ETIMEDOUT = 110


class MQTTException(Exception):
    """The broker refused something: ``args[0]`` is the CONNACK return code (1-5) or a short reason."""


class MQTTClient:
    """One MQTT 3.1.1 connection. ``ssl``: an ``ssl.SSLContext`` (or anything with
    ``wrap_socket(sock, server_hostname=...)``) to connect over TLS; ``ssl_params`` are passed to it.

    ``set_callback(f)`` sets ``f(topic: bytes, msg: bytes)`` for received PUBLISHes. ``last_rx`` is the
    ``ticks_ms()`` of the last packet read (for dead-link detection).
    """

    def __init__(self, client_id, server, port=0, user=None, password=None, keepalive=0, ssl=None,
                 ssl_params=None, timeout_ms=10000, max_packet=16384) -> None:
        self.client_id = client_id
        self.server = server
        self.port = port or (8883 if ssl else 1883)
        self.user = user
        self.pswd = password
        self.keepalive = keepalive
        self.ssl = ssl
        self.ssl_params = ssl_params or {}
        self.timeout_ms = timeout_ms
        self.max_packet = max_packet
        self.sock = None
        self._raw = None             # the TCP socket under TLS, which holds the read/write timeout
        self.cb = None
        self.pid = 0
        self.last_rx = ticks_ms()
        self._hdr = bytearray(5)     # fixed header: type byte + up to 4 remaining-length bytes
        self._two = bytearray(2)     # 16-bit fields (lengths, packet ids)
        self._scratch = None         # created on the first oversized PUBLISH
        self._acked = 0              # packet id of the last PUBACK/SUBACK read
        self._last_code = 0          # first return code of the last SUBACK
        self._poller = None

    # ---- connection -------------------------------------------------------------------------------
    def set_callback(self, f) -> None:
        self.cb = f

    def connect(self, clean_session=True) -> bool:
        """Open the socket (and TLS), send CONNECT and wait for CONNACK; returns the session-present flag.

        Raises OSError on network errors and MQTTException(code) when the broker refuses.
        """
        addr = socket.getaddrinfo(self.server, self.port, 0, socket.SOCK_STREAM)[0][-1]
        raw = socket.socket()
        try:
            raw.settimeout(self.timeout_ms / 1000)   # bounds the TCP connect, TLS handshake and CONNACK
            raw.connect(addr)
            sock = raw
            if self.ssl:
                params = dict(self.ssl_params)
                params.setdefault("server_hostname", self.server)
                sock = self.ssl.wrap_socket(raw, **params)
            self.sock = sock
            user = self._utf8(self.user) if self.user is not None else None
            pswd = self._utf8(self.pswd) if self.pswd is not None else None
            cid = self._utf8(self.client_id)
            length = 10 + 2 + len(cid)
            flags = 0x02 if clean_session else 0
            if user is not None:
                length += 2 + len(user)
                flags |= 0x80
            if pswd is not None:
                length += 2 + len(pswd)
                flags |= 0x40
            self._send_fixed(CONNECT, length)
            self._write(b"\x00\x04MQTT\x04")
            self._write(bytes((flags, self.keepalive >> 8, self.keepalive & 0xFF)))
            self._send_str(cid)
            if user is not None:
                self._send_str(user)
            if pswd is not None:
                self._send_str(pswd)
            resp = self._read(4)
            if resp[0] != CONNACK or resp[1] != 2:
                raise MQTTException("bad CONNACK")
            if resp[3] != 0:
                raise MQTTException(resp[3])
            # the timeout stays: a packet that stops half-way or a write that never drains is a dead link
            self._raw = raw
            self.last_rx = ticks_ms()
            if select is not None:
                self._poller = select.poll()
                self._poller.register(self.sock, select.POLLIN)
            return bool(resp[2] & 1)
        except BaseException:
            self._close()
            try:
                raw.close()
            except OSError:
                pass
            raise

    def disconnect(self) -> None:
        """Send DISCONNECT (best effort) and close the socket."""
        if self.sock is not None:
            try:
                self._write(b"\xe0\x00")
            except OSError:
                pass
        self._close()

    def _close(self) -> None:
        sock, self.sock, self._poller, self._raw = self.sock, None, None, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    # ---- sending ------------------------------------------------------------------------------------
    def ping(self) -> None:
        self._write(b"\xc0\x00")

    def publish(self, topic, msg, retain=False, qos=0) -> None:
        """PUBLISH ``msg`` (str or bytes) on ``topic``; at QoS 1 returns once the PUBACK has arrived
        (PUBLISHes received meanwhile go to the callback). Raises OSError on timeout or link loss."""
        if qos not in (0, 1):
            raise ValueError("qos must be 0 or 1")
        topic = self._utf8(topic)
        if isinstance(msg, str):
            msg = msg.encode("utf-8")
        length = 2 + len(topic) + len(msg) + (2 if qos else 0)
        self._send_fixed(PUBLISH | (qos << 1) | (1 if retain else 0), length)
        self._send_str(topic)
        if qos:
            pid = self._next_pid()
            self._send_u16(pid)
        self._write(msg)
        if qos:
            self._wait_ack(PUBACK, pid)

    def subscribe(self, topic, qos=0) -> None:
        """SUBSCRIBE to one topic filter and wait for the SUBACK; MQTTException when the broker refuses."""
        topic = self._utf8(topic)
        pid = self._next_pid()
        self._send_fixed(SUBSCRIBE, 2 + 2 + len(topic) + 1)
        self._send_u16(pid)
        self._send_str(topic)
        self._write(bytes((qos,)))
        if self._wait_ack(SUBACK, pid) == 0x80:
            raise MQTTException("subscribe refused")

    # ---- receiving ----------------------------------------------------------------------------------
    def check_msg(self):
        """Handle one packet if one is waiting, without blocking; returns like :meth:`wait_msg`."""
        self.sock.setblocking(False)
        try:
            first = self.sock.read(1)
        finally:
            self._raw.settimeout(self.timeout_ms / 1000)   # back to blocking reads, with the time limit
        if first is None:
            return None
        return self._handle(first)

    def wait_msg(self):
        """Read and handle one packet (blocking). Returns None after a PUBLISH or PINGRESP, else the
        packet type byte (the caller checks acks through it)."""
        return self._handle(self._read(1))

    def _handle(self, first):
        if not first:
            raise OSError(-1)   # peer closed
        op = first[0]
        length = self._read_length()
        self.last_rx = ticks_ms()
        kind = op & 0xF0
        if kind == PUBLISH:
            self._read_publish(op, length)
            return None
        if kind == PINGRESP:
            self._skip(length)
            return None
        if kind in (PUBACK, SUBACK):
            self._readinto(self._two)
            self._acked = (self._two[0] << 8) | self._two[1]
            code = self._read(length - 2) if length > 2 else b""
            self._last_code = code[0] if code else 0
            return op
        self._skip(length)   # anything else (UNSUBACK...) is not ours to handle
        return op

    def _read_publish(self, op, length) -> None:
        qos = (op >> 1) & 3
        if qos > 1:
            raise MQTTException("QoS 2 not supported")
        self._readinto(self._two)
        tlen = (self._two[0] << 8) | self._two[1]
        topic = self._read(tlen)
        length -= 2 + tlen
        pid = 0
        if qos:
            self._readinto(self._two)
            pid = (self._two[0] << 8) | self._two[1]
            length -= 2
        if length > self.max_packet:
            self._skip(length)
            msg = None
        else:
            msg = self._read(length)
        if qos:   # acknowledge first: IoTDA resends an unacknowledged QoS 1 message
            self._send_fixed(PUBACK, 2)
            self._send_u16(pid)
        if msg is None:
            print("mqtt: dropped a", length, "byte message on", topic, "(over max_packet)")
        elif self.cb is not None:
            self.cb(topic, msg)

    def _wait_ack(self, kind, pid):
        deadline = ticks_add(ticks_ms(), self.timeout_ms)
        while True:
            if self._poller is not None:
                left = ticks_diff(deadline, ticks_ms())
                if left <= 0:
                    raise OSError(ETIMEDOUT)
                if not self._readable(left):
                    continue
            op = self.wait_msg()
            if op is not None and op & 0xF0 == kind & 0xF0 and self._acked == pid:
                return self._last_code

    def _readable(self, timeout_ms) -> bool:
        if hasattr(self._poller, "ipoll"):   # MicroPython: no allocation per wait
            for _ in self._poller.ipoll(timeout_ms):
                return True
            return False
        return bool(self._poller.poll(timeout_ms))

    # ---- byte level ---------------------------------------------------------------------------------
    def _next_pid(self) -> int:
        self.pid = self.pid % 65535 + 1
        return self.pid

    def _send_fixed(self, op, length) -> None:
        hdr = self._hdr
        hdr[0] = op
        i = 1
        while True:
            byte = length & 0x7F
            length >>= 7
            hdr[i] = byte | (0x80 if length else 0)
            i += 1
            if not length:
                break
        self._write(memoryview(hdr)[:i])

    def _send_u16(self, value) -> None:
        self._two[0] = value >> 8
        self._two[1] = value & 0xFF
        self._write(self._two)

    def _send_str(self, data) -> None:
        self._send_u16(len(data))
        self._write(data)

    def _write(self, data) -> None:
        if self.sock is None:
            raise OSError(-1)
        view = memoryview(data)
        while len(view):
            n = self.sock.write(view)
            if n is None:   # cannot happen on a blocking socket; guard anyway
                n = 0
            view = view[n:]

    def _readinto(self, buf) -> None:
        view = memoryview(buf)
        while len(view):
            n = self.sock.readinto(view)
            if not n:
                raise OSError(-1)   # peer closed (0) or nothing on a blocking socket (None)
            view = view[n:]

    def _read(self, n) -> bytes:
        if n <= 0:
            return b""
        data = self.sock.read(n)   # a blocking stream read returns n bytes unless the peer closed
        if not data or len(data) != n:
            raise OSError(-1)
        return data

    def _read_length(self) -> int:
        value = 0
        shift = 0
        while True:
            self._readinto(memoryview(self._two)[:1])
            byte = self._two[0]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
            if shift > 21:
                raise MQTTException("bad remaining length")

    def _skip(self, n) -> None:
        if n <= 0:
            return
        if self._scratch is None:
            self._scratch = bytearray(256)
        while n:
            chunk = n if n < 256 else 256
            self._readinto(memoryview(self._scratch)[:chunk])
            n -= chunk

    @staticmethod
    def _utf8(value):
        return value.encode("utf-8") if isinstance(value, str) else value
