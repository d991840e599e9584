"""``$tunnel_manager`` on the platform side: IoTDA's device tunnels (remote login, doc/protocol.md §3.9).

An application creates a tunnel for a device (REST ``AddTunnel``, :mod:`iotda_emulator.http.rest_tunnels`); the
platform tells the device with ``tunnel_notify`` on ``events/down`` (``tunnel_uri`` of the device side,
``tunnel_access_token``, ``expires_in``) and answers the application with the source side's URI and token. Both
sides then open a WebSocket to the emulator's HTTP(S) server (``/v5/iot/tunnels/{tunnel_id}/device-connect`` and
``.../source-connect``, header ``tunnel_access_token``), and the relay (the WebSocket handlers in
``rest_tunnels``) passes the JSON frames of one side to the other.

This module keeps the tunnels and the relay's bookkeeping; it never touches a socket itself. Connections attach
with :meth:`TunnelService.attach` and must offer ``send_frame(dict)`` and ``close_link(code, reason)``, both
callable from any thread.

Choices where IoTDA is silent (also in doc/protocol.md §3.9):

* each side has its own token (the device's goes out in ``tunnel_notify``, the source's in the AddTunnel answer),
  so a device token cannot open the source side; tokens are compared in constant time and never logged;
* one tunnel per device while it exists (IoTDA: "a device cannot have several tunnels"): AddTunnel for a device
  that has one answers 400; CloseDeviceTunnel ends both links and marks the tunnel ``CLOSED``, and it may be
  connected again while its tokens are valid (IoTDA: "can be connected again after closing") — a source that
  connects to a tunnel whose device is not connected makes the platform send ``tunnel_notify`` again;
* a device that cannot or will not open the tunnel may answer ``tunnel_notify_response`` (``result_code`` != 0,
  ``description``; our extension): the tunnel is then ``CLOSED`` and a connected source gets ``disconnect``;
* ``tunnel_notify`` to an offline device is sent when it comes online; tunnels live in memory.
"""
from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
import uuid
from typing import Any, Dict, List, Optional

from iotda_emulator.errors import DeviceNotFound, DeviceOffline, EmulatorError
from iotda_emulator.protocol import codec
from iotda_emulator.services.base import PlatformService, wait_changed

log = logging.getLogger(__name__)

SERVICE_ID = "$tunnel_manager"
TOKEN_TTL_S = 86400            # IoTDA's example expires_in
MAX_TUNNELS = 1000             # IoTDA: at most 1000 tunnels per tenant
MAX_FRAME = 10 * 1024          # IoTDA: 10 KB per tunnel frame
DEVICE, SOURCE = "device", "source"
OPEN, CLOSED = "OPEN", "CLOSED"
CONNECTED, DISCONNECTED = "CONNECTED", "DISCONNECTED"
#: least seconds between two ``tunnel_notify`` for one tunnel (a source reconnecting in a loop must not flood)
RENOTIFY_INTERVAL_S = 1.0


