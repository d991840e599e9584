"""Gateway demo entry point: a Tornado TCP server whose child devices reach IoTDA through one gateway.

    python -m iot_gateway_demo.string_tcp_server                       # local emulator, port 14322
    python -m iot_gateway_demo.string_tcp_server --tcp-port 15000 --duration 60
    IOTDA_SERVER_URI=... IOTDA_DEVICE_ID=<gateway id> IOTDA_SECRET=... IOTDA_CA_FILE=root.pem \\
        IOTDA_SUB_PRODUCT_ID=<product of the children> python -m iot_gateway_demo.string_tcp_server

Then connect children with ``python -m iot_gateway_demo.tcp_device --node-id sensor1`` (protocol in
:mod:`iot_gateway_demo.session`). In local mode the emulator registers the gateway, and every few
seconds the "platform side" sends a command to each connected child so traffic flows both ways.
"""
from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any, List, Optional

from tornado.iostream import IOStream, StreamClosedError, UnsatisfiableReadError
from tornado.ioloop import IOLoop
from tornado.netutil import bind_sockets
from tornado.tcpserver import TCPServer

from iot_gateway_demo.session import MAX_LINE_BYTES, Session
from iot_gateway_demo.simple_gateway import ProtocolError, SimpleGateway
from iot_gateway_demo.sub_devices_file_persistence import ENV_FILE, SubDevicesFilePersistence

_logger = logging.getLogger(__name__)

DEFAULT_TCP_PORT = 14322
ENV_TCP_HOST = "IOT_GATEWAY_TCP_HOST"
ENV_TCP_PORT = "IOT_GATEWAY_TCP_PORT"
ENV_SUB_PRODUCT_ID = "IOTDA_SUB_PRODUCT_ID"


class StringTcpServer(TCPServer):
    """Accepts child connections; one :class:`Session` per connection, one line at a time."""

    def __init__(self, gateway: SimpleGateway) -> None:
        super().__init__(max_buffer_size=4 * MAX_LINE_BYTES)
        self._gateway = gateway
        self._sessions: set = set()

    async def handle_stream(self, stream: IOStream, address: Any) -> None:
        session = Session(stream, address)
        self._sessions.add(session)
        _logger.info("child connected from %s (%r)", address, session)
        try:
            while True:
                try:
                    data = await stream.read_until(b"\n", max_bytes=MAX_LINE_BYTES)
                except UnsatisfiableReadError:
                    # tornado closes the stream after an over-long line; nothing more to read
                    _logger.warning("%r sent a line longer than %d bytes: connection closed", session, MAX_LINE_BYTES)
                    break
                reply = self._handle(session, data)
                if reply is None:
                    session.write_line("OK bye")
                    await stream.write(b"")     # let the farewell reach the socket before closing
                    break
                session.write_line(reply)
        except StreamClosedError:
            pass
        except Exception:   # never let one connection take the server down
            _logger.exception("connection %r failed", session)
        finally:
            self._sessions.discard(session)
            try:
                self._gateway.session_closed(session)
            except Exception:
                _logger.exception("closing %r failed", session)
            session.close()
            _logger.info("child %r disconnected", session)

    def _handle(self, session: Session, data: bytes) -> Optional[str]:
        try:
            line = data.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            return "ERR line is not valid UTF-8"
        if not line.strip():
            return "ERR empty line"
        try:
            return self._gateway.handle_line(session, line)
        except ProtocolError as exc:
            return f"ERR {exc}"
        except ValueError as exc:   # e.g. the SDK refused an argument
            return f"ERR {exc}"
        except Exception as exc:
            _logger.exception("handling a line from %r failed", session)
            return f"ERR internal error: {type(exc).__name__}"

    def close_all(self) -> None:
        for session in list(self._sessions):
            session.close()


