"""An interactive TCP child device for the gateway demo.

    python -m iot_gateway_demo.tcp_device --node-id sensor1 [--host 127.0.0.1] [--port 14322]

It logs in as ``--node-id`` and then sends what you type, one line per command (see
:mod:`iot_gateway_demo.session`), e.g. ``MSG hello``, ``PROPS {"service_id": "smokeDetector",
"properties": {"temperature": 21}}``, ``DEL``, ``QUIT``. Lines pushed by the gateway are printed as they
arrive; ``CMD``/``SET``/``GET`` requests are answered automatically (disable with ``--no-auto-answer``
and answer by hand with ``CMDRSP``/``SETRSP``/``GETRSP``). A lost connection is retried with backoff and
the child logs in again.
"""
from __future__ import annotations

import argparse
import json
import random
import socket
import sys
import threading
import time
from typing import Callable, Optional

DEFAULT_PORT = 14322


class TcpDevice:
    """A line-protocol child: connects, logs in, prints pushed lines, answers requests, reconnects."""

    def __init__(self, host: str, port: int, node_id: str, auto_answer: bool = True,
                 output: Callable[[str], None] = print) -> None:
        self.host, self.port, self.node_id = host, port, node_id
        self.auto_answer = auto_answer
        self.output = output
        self.properties = {"service_id": "smokeDetector", "properties": {"alarm": 0, "temperature": 21.5}}
        self._sock: Optional[socket.socket] = None
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="tcp-device", daemon=True)
        self._thread.start()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    def send(self, line: str) -> bool:
        """Send one line; False when not connected."""
        sock = self._sock
        if sock is None:
            return False
        if line.strip().upper() == "QUIT":
            self._stop.set()   # the gateway closes the connection: do not reconnect
        try:
            with self._send_lock:
                sock.sendall(line.rstrip("\r\n").encode("utf-8") + b"\n")
            return True
        except OSError:
            return False

    def _run(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            try:
                sock = socket.create_connection((self.host, self.port), timeout=5)
            except OSError as exc:
                self.output(f"[child] connect to {self.host}:{self.port} failed ({exc}); retrying in {delay:.1f} s")
                self._stop.wait(delay * (0.5 + random.random()))
                delay = min(delay * 2, 30.0)
                continue
            delay = 0.5
            sock.settimeout(None)
            self._sock = sock
            self._connected.set()
            self.output(f"[child] connected to {self.host}:{self.port}")
            self.send(f"LOGIN {self.node_id}")
            try:
                self._read_loop(sock)
            finally:
                self._connected.clear()
                self._sock = None
                sock.close()
            if not self._stop.is_set():
                self.output("[child] connection lost; reconnecting")

    def _read_loop(self, sock: socket.socket) -> None:
        buf = b""
        while not self._stop.is_set():
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                line = raw.decode("utf-8", errors="replace").rstrip("\r")
                self.output(f"<< {line}")
                self._maybe_answer(line)

    def _maybe_answer(self, line: str) -> None:
        if not self.auto_answer:
            return
        parts = line.split(" ", 2)
        if len(parts) < 2 or parts[0] not in ("CMD", "SET", "GET"):
            return
        kind, request_id = parts[0], parts[1]
        try:
            body = json.loads(parts[2]) if len(parts) > 2 else None
        except ValueError:
            body = None
        if kind == "CMD":
            paras = {"result": "done", "node_id": self.node_id,
                     "command": body.get("command_name") if isinstance(body, dict) else None}
            answer = f"CMDRSP {request_id} " + json.dumps({"result_code": 0, "paras": paras})
        elif kind == "SET":
            if isinstance(body, list):
                for s in body:
                    if isinstance(s, dict) and s.get("service_id") == self.properties["service_id"] \
                            and isinstance(s.get("properties"), dict):
                        self.properties["properties"].update(s["properties"])
            answer = f"SETRSP {request_id} " + json.dumps({"result_code": 0, "result_desc": "ok"})
        else:
            answer = f"GETRSP {request_id} " + json.dumps([self.properties])
        self.output(f">> {answer}")
        self.send(answer)


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(description="Interactive TCP child device of the gateway demo.")
    p.add_argument("--host", default="127.0.0.1", help="gateway TCP server address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"gateway TCP port (default {DEFAULT_PORT})")
    p.add_argument("--node-id", required=True, help="this child's node id (letters, digits, '_' and '-')")
    p.add_argument("--no-auto-answer", action="store_true", help="do not answer CMD/SET/GET automatically")
    args = p.parse_args(argv)
    device = TcpDevice(args.host, args.port, args.node_id, auto_answer=not args.no_auto_answer)
    device.start()
    print("type protocol lines (MSG <text>, PROPS <json>, DEL, QUIT, ...); Ctrl-D or Ctrl-C ends")
    try:
        for line in sys.stdin:
            line = line.strip()
            if not line:
                continue
            if not device.send(line):
                print("[child] not connected; line dropped")
            if line.upper() == "QUIT":
                time.sleep(0.5)
                break
    except KeyboardInterrupt:
        pass
    finally:
        device.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
