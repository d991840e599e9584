"""IoTDA v5 bridges over REST; the registry is :mod:`iotda_emulator.bridges`, the device side
:mod:`iotda_emulator.bridge_protocol`.

* ``POST/GET /v5/iot/{project_id}/bridges`` (AddBridge 201 with ``auth_info.secret``; ListBridges: newest first,
  ``limit`` 1-50, ``offset`` 0-500, ``marker``; ``status`` ``ONLINE`` while the bridge is connected);
* ``DELETE .../bridges/{bridge_id}`` (DeleteBridge 204), ``POST .../bridges/{bridge_id}/reset-secret``
  (ResetBridgeSecret: 200 ``{bridge_id, secret}``; ``force_disconnect`` drops the bridge's link). Deleting a
  bridge drops its link too: the devices logged in through it go offline.

A refused bridge (bad name or id, an id taken, a 21st bridge) is a 400 ``IOTDA.000006``; an unknown bridge a 404.
"""
from __future__ import annotations

import re
from typing import Any, List

from iotda_emulator import bridges as _bridges
from iotda_emulator.http.rest import PREFIX, ApiError, BaseApiHandler, _event_time, api, bad_request

BRIDGE = PREFIX + r"/bridges/(?P<bridge_id>[^/]+)"
_MARKER_RE = re.compile(r"[0-9a-fA-F]{24}")


class _BridgesBase(BaseApiHandler):
    @property
    def bridges(self) -> _bridges.BridgeRegistry:
        return self.emulator.core.bridges

    async def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """A blocking registry call; its refusals become API errors."""
        try:
            return await self.call(fn, *args, **kwargs)
        except _bridges.BridgeNotFound as exc:
            raise ApiError(404, "IOTDA.000006", f"Invalid input data. {exc}.") from None
        except _bridges.BridgeError as exc:
            raise bad_request(f"{exc}.") from None


class BridgesHandler(_BridgesBase):
    """``POST`` (AddBridge) and ``GET`` (ListBridges) ``.../bridges``."""

    @api
    async def post(self, project_id: str) -> None:
        body = self.json_body()
        name = body.get("bridge_name")
        if not isinstance(name, str):
            raise bad_request("'bridge_name' is mandatory.")
        bridge = await self.run(self.bridges.add_bridge, name, body.get("bridge_id"))
        self.reply({"bridge_id": bridge["bridge_id"], "bridge_name": bridge["bridge_name"],
                    "auth_info": {"auth_type": "SECRET", "secret": bridge["secret"]},
                    "create_time": _event_time(bridge["created"])}, 201)

    @api
    async def get(self, project_id: str) -> None:
        limit = self.int_arg("limit", 10, 1, 50)
        offset = self.int_arg("offset", 0, 0, 500)
        marker = self.get_query_argument("marker", None)
        items = await self.run(self.bridges.list_bridges)
        if marker:
            if not _MARKER_RE.fullmatch(marker):
                raise bad_request("'marker' is a 24-digit hexadecimal string.")
            items = [b for b in items if b["marker"] < marker.lower()]
        page = items[offset:offset + limit]
        online = self.emulator.core.bridging.online   # bridges with a link now
        self.reply({"bridges": [{"bridge_id": b["bridge_id"], "bridge_name": b["bridge_name"],
                                 "status": _bridges.ONLINE if b["bridge_id"] in online else b["status"]}
                                for b in page],
                    "page": {"count": len(items), "marker": page[-1]["marker"] if page else None}})


class BridgeHandler(_BridgesBase):
    """``DELETE .../bridges/{bridge_id}`` (DeleteBridge)."""

    @api
    async def delete(self, project_id: str, bridge_id: str) -> None:
        await self.run(self.bridges.delete_bridge, bridge_id)
        await self.call(self.emulator.core.bridging.disconnect, bridge_id)   # its devices go offline
        self.reply(None, 204)


class ResetSecretHandler(_BridgesBase):
    """``POST .../bridges/{bridge_id}/reset-secret`` (ResetBridgeSecret)."""

    @api
    async def post(self, project_id: str, bridge_id: str) -> None:
        body = self.json_body() if (self.request.body or b"").strip() else {}
        force = body.get("force_disconnect", False)
        if not isinstance(force, bool):
            raise bad_request("'force_disconnect' is a boolean.")
        secret = await self.run(self.bridges.reset_secret, bridge_id)
        if force:   # else the current link stays; its next CONNECT needs the new secret
            await self.call(self.emulator.core.bridging.disconnect, bridge_id)
        self.reply({"bridge_id": bridge_id, "secret": secret})


def routes(server: Any) -> List[tuple]:
    """The bridge routes, each handler initialised with the owning HTTP server."""
    kw = {"server": server}
    return [
        (PREFIX + r"/bridges/?", BridgesHandler, kw),
        (BRIDGE + r"/?", BridgeHandler, kw),
        (BRIDGE + r"/reset-secret/?", ResetSecretHandler, kw),
    ]
