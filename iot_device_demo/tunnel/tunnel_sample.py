"""Remote login (``$tunnel_manager``): let the platform open a tunnel to a local port of the device (its sshd).

Local mode: a small echo service stands in for sshd (unless ``--target-port`` names a real one); the emulator
creates a tunnel for the device (AddTunnel), a tunnel source (what ``iotda-emulator tunnel-connect`` runs) turns it
into a local port, and a client sends a line through platform and device to the echo service and back.
Cloud mode: the device accepts tunnels to ``--target-port``; create one with AddTunnel or the console's remote login.
"""
from __future__ import annotations

import socket
import threading
from typing import List, Optional

from iot_device_sdk_python import TunnelListener

from iot_device_demo.common import Demo, main_guard, say


class LoginAudit(TunnelListener):
    """Prints what happens to the device's tunnels (and accepts every request)."""

    def on_tunnel_request(self, tunnel_id: str, expires_in: int) -> bool:
        say(f"[device] tunnel {tunnel_id[:8]} requested (token valid {expires_in} s): accepted")
        return True

    def on_session_started(self, tunnel_id: str, port: int) -> None:
        say(f"[device] tunnel {tunnel_id[:8]}: a remote client reached local port {port}")

    def on_tunnel_closed(self, tunnel_id: str, reason: str) -> None:
        say(f"[device] tunnel {tunnel_id[:8]} closed: {reason}")


def _echo_service() -> socket.socket:
    """A TCP echo service on a free local port (the stand-in for sshd)."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                while True:
                    data = conn.recv(4096)
                    if not data:
                        break
                    conn.sendall(data)

    threading.Thread(target=serve, name="demo-echo", daemon=True).start()
    return server


def _add_arguments(parser) -> None:
    parser.add_argument("--target-port", type=int, default=None,
                        help="the device's local port the tunnel reaches (cloud default 22; local: an echo service)")


def main(argv: Optional[List[str]] = None) -> int:
    with Demo("Remote login: the device pipes the platform's tunnel to a local port.", argv,
              name="tunnel_sample", add_arguments=_add_arguments) as demo:
        port = demo.args.target_port
        if port is None and demo.local:
            echo = _echo_service()
            demo.on_close(echo.close)
            port = echo.getsockname()[1]
            say(f"[device] echo service on 127.0.0.1:{port} stands in for sshd")
        device = demo.create_device()
        tunnel = device.get_tunnel_service()
        tunnel.set_listener(LoginAudit())
        tunnel.enable_tunnel(target_host="127.0.0.1", target_port=port or 22)
        demo.connect(device)

        def platform_side() -> None:
            from iotda_emulator.tunnel_source import TunnelSource

            svc = demo.emulator.service("$tunnel_manager")
            added = svc.create_tunnel(demo.device_id)
            say(f"[platform] tunnel {added['tunnel_id'][:8]} created (AddTunnel)")
            svc.wait_state(added["tunnel_id"], "device", "CONNECTED", timeout=15)
            source = TunnelSource(added["tunnel_uri"], added["tunnel_access_token"], ca_file=demo.emulator.ca_file)
            source.start()
            demo.on_close(source.stop)
            with socket.create_connection(("127.0.0.1", source.port), timeout=15) as client:
                line = b"hello through the tunnel\n"
                client.sendall(line)
                echoed = b""
                while len(echoed) < len(line):
                    chunk = client.recv(4096)
                    if not chunk:
                        break
                    echoed += chunk
            say(f"[platform] through the tunnel and back: {echoed.decode(errors='replace').strip()!r}")
            svc.close_tunnel(added["tunnel_id"])
            say(f"[platform] tunnel {added['tunnel_id'][:8]} closed (CloseDeviceTunnel)")

        demo.later(1.0, platform_side)
        demo.run()
    return 0


if __name__ == "__main__":
    main_guard(main)
