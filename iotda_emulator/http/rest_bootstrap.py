"""IoTDP (device provisioning) application API of the emulator: registration groups and static strategies.

Paths and JSON follow IoTDP's v5 application API where its documentation shows them
(``/v5/iotps/{project_id}/registration-groups``; field names ``registration_group_id``,
``registration_group_name``, ``auth_type``, ``init_config``, ``strategy_id``, ``strategy_type``,
``base_strategy_info.keyword``/``priority``; error codes ``IoTDP.104801``/``IoTDP.104802``):

* ``POST /v5/iotps/{project_id}/registration-groups`` — body ``registration_group_name`` (M),
  ``auth_type`` ``SECRET`` (default) or ``CERTIFICATES``, ``secret`` (base64 group secret; generated when
  absent and returned once, as IoTDP does), ``init_config`` (a JSON string sent as ``initConfig``).
  Emulator extensions: ``registration_group_id`` (choose the scope id; generated otherwise),
  ``product_id`` (product of the devices it provisions), ``require_policy`` (refuse with ``100414``
  unless a strategy matches). A ``CERTIFICATES`` group trusts the emulator's device CA
  (``emu.device_ca_file``); ``certificate_id`` is accepted and ignored. 201 with the group.
* ``GET .../registration-groups`` — ``{"registration_groups": [...], "page": {"count", "marker"}}``
  (``limit`` 1..50, default 10, ``offset``); secrets are not listed.
* ``GET/PUT/DELETE .../registration-groups/{registration_group_id}`` — show (with the secret), update
  (``registration_group_name``, ``init_config``), delete (204; provisioned devices stay in IoTDA).
* ``GET .../registration-groups/{registration_group_id}/devices`` — devices provisioned through the group.
* ``POST .../strategies`` — ``{"strategy_type": "base", "strategy_name", "base_strategy_info":
  {"keyword", "priority" 0..4 (4 highest), "keyword_source": "device_name"|"payload"}, "init_config",
  "product_id"}``; only static (``base``) strategies are emulated. ``GET .../strategies`` (list, filter
  ``strategy_type``), ``GET/DELETE .../strategies/{strategy_id}``.

Chosen where IoTDP's documentation was not available to us: the ``/strategies`` path (IoTDP names the
resource "strategy" and its id ``strategy_id``), ``keyword_source`` and its values, 404 with
``IoTDP.000404`` for an unknown strategy, 400 ``IoTDP.000006`` for invalid input. The same optional
SDK-HMAC-SHA256 check as the IoTDA API applies.
"""
from __future__ import annotations

import json
import re
from typing import Any, List, Optional

from iotda_emulator.http.rest import ApiError, BaseApiHandler, _event_time, api

PREFIX = r"/v5/iotps/(?P<project_id>[^/]+)"
_SCOPE_RE = re.compile(r"^[A-Za-z0-9\-]{1,64}$")
_PRODUCT_RE = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")


def _bad(message: str) -> ApiError:
    return ApiError(400, "IoTDP.000006", f"Invalid input. {message}")


def group_exists(scope_id: str) -> ApiError:
    return ApiError(400, "IoTDP.104801", f"register_group is exist. registration_group_id={scope_id}")


def group_not_found(scope_id: str) -> ApiError:
    return ApiError(400, "IoTDP.104802", f"register_group not exist. registration_group_id={scope_id}")


def strategy_not_found(strategy_id: str) -> ApiError:
    return ApiError(404, "IoTDP.000404", f"The strategy does not exist. strategy_id={strategy_id}")


def _text(body: dict, key: str, *, required: bool = False, max_len: int = 256,
          pattern: Optional[re.Pattern] = None) -> Optional[str]:
    value = body.get(key)
    if value is None:
        if required:
            raise _bad(f"'{key}' is mandatory.")
        return None
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise _bad(f"'{key}' must be a string of 1..{max_len} characters.")
    if pattern is not None and not pattern.match(value):
        raise _bad(f"'{key}' has invalid characters.")
    return value


def _init_config(body: dict) -> Optional[str]:
    """``init_config``: a JSON string (IoTDP: 'must be a json string'); an object is accepted and encoded."""
    value = body.get("init_config")
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if not isinstance(value, str) or len(value) > 65535:
        raise _bad("'init_config' must be a JSON string.")
    try:
        json.loads(value)
    except ValueError:
        raise _bad("'init_config' must be a JSON string.") from None
    return value


