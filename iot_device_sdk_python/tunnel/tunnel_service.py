"""``TunnelService``: the ``$tunnel_manager`` system service (IoTDA remote login, doc/protocol.md §3.9).

The platform announces a tunnel with ``tunnel_notify`` on ``events/down`` (``tunnel_uri``,
``tunnel_access_token``, ``expires_in``). When tunnels are enabled on this device, the service opens a WebSocket
to ``tunnel_uri`` (header ``tunnel_access_token``) and, for each session a remote client starts (``connect``),
connects to the allowed local port (e.g. sshd on 127.0.0.1:22) and pipes bytes both ways: ``command`` frames
from the platform are written to the port, what the port sends goes back in ``command_response`` frames (``data``:
base64). ``disconnect`` ends a session; the platform closing the WebSocket ends the tunnel.

Opening a shell to a device is security-sensitive, so the service is **off by default**: without
:meth:`TunnelService.enable_tunnel` it refuses every ``tunnel_notify`` with a ``tunnel_notify_response``
(``result_code`` 1) and opens no socket. Once enabled, only the configured host and the allow-listed ports are
reachable; a ``connect`` carrying SSH credentials (IoTDA's console terminal mode, where the device itself would
run an SSH client) is refused. Tokens never appear in logs.
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import socket
import ssl
import threading
import uuid
from typing import Any, Dict, FrozenSet, Iterable, Optional

from iot_device_sdk_python.client.request.device_event import DeviceEvent
from iot_device_sdk_python.service.abstract_service import AbstractService
from iot_device_sdk_python.tunnel.tunnel_listener import TunnelListener
from iot_device_sdk_python.tunnel.websocket_client import WebSocketClient, WebSocketClosed, WebSocketError

_LOG = logging.getLogger(__name__)

#: ``result_code`` of a refused or failed ``tunnel_notify``
FAILURE_CODE = 1
#: bytes read from the local port per ``command_response`` (base64 + JSON stays under IoTDA's 10 KB frames)
CHUNK = 6 * 1024
#: seconds between two ``ping`` frames while the tunnel is idle
PING_INTERVAL = 30.0
_MAX_FRAME = 64 * 1024
_TUNNEL_ID = re.compile(r"/tunnels/([A-Za-z0-9_\-]{1,128})/device-connect")


class TunnelService(AbstractService):
    """The ``$tunnel_manager`` service registered on every device (``device.get_tunnel_service()``)."""

    _SERVICE_ID = "$tunnel_manager"

    def __init__(self) -> None:
        super().__init__()
        self._enabled = False
        self._target_host = "127.0.0.1"
        self._target_port = 22
        self._allowed_ports: FrozenSet[int] = frozenset({22})
        self._ssl_context: Optional[ssl.SSLContext] = None
        self._ca_file: Optional[str] = None
        self._allow_insecure = False
        self._connect_timeout = 10.0
        self._listener: Optional[TunnelListener] = None
        self._lock = threading.Lock()
        self._tunnel: Optional[_Tunnel] = None

    # ---- configuration --------------------------------------------------------------------------------
    def enable_tunnel(self, target_host: str = "127.0.0.1", target_port: int = 22,
                      allowed_ports: Optional[Iterable[int]] = None, ca_file: Optional[str] = None,
                      ssl_context: Optional[ssl.SSLContext] = None, allow_insecure: bool = False,
                      connect_timeout: float = 10.0) -> None:
        """Accept the platform's tunnels and pipe their sessions to ``target_host:target_port``.

        ``allowed_ports``: the ports a remote client may ask for (``connect`` ``data.port``); default only
        ``target_port``. ``ca_file``/``ssl_context`` verify the platform's ``wss://`` relay (default: the CA of
        the device's connection, ``ConnectAuthInfo.iot_cert_path``, else the system CAs). ``allow_insecure``
        also accepts a plain ``ws://`` tunnel URI (a local emulator without HTTPS).
        """
        ports = frozenset(int(p) for p in (allowed_ports if allowed_ports is not None else (target_port,)))
        for port in ports | {int(target_port)}:
            if not 0 < port < 65536:
                raise ValueError(f"port {port} is not in 1..65535")
        if not isinstance(target_host, str) or not target_host:
            raise ValueError("target_host must be a host name or address")
        if connect_timeout <= 0:
            raise ValueError("connect_timeout must be positive")
        with self._lock:
            self._target_host, self._target_port = target_host, int(target_port)
            self._allowed_ports = ports | {int(target_port)}
            self._ca_file, self._ssl_context = ca_file, ssl_context
            self._allow_insecure = bool(allow_insecure)
            self._connect_timeout = float(connect_timeout)
            self._enabled = True
        _LOG.info("remote login tunnels enabled to %s:%s", target_host, target_port)

    def disable_tunnel(self) -> None:
        """Refuse tunnels from now on and close the open one, if any."""
        with self._lock:
            self._enabled = False
        self.close_tunnel("tunnels were disabled on the device")

    def is_enabled(self) -> bool:
        """True after :meth:`enable_tunnel` (until :meth:`disable_tunnel`)."""
        return self._enabled

    def set_listener(self, listener: Optional[TunnelListener]) -> None:
        """Set the :class:`TunnelListener` (None removes it)."""
        self._listener = listener

    def get_listener(self) -> Optional[TunnelListener]:
        """The listener set with :meth:`set_listener`, or None."""
        return self._listener

    def get_tunnel_id(self) -> Optional[str]:
        """The id of the open tunnel, or None."""
        tunnel = self._tunnel
        return tunnel.tunnel_id if tunnel is not None and not tunnel.closed else None

    def close_tunnel(self, reason: str = "closed by the device") -> None:
        """Close the open tunnel (its session and its WebSocket), if any."""
        with self._lock:
            tunnel, self._tunnel = self._tunnel, None
        if tunnel is not None:
            tunnel.close(reason)

    def on_destroy(self) -> None:
        self.close_tunnel("the device was destroyed")

    # ---- the platform's request ----------------------------------------------------------------------------
    def on_event(self, device_event: DeviceEvent) -> None:
        """Handle ``tunnel_notify`` (dispatcher thread; the WebSocket is opened on a thread of its own)."""
        event_type = getattr(device_event, "event_type", None)
        if event_type != "tunnel_notify":
            _LOG.warning("unknown $tunnel_manager event type %r; ignored", event_type)
            return
        raw = getattr(device_event, "paras", None)
        paras: Dict[str, Any] = raw if isinstance(raw, dict) else {}
        uri, token = paras.get("tunnel_uri"), paras.get("tunnel_access_token")
        expires = paras.get("expires_in")
        expires_in = expires if isinstance(expires, int) and not isinstance(expires, bool) else 0
        if not isinstance(uri, str) or not uri.startswith(("ws://", "wss://")) \
                or not isinstance(token, str) or not 0 < len(token) <= 256:
            _LOG.warning("tunnel_notify without a ws(s):// tunnel_uri and a tunnel_access_token; refused")
            self._refuse("", "tunnel_notify lacks tunnel_uri or tunnel_access_token")
            return
        match = _TUNNEL_ID.search(uri)
        tunnel_id = match.group(1) if match else ""
        if not self._enabled:
            _LOG.warning("tunnel %s refused: remote login is not enabled on this device (enable_tunnel)", tunnel_id)
            self._refuse(tunnel_id, "remote login is not enabled on this device")
            return
        if uri.startswith("ws://") and not self._allow_insecure:
            _LOG.warning("tunnel %s refused: a plain ws:// tunnel (allow_insecure is off)", tunnel_id)
            self._refuse(tunnel_id, "the device accepts only wss:// tunnels")
            return
        listener = self._listener
        if listener is not None:
            try:
                accepted = listener.on_tunnel_request(tunnel_id, expires_in)
            except Exception:
                _LOG.exception("TunnelListener.on_tunnel_request failed; tunnel refused")
                accepted = False
            if not accepted:
                _LOG.info("tunnel %s refused by the application's listener", tunnel_id)
                self._refuse(tunnel_id, "the device's application refused the tunnel")
                return
        tunnel = _Tunnel(self, tunnel_id, uri, token)
        with self._lock:
            old, self._tunnel = self._tunnel, tunnel
        if old is not None:
            old.close("replaced by a new tunnel")
        threading.Thread(target=tunnel.run, name=f"iot-tunnel-{tunnel_id[:8]}", daemon=True).start()

    def _refuse(self, tunnel_id: str, description: str) -> None:
        """Answer the platform ``tunnel_notify_response`` with a failure (our extension; see the module doc)."""
        paras: Dict[str, Any] = {"result_code": FAILURE_CODE, "description": description[:256]}
        if tunnel_id:
            paras["tunnel_id"] = tunnel_id
        try:
            self._report_event("tunnel_notify_response", paras)
        except Exception:  # noqa: BLE001 - an offline device cannot answer; the refusal still holds
            _LOG.warning("could not send tunnel_notify_response", exc_info=True)

    # ---- helpers for _Tunnel -----------------------------------------------------------------------------
    def _ssl(self) -> ssl.SSLContext:
        if self._ssl_context is not None:
            return self._ssl_context
        ca_file = self._ca_file
        if ca_file is None:
            device = self.get_iot_device()
            client = device.get_client() if device is not None else None
            auth = getattr(client, "_connect_auth_info", None)
            ca_file = getattr(auth, "iot_cert_path", None)
        return ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()

    def _ended(self, tunnel: "_Tunnel", reason: str) -> None:
        with self._lock:
            if self._tunnel is tunnel:
                self._tunnel = None
        listener = self._listener
        if listener is not None:
            try:
                listener.on_tunnel_closed(tunnel.tunnel_id, reason)
            except Exception:
                _LOG.exception("TunnelListener.on_tunnel_closed failed")


class _Tunnel:
    """One tunnel: its WebSocket, and at most one session (a connection to the local port)."""

    def __init__(self, service: TunnelService, tunnel_id: str, uri: str, token: str) -> None:
        self.service = service
        self.tunnel_id = tunnel_id
        self._uri = uri
        self._token = token
        self.closed = False
        self._ws: Optional[WebSocketClient] = None
        self._lock = threading.Lock()
        self._session: Optional[socket.socket] = None

    def __repr__(self) -> str:  # never the token
        return f"_Tunnel({self.tunnel_id!r})"

    # ---- life cycle --------------------------------------------------------------------------------------
    def run(self) -> None:
        svc = self.service
        try:
            ws = WebSocketClient.connect(self._uri, {"tunnel_access_token": self._token},
                                         timeout=svc._connect_timeout,
                                         ssl_context=svc._ssl() if self._uri.startswith("wss://") else None,
                                         max_message=_MAX_FRAME)
        except (OSError, WebSocketError, ValueError) as exc:
            _LOG.warning("tunnel %s: could not connect to the relay: %s", self.tunnel_id, exc)
            svc._refuse(self.tunnel_id, f"the device could not connect to the tunnel: {exc}")
            svc._ended(self, f"connection failed: {exc}")
            return
        with self._lock:
            if self.closed:
                ws.close()
                return
            self._ws = ws
        _LOG.info("tunnel %s open", self.tunnel_id)
        self._notify("on_tunnel_opened", self.tunnel_id)
        reason = "closed"
        try:
            while not self.closed:
                text = ws.recv_text(timeout=PING_INTERVAL)
                if text is None:
                    self._send("ping", None)
                    continue
                self._on_frame(text)
        except WebSocketClosed as exc:
            reason = f"closed by the platform ({exc.reason or exc.code})"
        except (OSError, WebSocketError, ValueError) as exc:
            reason = f"link failed: {exc}"
        finally:
            if not self.closed:
                _LOG.info("tunnel %s: %s", self.tunnel_id, reason)
            self.close(reason)

    def close(self, reason: str) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            ws, self._ws = self._ws, None
        self._end_session(notify=False)
        if ws is not None:
            ws.close()
        self.service._ended(self, reason)

    def _notify(self, method: str, *args: Any) -> None:
        listener = self.service._listener
        if listener is None:
            return
        try:
            getattr(listener, method)(*args)
        except Exception:
            _LOG.exception("TunnelListener.%s failed", method)

    # ---- frames ------------------------------------------------------------------------------------------
    def _send(self, operation: str, data: Any, request_id: Optional[str] = None) -> None:
        ws = self._ws
        if ws is None:
            return
        ws.send_text(json.dumps({"operation_type": operation, "tunnel_service_type": "ssh",
                                 "request_id": request_id or uuid.uuid4().hex, "data": data}))

    def _on_frame(self, text: str) -> None:
        try:
            frame = json.loads(text)
        except ValueError:
            frame = None
        if not isinstance(frame, dict):
            _LOG.warning("tunnel %s: a frame that is not a JSON object; ignored", self.tunnel_id)
            return
        operation = frame.get("operation_type")
        if operation == "connect":
            self._on_connect(frame)
        elif operation == "command":
            self._on_command(frame.get("data"))
        elif operation == "disconnect":
            self._end_session(notify=False)
        elif operation not in ("pong", "connect_tunnel"):
            _LOG.debug("tunnel %s: frame %r ignored", self.tunnel_id, operation)

    def _on_connect(self, frame: Dict[str, Any]) -> None:
        request_id = frame.get("request_id") if isinstance(frame.get("request_id"), str) else None
        self._end_session(notify=False)   # a new session replaces the old one
        data = frame.get("data")
        svc = self.service
        if isinstance(data, dict) and ("username" in data or "password" in data):
            # the console's terminal mode: the device would run the SSH client itself; not offered (the
            # credentials are not even looked at)
            self._send("connect_response", "failed: terminal mode (username/password) is not supported; "
                                           "connect a byte stream instead", request_id)
            return
        port = svc._target_port
        if isinstance(data, dict) and data.get("port") is not None:
            asked = data.get("port")
            if not isinstance(asked, int) or isinstance(asked, bool) or asked not in svc._allowed_ports:
                _LOG.warning("tunnel %s: a session for port %r refused (not allowed)", self.tunnel_id, asked)
                self._send("connect_response", "failed: port not allowed", request_id)
                return
            port = asked
        try:
            sock = socket.create_connection((svc._target_host, port), timeout=svc._connect_timeout)
            sock.settimeout(None)
        except OSError as exc:
            _LOG.warning("tunnel %s: local port %s unreachable: %s", self.tunnel_id, port, exc)
            self._send("connect_response", f"failed: local port unreachable ({exc.strerror or exc})", request_id)
            return
        with self._lock:
            if self.closed:
                sock.close()
                return
            self._session = sock
        self._send("connect_response", "success", request_id)
        _LOG.info("tunnel %s: session to port %s started", self.tunnel_id, port)
        self._notify("on_session_started", self.tunnel_id, port)
        threading.Thread(target=self._pump_local, args=(sock,), name=f"iot-tunnel-pump-{self.tunnel_id[:8]}",
                         daemon=True).start()

    def _on_command(self, data: Any) -> None:
        sock = self._session
        if sock is None:
            _LOG.debug("tunnel %s: command without a session; dropped", self.tunnel_id)
            return
        try:
            payload = base64.b64decode(data if isinstance(data, str) else "", validate=True)
        except (binascii.Error, ValueError):
            _LOG.warning("tunnel %s: a command whose data is not base64; session ended", self.tunnel_id)
            self._end_session(notify=True, reason="data is not base64")
            return
        try:
            sock.sendall(payload)   # blocking: a slow local port slows the relay (backpressure)
        except OSError:
            self._end_session(notify=True, reason="the local port closed")

    def _pump_local(self, sock: socket.socket) -> None:
        """Local port -> ``command_response`` frames, until either end closes."""
        try:
            while True:
                data = sock.recv(CHUNK)
                if not data or self._session is not sock:
                    break
                self._send("command_response", base64.b64encode(data).decode("ascii"))
        except (OSError, WebSocketError):
            pass
        if self._session is sock:
            self._end_session(notify=True, reason="the local port closed the session")

    def _end_session(self, notify: bool, reason: str = "") -> None:
        with self._lock:
            sock, self._session = self._session, None
        if sock is None:
            return
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
        if notify:
            try:
                self._send("disconnect", {"status_code": "0", "status_msg": reason})
            except (OSError, WebSocketError):
                pass
