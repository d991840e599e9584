"""Device tunnels (remote login): IoTDA's tunnel management API and the WebSocket relay (doc/protocol.md §3.9).

REST, as IoTDA's application API (and the official ``huaweicloudsdkiotda`` models) define it:

* ``POST /v5/iot/{project_id}/tunnels`` ``{"device_id"}`` — AddTunnel: 201 ``{tunnel_id, tunnel_access_token,
  expires_in, tunnel_uri}`` (the source side's URI and token); the device gets ``tunnel_notify``;
* ``GET /v5/iot/{project_id}/tunnels[?device_id=]`` — ListDeviceTunnels: ``{"tunnels": [TunnelInfo]}``;
* ``GET /v5/iot/{project_id}/tunnels/{tunnel_id}`` — ShowDeviceTunnel: ``tunnel_id``, ``device_id``,
  ``create_time``, ``closed_time``, ``status`` (OPEN, CLOSED), ``source_connect_state`` and
  ``device_connect_state`` (``status`` CONNECTED/DISCONNECTED, ``last_update_time``);
* ``PUT .../tunnels/{tunnel_id}`` — CloseDeviceTunnel (204); ``DELETE .../tunnels/{tunnel_id}`` —
  DeleteDeviceTunnel (204).

The relay, as IoTDA's "security tunnel WebSocket API" documents it: ``/v5/iot/tunnels/{tunnel_id}/device-connect``
and ``/v5/iot/tunnels/{tunnel_id}/source-connect`` upgrade to a WebSocket when the header ``tunnel_access_token``
carries that side's token (401 otherwise, 404 for an unknown tunnel). Text frames are JSON objects with
``operation_type``; the relay answers ``ping`` with ``pong``, tells the source ``connect_tunnel`` when the device
is connected, sends ``disconnect`` when a side goes or the tunnel is closed, and passes every other frame to the
other side unchanged (at most ``MAX_FRAME`` bytes: larger ones, binary frames and non-JSON close the link with
1009/1003). Served on the emulator's HTTP and HTTPS ports (``tunnel_uri`` is ``wss://`` when HTTPS is served).
"""
from __future__ import annotations

import json
import logging
import uuid
from typing import Any, List, Optional, Union

import tornado.websocket
from tornado.ioloop import IOLoop

from iotda_emulator import errors
from iotda_emulator.http.rest import PREFIX, ApiError, BaseApiHandler, api, bad_request, device_not_found

log = logging.getLogger(__name__)

_TUNNEL_ID_MAX = 128


def _service(emulator: Any) -> Any:
    try:
        return emulator.service("$tunnel_manager")
    except (KeyError, AttributeError):
        raise ApiError(500, "IOTDA.000001", "Internal error: the emulator has no $tunnel_manager service.") from None


def _tunnel_not_found(tunnel_id: str) -> ApiError:
    return ApiError(404, "IOTDA.000006", f"Invalid input data. The tunnel does not exist. tunnel_id={tunnel_id}")


class TunnelsHandler(BaseApiHandler):
    """``POST`` (AddTunnel) and ``GET`` (ListDeviceTunnels) ``.../tunnels``."""

    @api
    async def post(self, project_id: str) -> None:
        body = self.json_body()
        device_id = body.get("device_id")
        if not isinstance(device_id, str) or not device_id:
            raise bad_request("'device_id' is mandatory: a string.")
        svc = _service(self.emulator)
        from iotda_emulator.services.tunnel import TunnelError

        try:
            answer = await self.call(svc.create_tunnel, device_id)
        except errors.DeviceNotFound:
            raise device_not_found(device_id) from None
        except TunnelError as exc:
            raise ApiError(exc.status, "IOTDA.000006", f"Invalid input data. {exc}") from None
        self.reply(answer, 201)

    @api
    async def get(self, project_id: str) -> None:
        device_id = self.get_query_argument("device_id", None) or None
        self.reply({"tunnels": await self.call(_service(self.emulator).tunnels, device_id)})


class TunnelHandler(BaseApiHandler):
    """``GET`` (ShowDeviceTunnel), ``PUT`` (CloseDeviceTunnel), ``DELETE`` (DeleteDeviceTunnel)."""

    @api
    async def get(self, project_id: str, tunnel_id: str) -> None:
        view = await self.call(_service(self.emulator).tunnel, tunnel_id)
        if view is None:
            raise _tunnel_not_found(tunnel_id)
        self.reply(view)

    @api
    async def put(self, project_id: str, tunnel_id: str) -> None:
        if not await self.call(_service(self.emulator).close_tunnel, tunnel_id):
            raise _tunnel_not_found(tunnel_id)
        self.reply(None, 204)

    @api
    async def delete(self, project_id: str, tunnel_id: str) -> None:
        if not await self.call(_service(self.emulator).delete_tunnel, tunnel_id):
            raise _tunnel_not_found(tunnel_id)
        self.reply(None, 204)


