"""IoTDA v5 device (topic) policies over REST; the behaviour is in :mod:`iotda_emulator.device_policies`.

* ``POST/GET /v5/iot/{project_id}/device-policies`` (CreateDevicePolicy 201, ListDevicePolicies: newest first,
  ``app_id``/``policy_name`` exact filters, ``limit`` 1-50, ``offset`` 0-500, ``marker``);
* ``GET/PUT/DELETE .../device-policies/{policy_id}`` (ShowDevicePolicy, UpdateDevicePolicy, DeleteDevicePolicy 204);
* ``POST .../device-policies/{policy_id}/bind`` and ``.../unbind`` (BindDevicePolicy, UnbindDevicePolicy: 200 with
  ``success_targets`` and ``failure_targets``), ``POST .../device-policies/{policy_id}/list-targets``
  (ShowTargetsInDevicePolicy, paged by the body's ``limit``/``offset``/``marker``).

``target_type``: ``device``, ``product``, ``app`` (the emulator's one resource space, ``emulator_app``) and, as an
emulator extension, ``group`` (a static device group). A target that does not exist is a failure entry, not an
error. A refused policy is a 400 ``IOTDA.000006`` with the reason; an unknown policy a 404.
"""
from __future__ import annotations

import re
from typing import Any, List, Optional

from iotda_emulator import device_policies as dp
from iotda_emulator import groups as _groups
from iotda_emulator.http.rest import PREFIX, ApiError, BaseApiHandler, _event_time, _opt_str, api, bad_request

POLICY = PREFIX + r"/device-policies/(?P<policy_id>[^/]+)"
_APP_ID_RE = re.compile(r"[A-Za-z0-9_\-]{1,36}")
_MARKER_RE = re.compile(r"[0-9a-fA-F]{24}")


def policy_not_found(policy_id: str) -> ApiError:
    return ApiError(404, "IOTDA.000006", f"Invalid input data. The device policy does not exist. policy_id={policy_id}")


def policy_view(policy: dict, *, statement: bool = True) -> dict:
    """A policy as IoTDA shows it (ListDevicePolicies leaves the statements out)."""
    view = {"app_id": policy.get("app_id") or dp.APP_ID, "policy_id": policy["policy_id"],
            "policy_name": policy["policy_name"]}
    if statement:
        view["statement"] = policy["statement"]
    view.update(create_time=_event_time(policy["created"]), update_time=_event_time(policy["updated"]))
    return view


def _page(items: List[dict], limit: int, offset: int, marker: Optional[str]) -> tuple:
    """(page, IoTDA page info) of items newest first: those older than ``marker``, from ``offset``."""
    if marker:
        if not _MARKER_RE.fullmatch(marker):
            raise bad_request("'marker' is a 24-digit hexadecimal string.")
        items = [i for i in items if i["marker"] < marker.lower()]
    page = items[offset:offset + limit]
    return page, {"count": len(items), "marker": page[-1]["marker"] if page else None}


class _PoliciesBase(BaseApiHandler):
    @property
    def policies(self) -> dp.DevicePolicies:
        return self.emulator.core.policies

    async def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """A blocking policy call; its refusals become API errors."""
        try:
            return await self.call(fn, *args, **kwargs)
        except dp.PolicyNotFound as exc:
            raise ApiError(404, "IOTDA.000006", f"Invalid input data. {exc}.") from None
        except dp.PolicyError as exc:
            raise bad_request(f"{exc}.") from None

    async def require_policy(self, policy_id: str) -> dict:
        policy = await self.call(self.policies.get_policy, policy_id)
        if policy is None:
            raise policy_not_found(policy_id)
        return policy

    def targets_body(self) -> tuple:
        """``(target_type, target_ids)`` of a bind/unbind body; 400 when malformed."""
        body = self.json_body()
        target_type, target_ids = body.get("target_type"), body.get("target_ids")
        if target_type not in dp.TARGET_TYPES:
            raise bad_request("'target_type' is device, product, app or group.")
        if (not isinstance(target_ids, list) or not target_ids
                or not all(isinstance(t, str) and t for t in target_ids)):
            raise bad_request("'target_ids' is a non-empty list of ids.")
        return target_type, target_ids

    def bind_reply(self, policy_id: str, target_type: str, result: tuple) -> None:
        ok, failed = result
        self.reply({"policy_id": policy_id, "target_type": target_type, "success_targets": ok,
                    "failure_targets": failed})


