"""The console's views of the newer platform features: remote configuration, broadcast, device tunnels,
asynchronous commands (with the message statuses of a device), device groups and tags.

Mounted by :func:`.console.console_routes`. Every endpoint calls the emulator's Python API: the
``$device_config``, ``$broadcast``, ``$tunnel_manager`` and ``$async_commands`` services,
``emulator.core.messages`` and ``emulator.core.groups``; no rule is repeated here (their refusals become
``400`` answers). Login, same-origin and content-type checks are those of :class:`.console._ApiHandler`.

A tunnel's source token appears only in the answer of the request that created the tunnel (as device secrets
do); listings never carry tokens, and nothing here logs one.
"""
from __future__ import annotations

import shlex
from typing import Any, Dict, List, Optional

from iotda_emulator import groups as _groups
from iotda_emulator.http.console import ConsoleError, _ApiHandler, _require_str
from iotda_emulator.http.redact import redact_value
from iotda_emulator.protocol import codec
from iotda_emulator.services.tunnel import TunnelError

#: Local port the console suggests for ``tunnel-connect --listen``.
TUNNEL_LISTEN_PORT = 2222
#: Most targets one console configuration task names (the ``$device_config`` service checks its own limit).
_MAX_IDS = 1000


def _service(emulator: Any, service_id: str) -> Any:
    try:
        return emulator.service(service_id)
    except (KeyError, AttributeError):
        raise ConsoleError(503, "unavailable", f"the {service_id} platform service is not available") from None


def _device_ids(body: dict) -> List[str]:
    ids = body.get("device_ids")
    if not isinstance(ids, list) or not ids or len(ids) > _MAX_IDS \
            or not all(isinstance(d, str) and d for d in ids):
        raise ConsoleError(400, "bad_request", "device_ids must be a non-empty list of device ids")
    return ids


def _opt_int(body: dict, key: str) -> Optional[int]:
    value = body.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConsoleError(400, "bad_request", f"{key} must be a whole number")
    return value


def _not_found(exc: BaseException) -> ConsoleError:
    return ConsoleError(404, "not_found", str(exc) or "not found")


# ---- remote configuration ----------------------------------------------------------------------

class ConfigTasksHandler(_ApiHandler):
    """``GET /console/api/config-tasks``: every ``$device_config`` task (newest first) with each device's status,
    ``result_code`` and ``description``. ``POST`` ``{config_content: {...}, device_ids: [...], timeout_days?,
    task_name?}`` creates one (``config_update`` goes to the online targets now) -> ``201 {"task"}``."""

    async def get(self) -> None:
        tasks = await self.blocking(_service(self.emulator, "$device_config").tasks)
        self.send_json({"tasks": list(reversed(tasks))})

    async def post(self) -> None:
        body = self.body_object()
        content = body.get("config_content")
        if not isinstance(content, dict):
            raise ConsoleError(400, "bad_request", "config_content must be a JSON object")
        device_ids = _device_ids(body)
        timeout_days = _opt_int(body, "timeout_days")
        name = _require_str(body, "task_name", optional=True)
        svc = _service(self.emulator, "$device_config")
        kwargs: Dict[str, Any] = {"task_name": name}
        if timeout_days is not None:
            kwargs["timeout_days"] = timeout_days
        task = await self.blocking(svc.create_task, content, device_ids, **kwargs)
        self.send_json({"task": task}, 201)


class ConfigTaskHandler(_ApiHandler):
    """``DELETE /console/api/config-tasks/{task_id}``: forget a task (unanswered devices no longer get it)."""

    async def delete(self, task_id: str) -> None:
        if not await self.blocking(_service(self.emulator, "$device_config").delete_task, task_id):
            raise ConsoleError(404, "not_found", f"no configuration task {task_id!r}")
        self.send_json({"deleted": task_id})


# ---- broadcast ---------------------------------------------------------------------------------

_BROADCAST_FIELDS = ("app_id", "topic_full_name", "message_id", "created_time", "ttl", "size", "subscribers")