class TunnelError(EmulatorError):
    """A tunnel request the platform refuses (``status`` is the HTTP status the REST API answers)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class TunnelService(PlatformService):
    """The ``$tunnel_manager`` platform service: tunnels, tokens and the relay's peers.

    Python API (``emu.service("$tunnel_manager")``): ``create_tunnel(device_id)``, ``tunnel(tunnel_id)``,
    ``tunnels(device_id=None)``, ``close_tunnel(tunnel_id)``, ``delete_tunnel(tunnel_id)``,
    ``wait_state(tunnel_id, side, status, timeout)``, ``device_answer(tunnel_id)``, ``token_ttl_s`` (settable).
    """

    service_ids = (SERVICE_ID,)

    def __init__(self, core: Any) -> None:
        super().__init__(core)
        #: lifetime of new tunnels' tokens in seconds (IoTDA: ``expires_in``)
        self.token_ttl_s = TOKEN_TTL_S
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._tunnels: Dict[str, dict] = {}

    # ---- URIs ---------------------------------------------------------------------------------------
    def _uri(self, tunnel_id: str, side: str) -> str:
        emulator = getattr(self.core, "emulator", None)
        base = getattr(emulator, "https_url", None)
        scheme = "wss"
        if not base:  # no HTTPS listener: plain WebSocket on the HTTP port
            base, scheme = getattr(emulator, "http_url", None) or "http://127.0.0.1", "ws"
        host = base.split("://", 1)[1]
        return f"{scheme}://{host}/v5/iot/tunnels/{tunnel_id}/{side}-connect"

    # ---- tunnels ------------------------------------------------------------------------------------
    def create_tunnel(self, device_id: str) -> dict:
        """AddTunnel: create a tunnel for ``device_id`` and notify the device (now, or when it comes online).

        Returns ``{tunnel_id, tunnel_access_token, expires_in, tunnel_uri}`` of the source side. Raises
        DeviceNotFound, or TunnelError when the device has a tunnel already or the limit is reached.
        """
        if not isinstance(device_id, str) or not device_id:
            raise TunnelError("device_id is mandatory")
        if self.core.get_device(device_id) is None:
            exc = DeviceNotFound(f"device {device_id} not found")
            exc.device_id = device_id   # type: ignore[attr-defined]  # for the REST error body
            raise exc
        now = time.time()
        ttl = int(self.token_ttl_s)
        with self._lock:
            if any(t["device_id"] == device_id for t in self._tunnels.values()):
                raise TunnelError(f"The device already has a tunnel. device_id={device_id}")
            if len(self._tunnels) >= MAX_TUNNELS:
                raise TunnelError(f"At most {MAX_TUNNELS} tunnels may exist.", 403)
            tunnel_id = str(uuid.uuid4())
            tunnel = {"tunnel_id": tunnel_id, "device_id": device_id, "created": now, "closed": None,
                      "status": OPEN, "expires": now + ttl,
                      "tokens": {DEVICE: secrets.token_urlsafe(32), SOURCE: secrets.token_urlsafe(32)},
                      "links": {DEVICE: None, SOURCE: None}, "since": {DEVICE: now, SOURCE: now},
                      "notified": 0.0, "answer": None}
            self._tunnels[tunnel_id] = tunnel
            source_token = tunnel["tokens"][SOURCE]
        log.info("tunnel %s created for %s", tunnel_id, device_id)
        self._notify(tunnel_id)
        return {"tunnel_id": tunnel_id, "tunnel_access_token": source_token, "expires_in": ttl,
                "tunnel_uri": self._uri(tunnel_id, SOURCE)}

    def tunnel(self, tunnel_id: str) -> Optional[dict]:
        """ShowDeviceTunnel's view of one tunnel, or None."""
        with self._lock:
            tunnel = self._tunnels.get(tunnel_id)
            return None if tunnel is None else self._view(tunnel)

    def tunnels(self, device_id: Optional[str] = None) -> List[dict]:
        """Views of every tunnel (of ``device_id`` when given), newest first."""
        with self._lock:
            found = [t for t in self._tunnels.values() if device_id is None or t["device_id"] == device_id]
            return [self._view(t) for t in sorted(found, key=lambda t: -t["created"])]

    def device_answer(self, tunnel_id: str) -> Optional[dict]:
        """The device's ``tunnel_notify_response`` paras (``result_code``, ``description``), or None."""
        with self._lock:
            tunnel = self._tunnels.get(tunnel_id)
            return None if tunnel is None or tunnel["answer"] is None else dict(tunnel["answer"])

    def close_tunnel(self, tunnel_id: str, reason: str = "the tunnel was closed") -> bool:
        """CloseDeviceTunnel: end both links, status CLOSED (it may be connected again). False when unknown."""
        with self._changed:
            tunnel = self._tunnels.get(tunnel_id)
            if tunnel is None:
                return False
            links = self._end(tunnel)
            self._changed.notify_all()
        self._hang_up(links, reason)
        log.info("tunnel %s closed", tunnel_id)
        return True

    def delete_tunnel(self, tunnel_id: str) -> bool:
        """DeleteDeviceTunnel: end both links and forget the tunnel (its tokens stop working)."""
        with self._changed:
            tunnel = self._tunnels.pop(tunnel_id, None)
            if tunnel is None:
                return False
            links = self._end(tunnel)
            self._changed.notify_all()
        self._hang_up(links, "the tunnel was deleted")
        log.info("tunnel %s deleted", tunnel_id)
        return True

    def _end(self, tunnel: dict) -> List[Any]:
        """Mark a tunnel CLOSED and detach its links (lock held); returns the links to hang up."""
        now = time.time()
        links = [link for link in tunnel["links"].values() if link is not None]
        for side in (DEVICE, SOURCE):
            if tunnel["links"][side] is not None:
                tunnel["links"][side] = None
                tunnel["since"][side] = now
        if tunnel["status"] != CLOSED:
            tunnel["status"], tunnel["closed"] = CLOSED, now
        return links

    @staticmethod
    def _hang_up(links: List[Any], reason: str) -> None:
        for link in links:
            try:
                link.send_frame(disconnect_frame(reason))
                link.close_link(1000, reason)
            except Exception:  # noqa: BLE001 - a link already gone is fine
                log.debug("hanging up a tunnel link failed", exc_info=True)

    def wait_state(self, tunnel_id: str, side: str, status: str, timeout: float = 10.0) -> dict:
        """Wait until ``side`` (``"device"``/``"source"``) of the tunnel is ``status`` (CONNECTED/DISCONNECTED)."""
        def reached() -> Optional[dict]:
            tunnel = self._tunnels.get(tunnel_id)
            if tunnel is None:
                raise KeyError(tunnel_id)
            view = self._view(tunnel)
            return view if view[f"{side}_connect_state"]["status"] == status else None

        return wait_changed(self._changed, reached, timeout, lambda: f"tunnel {tunnel_id}: {side} is not {status}")

    @staticmethod
    def _view(tunnel: dict) -> dict:
        def state(side: str) -> dict:
            return {"status": CONNECTED if tunnel["links"][side] is not None else DISCONNECTED,
                    "last_update_time": codec.event_time(tunnel["since"][side])}
        return {"tunnel_id": tunnel["tunnel_id"], "device_id": tunnel["device_id"],
                "create_time": codec.event_time(tunnel["created"]),
                "closed_time": codec.event_time(tunnel["closed"]) if tunnel["closed"] else None,
                "status": tunnel["status"], "source_connect_state": state(SOURCE),
                "device_connect_state": state(DEVICE)}

    # ---- the relay's bookkeeping --------------------------------------------------------------------
    def authorize(self, tunnel_id: str, side: str, token: Optional[str]) -> Optional[str]:
        """None when ``token`` opens ``side`` of the tunnel now, else why not (never contains the token)."""
        with self._lock:
            tunnel = self._tunnels.get(tunnel_id)
            if tunnel is None:
                return "the tunnel does not exist"
            expected = tunnel["tokens"][side]
            expires = tunnel["expires"]
        if not token or not hmac.compare_digest(token.encode("utf-8", "replace"), expected.encode("ascii")):
            return "invalid tunnel_access_token"
        if time.time() >= expires:
            return "the tunnel_access_token has expired"
        return None

    def attach(self, tunnel_id: str, side: str, link: Any) -> Optional[Any]:
        """``link`` is now ``side`` of the tunnel (status OPEN again); returns the link it replaces (to close:
        IoTDA allows one WebSocket per side) or None. KeyError when the tunnel is gone."""
        with self._changed:
            tunnel = self._tunnels[tunnel_id]
            old = tunnel["links"][side]
            tunnel["links"][side] = link
            tunnel["since"][side] = time.time()
            if tunnel["status"] == CLOSED:
                tunnel["status"] = OPEN
            if side == DEVICE:
                tunnel["answer"] = None
            self._changed.notify_all()
        return old

    def detach(self, tunnel_id: str, side: str, link: Any) -> None:
        """``link`` has gone (only if it still is ``side`` of the tunnel)."""
        with self._changed:
            tunnel = self._tunnels.get(tunnel_id)
            if tunnel is not None and tunnel["links"][side] is link:
                tunnel["links"][side] = None
                tunnel["since"][side] = time.time()
                self._changed.notify_all()

    def peer(self, tunnel_id: str, side: str) -> Optional[Any]:
        """The link of the other side, or None."""
        with self._lock:
            tunnel = self._tunnels.get(tunnel_id)
            return None if tunnel is None else tunnel["links"][SOURCE if side == DEVICE else DEVICE]

    def source_waiting(self, tunnel_id: str) -> None:
        """A source connected while the device is not: tell the device (again) to connect."""
        with self._lock:
            tunnel = self._tunnels.get(tunnel_id)
            due = (tunnel is not None and tunnel["links"][DEVICE] is None
                   and time.time() - tunnel["notified"] >= RENOTIFY_INTERVAL_S)
        if due:
            self.core.submit(self._notify, tunnel_id)

    # ---- the device side ----------------------------------------------------------------------------
    def _notify(self, tunnel_id: str) -> None:
        """Send ``tunnel_notify`` for the tunnel when its device is online (any thread but paho's)."""
        with self._lock:
            tunnel = self._tunnels.get(tunnel_id)
            if tunnel is None:
                return
            device_id, token = tunnel["device_id"], tunnel["tokens"][DEVICE]
            expires_in = max(0, int(tunnel["expires"] - time.time()))
        record = self.core.get_device(device_id) or {}
        if not self.core.is_online(record.get("gateway_id") or device_id):
            log.info("tunnel %s: %s is offline; tunnel_notify is sent when it connects", tunnel_id, device_id)
            return
        paras = {"tunnel_uri": self._uri(tunnel_id, DEVICE), "tunnel_access_token": token, "expires_in": expires_in}
        try:
            self.core.send_event(device_id, SERVICE_ID, "tunnel_notify", paras)
        except (DeviceOffline, DeviceNotFound, EmulatorError, ValueError) as exc:
            log.info("tunnel_notify for tunnel %s not sent: %s", tunnel_id, exc)
            return
        with self._lock:
            if tunnel_id in self._tunnels:
                self._tunnels[tunnel_id]["notified"] = time.time()
        log.info("tunnel_notify for tunnel %s sent to %s", tunnel_id, device_id)

    def on_device_online(self, device_id: str) -> None:
        """Tunnels whose device side is not connected are announced again to a device that comes online."""
        with self._lock:
            due = [t["tunnel_id"] for t in self._tunnels.values()
                   if t["device_id"] == device_id and t["status"] == OPEN and t["links"][DEVICE] is None
                   and time.time() < t["expires"]]
        for tunnel_id in due:
            self.core.submit(self._notify, tunnel_id)

    def on_event(self, device_id: str, object_device_id: Optional[str], event: dict) -> None:
        target = object_device_id or device_id
        event_type = event.get("event_type")
        if event_type != "tunnel_notify_response":
            log.warning("unknown $tunnel_manager event type %r from %s; ignored", event_type, target)
            return
        raw = event.get("paras")
        paras: Dict[str, Any] = raw if isinstance(raw, dict) else {}
        result_code = codec.as_int(paras.get("result_code"))
        if result_code is None:
            log.warning("tunnel_notify_response from %s without an integer result_code; ignored", target)
            return
        description = paras.get("description")
        description = description[:256] if isinstance(description, str) else None
        tunnel_id = paras.get("tunnel_id") if isinstance(paras.get("tunnel_id"), str) else None
        links: List[Any] = []
        with self._changed:
            tunnel = self._tunnels.get(tunnel_id or "")
            if tunnel is None or tunnel["device_id"] != target:
                tunnel = next((t for t in self._tunnels.values() if t["device_id"] == target), None)
            if tunnel is None:
                log.info("tunnel_notify_response from %s matches no tunnel; ignored", target)
                return
            tunnel["answer"] = {"result_code": result_code, "description": description}
            if result_code != 0:
                links = self._end(tunnel)
            self._changed.notify_all()
            found = tunnel["tunnel_id"]
        if result_code != 0:
            log.info("device %s refused tunnel %s (result_code %s)", target, found, result_code)
            self._hang_up(links, f"the device refused the tunnel: {description or result_code}")

    def describe(self) -> Any:
        """Tunnel count per status."""
        with self._lock:
            out: Dict[str, int] = {}
            for tunnel in self._tunnels.values():
                out[tunnel["status"]] = out.get(tunnel["status"], 0) + 1
            return out

    def close(self) -> None:
        with self._changed:
            links = [link for t in self._tunnels.values() for link in self._end(t)]
        self._hang_up(links, "the platform is stopping")


def disconnect_frame(reason: str, status_code: str = "0") -> dict:
    """The platform's ``disconnect`` frame (IoTDA: ``data {status_code, status_msg}``)."""
    return {"operation_type": "disconnect", "tunnel_service_type": "ssh", "request_id": uuid.uuid4().hex,
            "data": {"status_code": status_code, "status_msg": reason}}