def _page(items: List[Any], handler: BaseApiHandler, key) -> tuple:
    limit = handler.int_arg("limit", 10, 1, 50)
    offset = handler.int_arg("offset", 0, 0, 500)
    page = items[offset:offset + limit]
    return page, {"count": len(items), "marker": key(page[-1]) if page else None}


def group_view(group: dict, *, secret: bool) -> dict:
    """A registration group in IoTDP's JSON shape (``secret`` only when asked for)."""
    view = {
        "registration_group_id": group["scope_id"],
        "registration_group_name": group["name"],
        "auth_type": group["auth_type"],
        "allocation_strategy_type": "base",
        "init_config": group["init_config"],
        "product_id": group["product_id"],
        "create_time": _event_time(group["created"]),
    }
    if secret and group.get("secret"):
        view["secret"] = group["secret"]
    return view


def strategy_view(policy: Any) -> dict:
    """A static strategy in IoTDP's JSON shape."""
    return {
        "strategy_id": policy.policy_id,
        "strategy_type": "base",
        "strategy_name": policy.name or policy.policy_id,
        "base_strategy_info": {"keyword": policy.keyword, "priority": policy.priority,
                               "keyword_source": policy.keyword_source},
        "init_config": policy.init_config if policy.init_config is None or isinstance(policy.init_config, str)
        else json.dumps(policy.init_config, separators=(",", ":"), ensure_ascii=False),
        "product_id": policy.product_id,
        "create_time": _event_time(policy.created),
    }


class BootstrapHandler(BaseApiHandler):
    """Base of the IoTDP handlers: the ``$bootstrap`` service, or 503 when it is not running."""

    def bootstrap(self) -> Any:
        try:
            return self.emulator.service("$bootstrap")
        except (KeyError, AttributeError):
            raise ApiError(503, "IoTDP.000503", "The provisioning service is not running.") from None


class GroupsHandler(BootstrapHandler):
    """``POST``/``GET /v5/iotps/{project_id}/registration-groups``."""

    @api
    async def post(self, project_id: str) -> None:
        body = self.json_body()
        name = _text(body, "registration_group_name", required=True)
        auth_type = body.get("auth_type", "SECRET")
        if auth_type not in ("SECRET", "CERTIFICATES"):
            raise _bad("'auth_type' must be SECRET or CERTIFICATES.")
        scope_id = _text(body, "registration_group_id", max_len=64, pattern=_SCOPE_RE)
        secret = _text(body, "secret", max_len=1024)
        if secret is not None and auth_type != "SECRET":
            raise _bad("'secret' is for SECRET groups only.")
        product_id = _text(body, "product_id", max_len=128, pattern=_PRODUCT_RE) or "emu_product"
        require_policy = body.get("require_policy", False)
        if not isinstance(require_policy, bool):
            raise _bad("'require_policy' must be a boolean.")
        init_config = _init_config(body)
        bs = self.bootstrap()
        if scope_id and bs.get_group(scope_id) is not None:
            raise group_exists(scope_id)
        try:
            created = await self.call(bs.add_registration_group, scope_id, secret=secret,
                                      certificate=auth_type == "CERTIFICATES", product_id=product_id,
                                      require_policy=require_policy, name=name, init_config=init_config)
        except ValueError as exc:
            if "already exists" in str(exc):
                raise group_exists(scope_id or "") from None
            raise _bad(str(exc)) from None
        self.reply(group_view(bs.get_group(created["scope_id"]), secret=True), 201)

    @api
    async def get(self, project_id: str) -> None:
        groups = self.bootstrap().list_groups()
        page, info = _page(groups, self, lambda g: g["scope_id"])
        self.reply({"registration_groups": [group_view(g, secret=False) for g in page], "page": info})