class BroadcastsHandler(_ApiHandler):
    """``GET /console/api/broadcasts``: the broadcasts sent, newest first. ``POST`` ``{topic_full_name, payload,
    ttl?, message_id?}`` broadcasts ``payload`` (a string as its UTF-8 bytes, a JSON object or array as compact
    JSON) -> ``201 {"broadcast"}`` with the devices subscribed at the time of sending."""

    async def get(self) -> None:
        records = await self.blocking(_service(self.emulator, "$broadcast").messages)
        self.send_json({"broadcasts": [{k: r.get(k) for k in _BROADCAST_FIELDS} for r in reversed(records)]})

    async def post(self) -> None:
        body = self.body_object()
        topic = _require_str(body, "topic_full_name") or ""
        payload = body.get("payload")
        if isinstance(payload, (dict, list)):
            data = codec.dumps_bytes(payload)
        elif isinstance(payload, str):
            data = payload.encode("utf-8")
        else:
            raise ConsoleError(400, "bad_request", "payload must be a string or JSON")
        ttl = _opt_int(body, "ttl") or 0
        message_id = _require_str(body, "message_id", optional=True)
        svc = _service(self.emulator, "$broadcast")
        record = await self.blocking(svc.broadcast, topic, data, ttl, message_id)   # BroadcastRefused: a 400
        self.send_json({"broadcast": {k: record.get(k) for k in _BROADCAST_FIELDS}}, 201)


# ---- tunnels -----------------------------------------------------------------------------------

def connect_hint(tunnel_uri: str, token: Optional[str] = None, port: int = TUNNEL_LISTEN_PORT) -> str:
    """The shell command that relays a local port into the tunnel (``tunnel-connect``, the emulator's source).

    The token goes in the environment (``tunnel-connect`` never reads it from the command line); without
    ``token`` the command shows a placeholder.
    """
    value = shlex.quote(token) if token else "'<source token shown when the tunnel was created>'"
    return (f"IOTDA_TUNNEL_TOKEN={value} python -m iotda_emulator tunnel-connect "
            f"--tunnel-uri {shlex.quote(tunnel_uri)} --listen {port}")


class TunnelsHandler(_ApiHandler):
    """``GET /console/api/tunnels``: every tunnel (newest first) with its status, both sides' connection state,
    the device's answer and the source ``tunnel_uri`` (never a token). ``POST`` ``{device_id}`` opens one
    (AddTunnel; the device gets ``tunnel_notify``) -> ``201 {"tunnel", "tunnel_access_token", "connect",
    "listen_port"}``:
    the only answer that carries the source token."""

    async def get(self) -> None:
        svc = _service(self.emulator, "$tunnel_manager")

        def listing() -> list:
            out = []
            for view in svc.tunnels():
                # the service's own URI rule (AddTunnel's tunnel_uri), so the hint matches what creation answered
                uri = svc._uri(view["tunnel_id"], "source")
                out.append(dict(view, tunnel_uri=uri, device_answer=svc.device_answer(view["tunnel_id"]),
                                connect=connect_hint(uri)))
            return out

        self.send_json({"tunnels": await self.blocking(listing)})

    async def post(self) -> None:
        body = self.body_object()
        device_id = _require_str(body, "device_id") or ""
        await self.device_checked(device_id)
        svc = _service(self.emulator, "$tunnel_manager")
        try:
            answer = await self.blocking(svc.create_tunnel, device_id)
        except TunnelError as exc:          # one tunnel per device, at most 1000: the status the REST API answers
            raise ConsoleError(exc.status, "refused", str(exc)) from None
        view = await self.blocking(svc.tunnel, answer["tunnel_id"]) or {}
        token = answer["tunnel_access_token"]
        self.send_json({"tunnel": dict(view, tunnel_uri=answer["tunnel_uri"], expires_in=answer["expires_in"]),
                        "tunnel_access_token": token, "connect": connect_hint(answer["tunnel_uri"], token),
                        "listen_port": TUNNEL_LISTEN_PORT}, 201)


