"""The source side of a device tunnel: a local TCP port that leads through the platform's relay to the device.

``python -m iotda_emulator tunnel-connect --device-id D --listen 2222`` creates a tunnel (AddTunnel on the
emulator's REST API) and listens on ``127.0.0.1:2222``; ``ssh -p 2222 user@localhost`` then reaches the port the
device's SDK allows (its sshd). :class:`TunnelSource` is the same thing as a Python object for tests and tools.

Byte-pipe mode (our choice; doc/protocol.md §3.9): IoTDA's documented frames carry an SSH *terminal* (the
device runs the SSH client with the ``username``/``password`` of ``connect`` and exchanges text). To give the user's
own ``ssh`` (or any TCP client) the device's port instead, each local connection becomes one session:

1. open the source WebSocket (header ``tunnel_access_token``) and wait for the platform's ``connect_tunnel``;
2. send ``connect`` with ``data`` ``null`` (no credentials: they stay inside the end-to-end SSH session, never
   in the platform) or ``{"port": N}``; the device answers ``connect_response`` with ``data`` ``"success"`` or
   a reason;
3. bytes go as ``command`` frames (source to device) and ``command_response`` frames (device to source) whose
   ``data`` is the base64 of at most :data:`CHUNK` bytes (a frame stays under IoTDA's 10 KB);
4. either side ends the session with ``disconnect``; closing the local connection closes the WebSocket.

One session at a time (IoTDA: one WebSocket per side); a second local connection is closed at once.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import ssl
import threading
import uuid
from typing import Any, Optional

from iotda_emulator.loop_thread import start_loop_thread

log = logging.getLogger(__name__)

#: raw bytes per ``command`` frame: base64 (4/3) plus the JSON envelope stays under IoTDA's 10 KB frame limit
CHUNK = 6 * 1024
SERVICE_TYPE = "ssh"


def frame(operation: str, data: Any, request_id: Optional[str] = None) -> str:
    """One tunnel frame as JSON text."""
    return json.dumps({"operation_type": operation, "tunnel_service_type": SERVICE_TYPE,
                       "request_id": request_id or uuid.uuid4().hex, "data": data})


class TunnelSource:
    """Listen on ``listen_host:listen_port`` (0 = a free port, in :attr:`port` after :meth:`start`) and relay
    each local connection into the tunnel's source side (``tunnel_uri``, ``token`` from AddTunnel)."""

    def __init__(self, tunnel_uri: str, token: str, listen_port: int = 0, listen_host: str = "127.0.0.1",
                 ca_file: Optional[str] = None, target_port: Optional[int] = None,
                 connect_timeout: float = 15.0) -> None:
        if not tunnel_uri.startswith(("ws://", "wss://")):
            raise ValueError("tunnel_uri must be a ws:// or wss:// URL")
        self.tunnel_uri = tunnel_uri
        self._token = token
        self.listen_host = listen_host
        self.port = listen_port
        self.ca_file = ca_file
        self.target_port = target_port
        self.connect_timeout = connect_timeout
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._server: Optional[asyncio.base_events.Server] = None
        self._thread: Optional[threading.Thread] = None
        self._busy = False
        self._sessions: "set[asyncio.Task[None]]" = set()

    def __repr__(self) -> str:  # the token stays out of reprs and logs
        return f"TunnelSource({self.tunnel_uri!r}, listen={self.listen_host}:{self.port})"

    # ---- life cycle ------------------------------------------------------------------------------
    def start(self) -> "TunnelSource":
        """Bind the local port and serve in a daemon thread; returns once it listens."""
        def listen(loop: asyncio.AbstractEventLoop) -> None:
            self._server = loop.run_until_complete(asyncio.start_server(self._handle, self.listen_host, self.port))
            self.port = self._server.sockets[0].getsockname()[1]

        self._loop, self._thread = start_loop_thread("tunnel-source", listen)
        log.info("tunnel source listening on %s:%s", self.listen_host, self.port)
        return self

    def stop(self) -> None:
        """Close the port and every session (idempotent)."""
        loop, self._loop = self._loop, None
        if loop is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for task in list(self._sessions):
                task.cancel()
            loop.stop()

        loop.call_soon_threadsafe(lambda: asyncio.ensure_future(shutdown()))
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "TunnelSource":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ---- one session ----------------------------------------------------------------------------
    def _ssl(self) -> Optional[ssl.SSLContext]:
        if not self.tunnel_uri.startswith("wss://"):
            return None
        return ssl.create_default_context(cafile=self.ca_file) if self.ca_file else ssl.create_default_context()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._busy:
            log.info("tunnel source: a session is running; a second local connection is closed")
            writer.close()
            return
        self._busy = True
        task = asyncio.current_task()
        if task is not None:
            self._sessions.add(task)
        try:
            await self._session(reader, writer)
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # noqa: BLE001 - one failed session must not stop the listener
            log.warning("tunnel session failed: %s", exc)
        finally:
            self._busy = False
            if task is not None:
                self._sessions.discard(task)
            writer.close()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        request = HTTPRequest(self.tunnel_uri, headers={"tunnel_access_token": self._token},
                              ssl_options=self._ssl(), connect_timeout=self.connect_timeout,
                              request_timeout=self.connect_timeout)
        ws = await websocket_connect(request)
        try:
            if not await self._open(ws):
                return
            await self._pipe(ws, reader, writer)
        finally:
            ws.close()

    async def _open(self, ws: Any) -> bool:
        """Wait for the device (``connect_tunnel``), ask for the session and wait for ``connect_response``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.connect_timeout
        sent: Optional[str] = None
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                log.warning("tunnel session: the device did not %s in time",
                            "answer" if sent else "connect to the tunnel")
                return False
            try:
                text = await asyncio.wait_for(ws.read_message(), remaining)
            except asyncio.TimeoutError:
                continue
            if text is None:
                log.warning("tunnel session: the platform closed the tunnel (%s)", ws.close_reason)
                return False
            msg = _parse(text)
            op = msg.get("operation_type")
            if op == "connect_tunnel" and sent is None:
                sent = uuid.uuid4().hex
                data = {"port": self.target_port} if self.target_port else None
                await ws.write_message(frame("connect", data, sent))
            elif op == "connect_response" and sent is not None and msg.get("request_id") == sent:
                if msg.get("data") == "success":
                    return True
                log.warning("tunnel session refused by the device: %s", str(msg.get("data"))[:200])
                return False
            elif op == "disconnect":
                data = msg.get("data")
                reason = data.get("status_msg") if isinstance(data, dict) else None
                log.warning("tunnel session: disconnected before it opened (%s)", reason)
                return False

    async def _pipe(self, ws: Any, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def upstream() -> None:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    await ws.write_message(frame("disconnect", {"status_code": "0",
                                                                "status_msg": "the source closed the session"}))
                    return
                await ws.write_message(frame("command", base64.b64encode(data).decode("ascii")))

        async def downstream() -> None:
            while True:
                text = await ws.read_message()
                if text is None:
                    return
                msg = _parse(text)
                op = msg.get("operation_type")
                if op == "command_response":
                    try:
                        data = base64.b64decode(msg.get("data") or "", validate=True)
                    except (binascii.Error, TypeError, ValueError):
                        log.warning("tunnel session: a command_response that is not base64; session ended")
                        return
                    writer.write(data)
                    await writer.drain()
                elif op == "disconnect":
                    return

        tasks = [asyncio.ensure_future(upstream()), asyncio.ensure_future(downstream())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def _parse(text: Any) -> dict:
    try:
        obj = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}


def create_tunnel(endpoint: str, device_id: str, project_id: str = "emulator",
                  ca_file: Optional[str] = None, timeout: float = 10.0) -> dict:
    """AddTunnel on an emulator's REST API (unsigned: works when the emulator requires no app key)."""
    import urllib.request

    body = json.dumps({"device_id": device_id}).encode("utf-8")
    req = urllib.request.Request(f"{endpoint.rstrip('/')}/v5/iot/{project_id}/tunnels", data=body,
                                 headers={"Content-Type": "application/json"}, method="POST")
    context = ssl.create_default_context(cafile=ca_file) if endpoint.startswith("https") else None
    with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
        answer = json.loads(resp.read().decode("utf-8"))
    if not isinstance(answer, dict) or not {"tunnel_id", "tunnel_uri", "tunnel_access_token"} <= answer.keys():
        raise ValueError("AddTunnel answered without tunnel_id, tunnel_uri and tunnel_access_token")
    return answer