class TunnelSocketHandler(tornado.websocket.WebSocketHandler):
    """One side (``device`` or ``source``) of a tunnel: a WebSocket whose frames the relay passes on."""

    def initialize(self, server: Any, side: str) -> None:  # noqa: D401 - tornado hook
        self.server = server
        self.side = side
        self.tunnel_id = ""
        self._svc: Any = None
        self._loop: Optional[IOLoop] = None
        self._attached = False

    async def get(self, *args: Any, **kwargs: Any) -> None:
        tunnel_id = kwargs.get("tunnel_id") or (args[0] if args else "")
        try:
            self._svc = _service(self.server.emulator)
        except ApiError as err:
            self._refuse(err.status, err.code, err.message)
            return
        why = None if len(tunnel_id) <= _TUNNEL_ID_MAX else "the tunnel does not exist"
        why = why or self._svc.authorize(tunnel_id, self.side, self.request.headers.get("tunnel_access_token"))
        if why is not None:
            # the reason says which check failed, never the token
            log.info("tunnel %s: %s connection refused: %s", tunnel_id[:_TUNNEL_ID_MAX], self.side, why)
            status = 404 if why == "the tunnel does not exist" else 401
            self._refuse(status, "IOTDA.000006" if status == 404 else "IOTDA.000002", why)
            return
        self.tunnel_id = tunnel_id
        await super().get(*args, **kwargs)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # tornado's own refusals before get() (a path that is not UTF-8, a wrong method) in IoTDA's error shape
        self._refuse(status_code, "IOTDA.000001" if status_code >= 500 else "IOTDA.000006", self._reason or "error")

    def _refuse(self, status: int, code: str, message: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps({"error_code": code, "error_msg": message}))

    # ---- the link interface of TunnelService (any thread) ----------------------------------------------
    def send_frame(self, frame: dict) -> None:
        """Send a frame of the platform's own (``connect_tunnel``, ``disconnect``...)."""
        text = json.dumps(frame)
        if self._loop is not None:
            self._loop.add_callback(self._write, text)

    def close_link(self, code: int, reason: str) -> None:
        """Close the WebSocket (the frames queued before go out first)."""
        if self._loop is not None:
            self._loop.add_callback(self._close, code, reason)

    async def _write(self, text: str) -> None:
        try:
            await self.write_message(text)
        except tornado.websocket.WebSocketClosedError:
            pass

    async def _close(self, code: int, reason: str) -> None:
        # a coroutine like _write, so it runs after the frames queued before it (a plain callback would not)
        self._attached = False
        self.close(code, reason[:120])

    # ---- tornado hooks ---------------------------------------------------------------------------------
    def open(self, *args: Any, **kwargs: Any) -> None:
        self._loop = IOLoop.current()
        try:
            old = self._svc.attach(self.tunnel_id, self.side, self)
        except KeyError:   # deleted between the check and the upgrade
            self.close(1008, "the tunnel does not exist")
            return
        self._attached = True
        if old is not None:   # IoTDA: one WebSocket per side; the newest wins
            old.close_link(1000, "replaced by a newer connection")
        log.info("tunnel %s: %s connected", self.tunnel_id, self.side)
        peer = self._svc.peer(self.tunnel_id, self.side)
        if self.side == "device":
            if peer is not None:
                peer.send_frame(_frame("connect_tunnel", None))
        elif peer is not None:
            self.send_frame(_frame("connect_tunnel", None))
        else:
            self._svc.source_waiting(self.tunnel_id)

    async def on_message(self, message: Union[str, bytes]) -> None:
        if isinstance(message, bytes):
            self.close(1003, "tunnel frames are JSON text")
            return
        from iotda_emulator.services.tunnel import MAX_FRAME

        if len(message) > MAX_FRAME:
            self.close(1009, f"a tunnel frame is at most {MAX_FRAME} bytes")
            return
        try:
            frame = json.loads(message)
        except ValueError:
            frame = None
        if not isinstance(frame, dict) or not isinstance(frame.get("operation_type"), str):
            log.info("tunnel %s: %s sent a frame that is not a JSON object with operation_type; closed",
                     self.tunnel_id, self.side)
            self.close(1003, "a tunnel frame is a JSON object with operation_type")
            return
        if frame["operation_type"] == "ping":
            await self._write(json.dumps(_frame("pong", None, frame.get("request_id"))))
            return
        peer = self._svc.peer(self.tunnel_id, self.side)
        if peer is None:
            log.debug("tunnel %s: %s frame with no peer connected; dropped", self.tunnel_id, self.side)
            return
        # awaiting the peer's write stops reading this side while the other is slow (backpressure)
        await peer._write(message)

    def on_close(self) -> None:
        if not self._attached or self._svc is None:
            return
        self._attached = False
        self._svc.detach(self.tunnel_id, self.side, self)
        log.info("tunnel %s: %s disconnected", self.tunnel_id, self.side)
        peer = self._svc.peer(self.tunnel_id, self.side)
        if peer is not None:
            peer.send_frame(_frame("disconnect", {"status_code": "0",
                                                  "status_msg": f"the {self.side} disconnected"}))

    @property
    def max_message_size(self) -> int:
        # tornado closes the link (1009) before buffering more than this; on_message checks the exact bound
        from iotda_emulator.services.tunnel import MAX_FRAME

        return 4 * MAX_FRAME

    def check_origin(self, origin: str) -> bool:
        # tunnels are for tools and devices; no browser page may open one
        return False


def _frame(operation: str, data: Any, request_id: Optional[str] = None) -> dict:
    return {"operation_type": operation, "tunnel_service_type": "ssh",
            "request_id": request_id if isinstance(request_id, str) else uuid.uuid4().hex, "data": data}


def routes(server: Any) -> List[tuple]:
    """The tunnel REST routes and the two WebSocket endpoints of the relay."""
    kw = {"server": server}
    return [
        (PREFIX + r"/tunnels/?", TunnelsHandler, kw),
        (PREFIX + r"/tunnels/(?P<tunnel_id>[^/]+)/?", TunnelHandler, kw),
        (r"/v5/iot/tunnels/(?P<tunnel_id>[^/]+)/device-connect", TunnelSocketHandler,
         {"server": server, "side": "device"}),
        (r"/v5/iot/tunnels/(?P<tunnel_id>[^/]+)/source-connect", TunnelSocketHandler,
         {"server": server, "side": "source"}),
    ]