class DevicePoliciesHandler(_PoliciesBase):
    """``POST`` (CreateDevicePolicy) and ``GET`` (ListDevicePolicies) ``.../device-policies``."""

    @api
    async def post(self, project_id: str) -> None:
        body = self.json_body()
        name = body.get("policy_name")
        if not isinstance(name, str):
            raise bad_request("'policy_name' is mandatory.")
        if "statement" not in body:
            raise bad_request("'statement' is mandatory.")
        app_id = _opt_str(body, "app_id", max_len=36, pattern=_APP_ID_RE)
        policy = await self.run(self.policies.create_policy, name, body.get("statement"), app_id)
        self.reply(policy_view(policy), 201)

    @api
    async def get(self, project_id: str) -> None:
        limit = self.int_arg("limit", 10, 1, 50)
        offset = self.int_arg("offset", 0, 0, 500)
        app_id = self.get_query_argument("app_id", None)
        items = await self.run(self.policies.list_policies, self.get_query_argument("policy_name", None) or None)
        if app_id:
            items = [p for p in items if (p.get("app_id") or dp.APP_ID) == app_id]
        page, info = _page(items, limit, offset, self.get_query_argument("marker", None))
        self.reply({"policies": [policy_view(p, statement=False) for p in page], "page": info})


class DevicePolicyHandler(_PoliciesBase):
    """``GET`` (ShowDevicePolicy), ``PUT`` (UpdateDevicePolicy), ``DELETE`` (DeleteDevicePolicy)."""

    @api
    async def get(self, project_id: str, policy_id: str) -> None:
        self.reply(policy_view(await self.require_policy(policy_id)))

    @api
    async def put(self, project_id: str, policy_id: str) -> None:
        body = self.json_body()
        await self.require_policy(policy_id)
        name = body.get("policy_name")
        if name is not None and not isinstance(name, str):
            raise bad_request("'policy_name' must be a string.")
        policy = await self.run(self.policies.update_policy, policy_id, name, body.get("statement"))
        self.reply(policy_view(policy))

    @api
    async def delete(self, project_id: str, policy_id: str) -> None:
        await self.require_policy(policy_id)
        await self.run(self.policies.delete_policy, policy_id)
        self.reply(None, 204)


class BindHandler(_PoliciesBase):
    """``POST .../device-policies/{policy_id}/bind`` (BindDevicePolicy)."""

    @api
    async def post(self, project_id: str, policy_id: str) -> None:
        target_type, target_ids = self.targets_body()
        policy = await self.require_policy(policy_id)
        core = self.emulator.core

        def target_error(target_id: str) -> Optional[str]:
            if target_type == dp.DEVICE:
                return None if core.get_device(target_id) else "the device does not exist"
            if target_type == dp.PRODUCT:
                return None if core.products.get_product(target_id) else "the product does not exist"
            if target_type == dp.APP:
                apps = {dp.APP_ID, policy.get("app_id") or dp.APP_ID}
                return None if target_id in apps else f"the resource space does not exist (the emulator's: {dp.APP_ID})"
            group = core.groups.get_group(target_id)
            if group is None:
                return "the device group does not exist"
            if group["group_type"] != _groups.STATIC:
                return "only a static device group can be bound"
            return None

        result = await self.run(self.policies.bind, policy_id, target_type, target_ids, target_error)
        self.bind_reply(policy_id, target_type, result)


class UnbindHandler(_PoliciesBase):
    """``POST .../device-policies/{policy_id}/unbind`` (UnbindDevicePolicy)."""

    @api
    async def post(self, project_id: str, policy_id: str) -> None:
        target_type, target_ids = self.targets_body()
        await self.require_policy(policy_id)
        result = await self.run(self.policies.unbind, policy_id, target_type, target_ids)
        self.bind_reply(policy_id, target_type, result)


class TargetsHandler(_PoliciesBase):
    """``POST .../device-policies/{policy_id}/list-targets`` (ShowTargetsInDevicePolicy)."""

    @api
    async def post(self, project_id: str, policy_id: str) -> None:
        body = self.json_body() if (self.request.body or b"").strip() else {}
        target_type = body.get("target_type")
        if target_type is not None and target_type not in dp.TARGET_TYPES:
            raise bad_request("'target_type' is device, product, app or group.")
        limit, offset = _body_int(body, "limit", 10, 1, 50), _body_int(body, "offset", 0, 0, 500)
        marker = body.get("marker")
        if marker is not None and not isinstance(marker, str):
            raise bad_request("'marker' is a 24-digit hexadecimal string.")
        await self.require_policy(policy_id)
        items = await self.run(self.policies.targets, policy_id, target_type)
        page, info = _page(items, limit, offset, marker)
        self.reply({"targets": [{"target_type": t["target_type"], "target_id": t["target_id"]} for t in page],
                    "page": info})


def _body_int(body: dict, key: str, default: int, low: int, high: int) -> int:
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise bad_request(f"'{key}' is an integer from {low} to {high}.")
    return value


def routes(server: Any) -> List[tuple]:
    """The device-policy routes, each handler initialised with the owning HTTP server."""
    kw = {"server": server}
    return [
        (PREFIX + r"/device-policies/?", DevicePoliciesHandler, kw),
        (POLICY + r"/?", DevicePolicyHandler, kw),
        (POLICY + r"/bind/?", BindHandler, kw),
        (POLICY + r"/unbind/?", UnbindHandler, kw),
        (POLICY + r"/list-targets/?", TargetsHandler, kw),
    ]