def add_arguments(parser: Any) -> None:
    """The options of ``iotda-emulator tunnel-connect``."""
    parser.add_argument("--device-id", default=None, help="create a tunnel for this device (AddTunnel)")
    parser.add_argument("--endpoint", default="http://127.0.0.1:8080",
                        help="the emulator's REST API for --device-id (default http://127.0.0.1:8080)")
    parser.add_argument("--tunnel-uri", default=None,
                        help="use an existing tunnel: its source tunnel_uri (the token is read from the "
                             "environment variable named by --token-env, never from the command line)")
    parser.add_argument("--token-env", default="IOTDA_TUNNEL_TOKEN", help="default IOTDA_TUNNEL_TOKEN")
    parser.add_argument("--listen", type=int, default=2222, help="local port (default 2222; 0 = any free port)")
    parser.add_argument("--listen-host", default="127.0.0.1")
    parser.add_argument("--ca-file", default=None,
                        help="CA of the emulator's HTTPS (default: ca.pem of --data-dir)")
    parser.add_argument("--data-dir", default=None, help="default $IOTDA_EMULATOR_DATA_DIR or ~/.iotda-emulator")
    parser.add_argument("--port", type=int, default=None, dest="target_port",
                        help="ask the device for this local port (it must be in the device's allow-list)")


def cmd_tunnel_connect(args: Any) -> int:
    """``iotda-emulator tunnel-connect``: relay a local port into a device tunnel until Ctrl-C."""
    import os
    import sys

    from iotda_emulator.cli import default_data_dir

    ca_file = args.ca_file
    if ca_file is None:
        candidate = os.path.join(args.data_dir or default_data_dir(), "certs", "ca.pem")
        ca_file = candidate if os.path.exists(candidate) else None
    if args.tunnel_uri:
        token = os.environ.get(args.token_env, "")
        if not token:
            print(f"tunnel-connect: set the tunnel's source token in ${args.token_env}", file=sys.stderr)
            return 2
        uri = args.tunnel_uri
    elif args.device_id:
        try:
            answer = create_tunnel(args.endpoint, args.device_id, ca_file=ca_file)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            print(f"tunnel-connect: AddTunnel failed: {exc}", file=sys.stderr)
            return 1
        uri, token = answer["tunnel_uri"], answer["tunnel_access_token"]
        print(f"tunnel {answer['tunnel_id']} created for {args.device_id}")
    else:
        print("tunnel-connect: give --device-id or --tunnel-uri", file=sys.stderr)
        return 2
    source = TunnelSource(uri, token, args.listen, args.listen_host, ca_file=ca_file,
                          target_port=args.target_port).start()
    print(f"listening on {args.listen_host}:{source.port}; e.g. ssh -p {source.port} USER@localhost "
          "(Ctrl-C to stop)")
    stop = threading.Event()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        source.stop()
    return 0
