"""Tiny local proxies for the transport tests: HTTP CONNECT and SOCKS5 (RFC 1928/1929), threads and sockets.

Each counts the tunnels it opened and remembers their targets and the credentials it was given, so a test can
assert that a device's traffic really went through it. Loopback only; not for any other use.
"""
from __future__ import annotations

import base64
import socket
import struct
import threading
from typing import List, Optional, Tuple


class _Proxy:
    def __init__(self, username: Optional[str] = None, password: Optional[str] = None) -> None:
        self.username = username
        self.password = password
        self.connections = 0                     # tunnels opened to a target
        self.refused = 0                         # clients turned away (bad credentials, bad request)
        self.targets: List[Tuple[str, int]] = []
        self.bytes_up = 0
        self._lock = threading.Lock()
        self._srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._srv.bind(("127.0.0.1", 0))
        self._srv.listen(16)
        self.port = self._srv.getsockname()[1]
        self._closed = False
        self._socks: List[socket.socket] = []
        self._thread = threading.Thread(target=self._accept_loop, name=f"test-proxy-{self.port}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closed = True
        self._srv.close()
        with self._lock:
            for s in self._socks:
                try:
                    s.close()
                except OSError:
                    pass

    def __enter__(self) -> "_Proxy":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._srv.accept()
            except OSError:
                return
            with self._lock:
                self._socks.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            target = self._negotiate(client)
        except (OSError, ValueError, struct.error):
            target = None
        if target is None:
            with self._lock:
                self.refused += 1
            client.close()
            return
        host, port, upstream = target
        with self._lock:
            self.connections += 1
            self.targets.append((host, port))
            self._socks.append(upstream)
        threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()
        self._pipe(client, upstream, True)

    def _pipe(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if up:
                    with self._lock:
                        self.bytes_up += len(data)
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _negotiate(self, client: socket.socket) -> Optional[Tuple[str, int, socket.socket]]:
        raise NotImplementedError


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ValueError("closed during the handshake")
        buf += chunk
    return buf


class HttpConnectProxy(_Proxy):
    """``CONNECT host:port HTTP/1.1``; with a username it requires ``Proxy-Authorization: Basic ...`` (else 407)."""

    def _negotiate(self, client: socket.socket) -> Optional[Tuple[str, int, socket.socket]]:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk or len(head) > 16384:
                return None
            head += chunk
        lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        if method != "CONNECT":
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
            return None
        if self.username is not None:
            expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            scheme, _, token = headers.get("proxy-authorization", "").partition(" ")
            if scheme.lower() != "basic" or token.strip() != expected:  # auth schemes are case-insensitive
                client.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
                return None
        host, _, port = target.rpartition(":")
        upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=5)
        upstream.settimeout(None)
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        return host, int(port), upstream


class Socks5Proxy(_Proxy):
    """SOCKS5 CONNECT; with a username it requires RFC 1929 user/password authentication."""

    def _negotiate(self, client: socket.socket) -> Optional[Tuple[str, int, socket.socket]]:
        ver, nmethods = _recv_exact(client, 2)
        methods = _recv_exact(client, nmethods)
        if ver != 5:
            return None
        want = 0x02 if self.username is not None else 0x00
        if want not in methods:
            client.sendall(b"\x05\xff")
            return None
        client.sendall(bytes([5, want]))
        if want == 0x02:
            _, ulen = _recv_exact(client, 2)
            user = _recv_exact(client, ulen).decode()
            (plen,) = _recv_exact(client, 1)
            password = _recv_exact(client, plen).decode()
            ok = user == self.username and password == self.password
            client.sendall(b"\x01\x00" if ok else b"\x01\x01")
            if not ok:
                return None
        ver, cmd, _, atyp = _recv_exact(client, 4)
        if atyp == 1:
            host = socket.inet_ntoa(_recv_exact(client, 4))
        elif atyp == 3:
            (n,) = _recv_exact(client, 1)
            host = _recv_exact(client, n).decode()
        else:
            client.sendall(b"\x05\x08\x00\x01" + b"\x00" * 6)
            return None
        (port,) = struct.unpack("!H", _recv_exact(client, 2))
        if cmd != 1:
            client.sendall(b"\x05\x07\x00\x01" + b"\x00" * 6)
            return None
        upstream = socket.create_connection((host, port), timeout=5)
        upstream.settimeout(None)
        bound_host, bound_port = upstream.getsockname()[:2]
        client.sendall(b"\x05\x00\x00\x01" + socket.inet_aton(bound_host) + struct.pack("!H", bound_port))
        return host, port, upstream