class TunnelCloseHandler(_ApiHandler):
    """``POST /console/api/tunnels/{id}/close``: CloseDeviceTunnel (both links end; status CLOSED)."""

    async def post(self, tunnel_id: str) -> None:
        svc = _service(self.emulator, "$tunnel_manager")
        if not await self.blocking(svc.close_tunnel, tunnel_id, "closed from the console"):
            raise ConsoleError(404, "not_found", f"no tunnel {tunnel_id!r}")
        self.send_json({"tunnel": await self.blocking(svc.tunnel, tunnel_id)})


class TunnelHandler(_ApiHandler):
    """``DELETE /console/api/tunnels/{id}``: DeleteDeviceTunnel (the tunnel and its tokens are gone)."""

    async def delete(self, tunnel_id: str) -> None:
        if not await self.blocking(_service(self.emulator, "$tunnel_manager").delete_tunnel, tunnel_id):
            raise ConsoleError(404, "not_found", f"no tunnel {tunnel_id!r}")
        self.send_json({"deleted": tunnel_id})


# ---- asynchronous commands and message statuses --------------------------------------------------

class AsyncCommandsHandler(_ApiHandler):
    """``GET /console/api/devices/{id}/async-commands``: ``{"queue", "history", "messages"}`` - the device's
    commands in progress and finished (newest first) and its ``messages/down`` statuses (not their content).
    ``POST`` ``{service_id?, command_name, paras?, send_strategy?: delay|immediately, expire_time?}`` ->
    ``201 {"command"}``."""

    async def get(self, device_id: str) -> None:
        await self.device_checked(device_id)
        svc = _service(self.emulator, "$async_commands")

        def views() -> dict:
            # served as the trace is: secret-named fields masked; message statuses without their content
            return {"queue": redact_value(svc.queue(device_id)), "history": redact_value(svc.history(device_id)),
                    "messages": [{k: v for k, v in m.items() if k != "message"}
                                 for m in self.emulator.core.messages.list(device_id)]}

        self.send_json(await self.blocking(views))

    async def post(self, device_id: str) -> None:
        body = self.body_object()
        service_id = _require_str(body, "service_id", optional=True)
        command_name = _require_str(body, "command_name")
        paras = body.get("paras")
        if paras is not None and not isinstance(paras, dict):
            raise ConsoleError(400, "bad_request", "paras must be a JSON object")
        strategy = _require_str(body, "send_strategy", optional=True)
        expire_time = _opt_int(body, "expire_time")
        await self.device_checked(device_id)
        svc = _service(self.emulator, "$async_commands")
        command = await self.blocking(svc.create, device_id, service_id, command_name, paras or {},
                                      expire_time, strategy)
        self.send_json({"command": command}, 201)


# ---- device groups and tags ---------------------------------------------------------------------

def groups_view(emulator: Any) -> dict:
    """Every group (newest first) with its members, and every device's tags (blocking)."""
    from iotda_emulator.http.rest_devices import search_rows   # the rows dynamic rules match on

    groups = emulator.core.groups
    rows = search_rows(emulator)
    out = []
    for group in groups.list_groups():
        members = groups.members(group["group_id"], lambda: rows)
        out.append({k: group.get(k) for k in ("group_id", "name", "description", "super_group_id", "group_type",
                                              "dynamic_group_rule")} | {"members": members})
    return {"groups": out, "tags": {r["device_id"]: r["tags"] for r in rows if r.get("tags")}}


