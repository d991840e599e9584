"""IoTDA v5 BroadcastMessage: ``POST /v5/iot/{project_id}/broadcast-messages`` (doc/protocol.md §4.3).

Body (as in the official ``huaweicloudsdkiotda`` ``DeviceBroadcastRequest``): ``topic_full_name`` M (must
start with ``$oc/broadcast/``), ``message`` M (base64 of the bytes devices receive, at most 128 KB of
base64), ``ttl`` O (minutes to cache for later subscribers: 0 = not cached, a multiple of 5, at most 1440),
``message_id`` O (1-100 of ``A-Z a-z 0-9 _ -``; unique among cached broadcasts), ``app_id`` O (echoed).
Answers 201 ``{app_id, topic_full_name, message_id, created_time}``. Every rule broken is a 400
``IOTDA.000006`` (IoTDA's specific codes for these cases are not published). How the ttl cache works in the
emulator: :mod:`iotda_emulator.services.broadcast`.

Emulator-only: ``GET /v5/iot/{project_id}/broadcast-messages[?topic_full_name=..]`` lists the broadcasts
sent (with ``ttl``, ``size`` and the ``subscribers`` at the time of sending); IoTDA has no such query.
"""
from __future__ import annotations

import base64
import binascii
from typing import Any, List

from iotda_emulator.http.rest import PREFIX, ApiError, BaseApiHandler, api, bad_request
from iotda_emulator.services.broadcast import BroadcastRefused

_MAX_BASE64 = 128 * 1024


def _service(emulator: Any) -> Any:
    try:
        return emulator.service("$broadcast")
    except (KeyError, AttributeError):
        raise ApiError(500, "IOTDA.000001", "Internal error: the emulator has no broadcast service.") from None


class BroadcastMessagesHandler(BaseApiHandler):
    """``POST`` (BroadcastMessage) and ``GET`` (emulator-only list) ``.../broadcast-messages``."""

    @api
    async def post(self, project_id: str) -> None:
        body = self.json_body()
        topic = body.get("topic_full_name")
        if topic is None or topic == "":
            raise bad_request("'topic_full_name' is mandatory.")
        message = body.get("message")
        if not isinstance(message, str) or not message:
            raise bad_request("'message' is mandatory: the base64 of the broadcast.")
        if len(message) > _MAX_BASE64:
            raise bad_request("'message' exceeds 128 KB of base64.")
        try:
            payload = base64.b64decode(message, validate=True)
        except (binascii.Error, ValueError):
            raise bad_request("'message' is not valid base64.") from None
        ttl = body.get("ttl", 0)
        if ttl is None:
            ttl = 0
        svc = _service(self.emulator)
        try:
            record = await self.call(svc.broadcast, topic, payload, ttl, body.get("message_id"), body.get("app_id"))
        except BroadcastRefused as exc:
            raise bad_request(str(exc)) from None
        self.reply({"app_id": record["app_id"], "topic_full_name": record["topic_full_name"],
                    "message_id": record["message_id"], "created_time": record["created_time"]}, 201)

    @api
    async def get(self, project_id: str) -> None:
        topic = self.get_query_argument("topic_full_name", None) or None
        records = await self.call(_service(self.emulator).messages, topic)
        self.reply({"count": len(records),
                    "broadcast_messages": [{k: r[k] for k in ("app_id", "topic_full_name", "message_id",
                                                              "created_time", "ttl", "size", "subscribers")}
                                           for r in records]})


def routes(server: Any) -> List[tuple]:
    """The broadcast route, its handler initialised with the owning HTTP server."""
    return [(PREFIX + r"/broadcast-messages/?", BroadcastMessagesHandler, {"server": server})]