class GroupHandler(BootstrapHandler):
    """``GET``/``PUT``/``DELETE /v5/iotps/{project_id}/registration-groups/{registration_group_id}``."""

    def _group(self, group_id: str) -> dict:
        group = self.bootstrap().get_group(group_id)
        if group is None:
            raise group_not_found(group_id)
        return group

    @api
    async def get(self, project_id: str, group_id: str) -> None:
        self.reply(group_view(self._group(group_id), secret=True))

    @api
    async def put(self, project_id: str, group_id: str) -> None:
        body = self.json_body()
        self._group(group_id)
        name = _text(body, "registration_group_name")
        init_config = _init_config(body)
        try:
            group = self.bootstrap().update_group(group_id, name=name, init_config=init_config)
        except KeyError:
            raise group_not_found(group_id) from None
        self.reply(group_view(group, secret=False))

    @api
    async def delete(self, project_id: str, group_id: str) -> None:
        if not self.bootstrap().remove_registration_group(group_id):
            raise group_not_found(group_id)
        self.reply(None, 204)


class GroupDevicesHandler(GroupHandler):
    """``GET /v5/iotps/{project_id}/registration-groups/{registration_group_id}/devices``."""

    @api
    async def get(self, project_id: str, group_id: str) -> None:
        group = self._group(group_id)
        records = [await self.call(self.emulator.get_device, d) for d in group["devices"]]
        devices = [{"device_id": r["device_id"], "device_name": r.get("name") or r["device_id"],
                    "product_id": r.get("product_id"), "registration_group_id": group_id}
                   for r in records if r]
        page, info = _page(devices, self, lambda d: d["device_id"])
        self.reply({"devices": page, "page": info})


class StrategiesHandler(BootstrapHandler):
    """``POST``/``GET /v5/iotps/{project_id}/strategies`` (static strategies only)."""

    @api
    async def post(self, project_id: str) -> None:
        body = self.json_body()
        if body.get("strategy_type", "base") != "base":
            raise _bad("only static strategies (strategy_type 'base') are emulated.")
        info = body.get("base_strategy_info")
        if not isinstance(info, dict):
            raise _bad("'base_strategy_info' is mandatory for a base strategy.")
        keyword = _text(info, "keyword", required=True)
        priority = info.get("priority", 0)
        if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 4:
            raise _bad("'priority' must be an integer 0..4.")
        source = info.get("keyword_source", "device_name")
        if source not in ("device_name", "payload"):
            raise _bad("'keyword_source' must be device_name or payload.")
        name = _text(body, "strategy_name")
        product_id = _text(body, "product_id", max_len=128, pattern=_PRODUCT_RE)
        init_config = _init_config(body)
        bs = self.bootstrap()
        try:
            policy_id = bs.add_policy(keyword, keyword_source=source, priority=priority, init_config=init_config,
                                      product_id=product_id, name=name)
        except ValueError as exc:
            raise _bad(str(exc)) from None
        self.reply(strategy_view(bs.get_policy(policy_id)), 201)

    @api
    async def get(self, project_id: str) -> None:
        wanted = self.get_query_argument("strategy_type", None)
        if wanted not in (None, "", "base"):
            self.reply({"strategies": [], "page": {"count": 0, "marker": None}})
            return
        policies = self.bootstrap().list_policies()
        page, info = _page(policies, self, lambda p: p.policy_id)
        self.reply({"strategies": [strategy_view(p) for p in page], "page": info})


class StrategyHandler(BootstrapHandler):
    """``GET``/``DELETE /v5/iotps/{project_id}/strategies/{strategy_id}``."""

    @api
    async def get(self, project_id: str, strategy_id: str) -> None:
        policy = self.bootstrap().get_policy(strategy_id)
        if policy is None:
            raise strategy_not_found(strategy_id)
        self.reply(strategy_view(policy))

    @api
    async def delete(self, project_id: str, strategy_id: str) -> None:
        if not self.bootstrap().remove_policy(strategy_id):
            raise strategy_not_found(strategy_id)
        self.reply(None, 204)


def routes(server: Any) -> List[tuple]:
    """The IoTDP routes, each handler initialised with the owning server."""
    kw = {"server": server}
    group = PREFIX + r"/registration-groups/(?P<group_id>[^/]+)"
    return [
        (PREFIX + r"/registration-groups/?", GroupsHandler, kw),
        (group + r"/?", GroupHandler, kw),
        (group + r"/devices/?", GroupDevicesHandler, kw),
        (PREFIX + r"/strategies/?", StrategiesHandler, kw),
        (PREFIX + r"/strategies/(?P<strategy_id>[^/]+)/?", StrategyHandler, kw),
    ]