def _group_call(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except _groups.GroupNotFound as exc:
        raise _not_found(exc) from None
    except _groups.GroupError as exc:
        raise ConsoleError(400, "bad_request", str(exc)) from None


class GroupsHandler(_ApiHandler):
    """``GET /console/api/groups``: :func:`groups_view`. ``POST`` ``{name, group_type?: STATIC|DYNAMIC,
    dynamic_group_rule?, description?, super_group_id?}`` creates a group -> ``201 {"group"}``."""

    async def get(self) -> None:
        self.send_json(await self.blocking(groups_view, self.emulator))

    async def post(self) -> None:
        body = self.body_object()
        name = _require_str(body, "name") or ""
        description = _require_str(body, "description", optional=True)
        parent = _require_str(body, "super_group_id", optional=True)
        group_type = _require_str(body, "group_type", optional=True)
        rule = _require_str(body, "dynamic_group_rule", optional=True)
        group = await self.blocking(_group_call, self.emulator.core.groups.create_group, name, description, parent,
                                    group_type, rule)
        self.send_json({"group": group}, 201)


class GroupHandler(_ApiHandler):
    """``DELETE /console/api/groups/{group_id}``."""

    async def delete(self, group_id: str) -> None:
        await self.blocking(_group_call, self.emulator.core.groups.delete_group, group_id)
        self.send_json({"deleted": group_id})


class GroupDevicesHandler(_ApiHandler):
    """``POST /console/api/groups/{group_id}/devices`` ``{device_id, remove?}``: put a device in a static group
    (or take it out with ``remove: true``)."""

    async def post(self, group_id: str) -> None:
        body = self.body_object()
        device_id = _require_str(body, "device_id") or ""
        remove = body.get("remove", False)
        if not isinstance(remove, bool):
            raise ConsoleError(400, "bad_request", "remove must be true or false")
        await self.device_checked(device_id)
        groups = self.emulator.core.groups
        await self.blocking(_group_call, groups.remove_device if remove else groups.add_device, group_id, device_id)
        self.send_json(await self.blocking(groups_view, self.emulator))


class TagsHandler(_ApiHandler):
    """``GET /console/api/devices/{id}/tags``; ``POST`` ``{tag_key, tag_value?}`` binds a tag (a key already
    bound gets the new value); ``DELETE ...?tag_key=`` unbinds one. Answers ``{"device_id", "tags"}``."""

    async def get(self, device_id: str) -> None:
        await self.device_checked(device_id)
        self.send_json({"device_id": device_id,
                        "tags": await self.blocking(self.emulator.core.groups.tags_of, device_id)})

    async def post(self, device_id: str) -> None:
        body = self.body_object()
        key = _require_str(body, "tag_key") or ""
        value = body.get("tag_value", "")
        if value is not None and not isinstance(value, str):
            raise ConsoleError(400, "bad_request", "tag_value must be a string")
        await self.device_checked(device_id)
        groups = self.emulator.core.groups
        await self.blocking(_group_call, groups.tag, device_id, [{"tag_key": key, "tag_value": value}])
        self.send_json({"device_id": device_id, "tags": await self.blocking(groups.tags_of, device_id)})

    async def delete(self, device_id: str) -> None:
        key = self.get_query_argument("tag_key", "")
        if not key:
            raise ConsoleError(400, "bad_request", "tag_key is required")
        await self.device_checked(device_id)
        groups = self.emulator.core.groups
        await self.blocking(groups.untag, device_id, [key])
        self.send_json({"device_id": device_id, "tags": await self.blocking(groups.tags_of, device_id)})


_ID = r"([A-Za-z0-9_\-]{1,64})"


def platform_routes(kw: Dict[str, Any], dev: str) -> List[tuple]:
    """Routes of this module (``kw``: the handlers' init arguments; ``dev``: the device path pattern)."""
    return [
        (r"/console/api/config-tasks/?", ConfigTasksHandler, kw),
        (r"/console/api/config-tasks/" + _ID + r"/?", ConfigTaskHandler, kw),
        (r"/console/api/broadcasts/?", BroadcastsHandler, kw),
        (r"/console/api/tunnels/?", TunnelsHandler, kw),
        (r"/console/api/tunnels/" + _ID + r"/close/?", TunnelCloseHandler, kw),
        (r"/console/api/tunnels/" + _ID + r"/?", TunnelHandler, kw),
        (dev + r"/async-commands/?", AsyncCommandsHandler, kw),
        (dev + r"/tags/?", TagsHandler, kw),
        (r"/console/api/groups/?", GroupsHandler, kw),
        (r"/console/api/groups/" + _ID + r"/?", GroupHandler, kw),
        (r"/console/api/groups/" + _ID + r"/devices/?", GroupDevicesHandler, kw),
    ]


__all__ = ["platform_routes", "connect_hint", "groups_view"]