class GatewayServer:
    """Runs :class:`StringTcpServer` for ``gateway`` on its own IOLoop thread.

    ``start()`` binds (port 0 = any free port) and returns the bound port; ``stop()`` closes every
    connection and the loop. The gateway itself (connect/destroy) is the caller's business.
    """

    def __init__(self, gateway: SimpleGateway, host: str = "127.0.0.1", port: int = DEFAULT_TCP_PORT) -> None:
        self.gateway = gateway
        self.host = host
        self.port = port
        self.io_loop: Optional[IOLoop] = None
        self._server: Optional[StringTcpServer] = None
        self._thread: Optional[threading.Thread] = None
        self._ready = threading.Event()
        self._error: Optional[BaseException] = None

    def start(self, timeout: float = 10.0) -> int:
        self._thread = threading.Thread(target=self._run, name="gateway-tcp-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the TCP server did not start")
        if self._error is not None:
            raise self._error
        return self.port

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        io_loop = IOLoop.current()
        try:
            sockets = bind_sockets(self.port, self.host)
            self.port = sockets[0].getsockname()[1]
            self._server = StringTcpServer(self.gateway)
            self._server.add_sockets(sockets)
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            io_loop.close(all_fds=True)
            return
        self.io_loop = io_loop
        self.gateway.attach_io_loop(io_loop)
        io_loop.add_callback(self._ready.set)
        try:
            io_loop.start()
        finally:
            io_loop.close(all_fds=True)

    def stop(self) -> None:
        io_loop = self.io_loop
        if io_loop is None:
            return
        self.gateway.attach_io_loop(None)

        def shutdown() -> None:
            if self._server is not None:
                self._server.stop()
                self._server.close_all()
            # one more turn so the handlers see their closed streams, then stop
            io_loop.add_callback(io_loop.stop)

        io_loop.add_callback(shutdown)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.io_loop = None


def _add_arguments(parser) -> None:
    parser.add_argument("--tcp-host", default=os.environ.get(ENV_TCP_HOST) or "127.0.0.1",
                        help=f"address the child TCP server listens on (env {ENV_TCP_HOST}; default 127.0.0.1)")
    parser.add_argument("--tcp-port", type=int, default=int(os.environ.get(ENV_TCP_PORT) or DEFAULT_TCP_PORT),
                        help=f"TCP port for children (env {ENV_TCP_PORT}; default {DEFAULT_TCP_PORT}, 0 = any)")
    parser.add_argument("--sub-product-id", default=os.environ.get(ENV_SUB_PRODUCT_ID) or "emu_product",
                        help=f"product id given to children the gateway adds (env {ENV_SUB_PRODUCT_ID})")
    parser.add_argument("--persistence-file", default=os.environ.get(ENV_FILE),
                        help=f"JSON file of known children (env {ENV_FILE}); default ./subdevices.json, "
                             "or a temporary file in local mode (the emulator is fresh each run)")
    parser.add_argument("--command-interval", type=float, default=5.0,
                        help="local mode: seconds between the platform's commands to connected children")


def main(argv: Optional[List[str]] = None) -> int:
    """Start the gateway (connect to IoTDA or the local emulator) and serve children until stopped."""
    from iot_device_demo.common import Demo, print_json

    with Demo("Gateway demo: a TCP server whose text-protocol children reach IoTDA through one gateway.",
              argv, name="gateway", add_arguments=_add_arguments) as demo:
        args = demo.args
        path = args.persistence_file or (os.path.join(demo.work_dir, "subdevices.json") if demo.local
                                         else "subdevices.json")
        persistence = SubDevicesFilePersistence(path)
        gateway = SimpleGateway(persistence, demo.client_conf(), sub_product_id=args.sub_product_id)
        server = GatewayServer(gateway, args.tcp_host, args.tcp_port)
        # cleanups run last-registered first: children are disconnected before the gateway goes
        demo.on_close(gateway.destroy)
        demo.on_close(server.stop)
        demo.connect(gateway)    # the connect listener syncs the sub-device list
        port = server.start()
        print(f"[gateway] {demo.device_id} serving children on {args.tcp_host}:{port} "
              f"(persistence {persistence.path})")
        print(f"[gateway] try: python -m iot_gateway_demo.tcp_device --port {port} --node-id sensor1")

        if demo.emulator is not None:
            emu = demo.emulator

            def command_children() -> None:
                for child in emu.core.children(demo.device_id):
                    if not emu.is_online(child["device_id"]):
                        continue
                    rsp = emu.send_command(child["device_id"], "smokeDetector", "ringAlarm", {"duration": 5},
                                           timeout=20)
                    print_json(f"[platform] command to {child['device_id']} answered:", rsp)

            demo.every(args.command_interval, command_children, first_delay=args.command_interval)
        demo.run()
    return 0


if __name__ == "__main__":
    from iot_device_demo.common import main_guard

    main_guard(main)
