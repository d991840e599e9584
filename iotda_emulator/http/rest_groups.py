"""IoTDA v5 device groups and tags over REST (the behaviour is in :mod:`iotda_emulator.groups`):

* ``POST/GET /v5/iot/{project_id}/device-group`` (AddDeviceGroup 201, ListDeviceGroups: newest first),
  ``GET/PUT/DELETE .../device-group/{group_id}``, ``POST .../device-group/{group_id}/action?action_id=addDevice|
  removeDevice&device_id=...`` (CreateOrDeleteDeviceInGroup), ``GET .../device-group/{group_id}/devices``
  (ShowDevicesInGroup), ``POST .../devices/{device_id}/list-device-group`` (ListDeviceGroupsByDevice);
* ``POST .../tags/bind-resource`` (TagDevice), ``POST .../tags/unbind-resource`` (UntagDevice),
  ``POST .../tags/query-resources`` (ListResourcesByTags: devices carrying any of the tags).

A refused group or tag operation is a 400 ``IOTDA.000006`` with the reason; an unknown group a 404.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from iotda_emulator import groups as _groups
from iotda_emulator.http.rest import (DEVICE, PREFIX, ApiError, BaseApiHandler, _opt_str, api, bad_request)
from iotda_emulator.http.rest_devices import search_rows

GROUP = PREFIX + r"/device-group/(?P<group_id>[^/]+)"
_GROUP_FIELDS = ("group_id", "name", "description", "super_group_id", "group_type", "dynamic_group_rule")
_SUMMARY_FIELDS = ("group_id", "name", "description", "super_group_id", "group_type")


def group_not_found(group_id: str) -> ApiError:
    return ApiError(404, "IOTDA.000006", f"Invalid input data. The device group does not exist. group_id={group_id}")


class _GroupsBase(BaseApiHandler):
    @property
    def groups(self) -> _groups.DeviceGroups:
        return self.emulator.core.groups

    async def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """A blocking groups call; its refusals become API errors."""
        try:
            return await self.call(fn, *args, **kwargs)
        except _groups.GroupNotFound as exc:
            raise ApiError(404, "IOTDA.000006", f"Invalid input data. {exc}.") from None
        except _groups.GroupError as exc:
            raise bad_request(f"{exc}.") from None

    def paged(self, items: List[dict]) -> tuple:
        """(page, IoTDA ``page`` object) of ``items`` (newest first; see :meth:`marker_page`)."""
        page, marker = self.marker_page(items)
        return page, {"count": len(items), "marker": marker}


class DeviceGroupsHandler(_GroupsBase):
    """``POST`` (AddDeviceGroup) and ``GET`` (ListDeviceGroups) ``.../device-group``."""

    @api
    async def post(self, project_id: str) -> None:
        body = self.json_body()
        name = body.get("name")
        if not isinstance(name, str):
            raise bad_request("'name' is mandatory.")
        group = await self.run(self.groups.create_group, name, _opt_str(body, "description", max_len=64),
                               _opt_str(body, "super_group_id", max_len=36), body.get("group_type"),
                               body.get("dynamic_group_rule"))
        self.reply({k: group.get(k) for k in _GROUP_FIELDS}, 201)

    @api
    async def get(self, project_id: str) -> None:
        items = await self.run(self.groups.list_groups, group_type=self.get_query_argument("group_type", None),
                               name=self.get_query_argument("name", None))
        page, info = self.paged(items)
        self.reply({"device_groups": [{k: g.get(k) for k in _SUMMARY_FIELDS} for g in page], "page": info})


class DeviceGroupHandler(_GroupsBase):
    """``GET`` (ShowDeviceGroup), ``PUT`` (UpdateDeviceGroup), ``DELETE`` (DeleteDeviceGroup)."""

    async def _require(self, group_id: str) -> dict:
        group = await self.call(self.groups.get_group, group_id)
        if group is None:
            raise group_not_found(group_id)
        return group

    @api
    async def get(self, project_id: str, group_id: str) -> None:
        group = await self._require(group_id)
        self.reply({k: group.get(k) for k in _GROUP_FIELDS})

    @api
    async def put(self, project_id: str, group_id: str) -> None:
        body = self.json_body()
        await self._require(group_id)
        name = body.get("name")
        if name is not None and not isinstance(name, str):
            raise bad_request("'name' must be a string.")
        group = await self.run(self.groups.update_group, group_id, name, _opt_str(body, "description", max_len=64))
        self.reply({k: group.get(k) for k in _GROUP_FIELDS})

    @api
    async def delete(self, project_id: str, group_id: str) -> None:
        await self._require(group_id)
        await self.run(self.groups.delete_group, group_id)
        self.reply(None, 204)


class DeviceGroupActionHandler(_GroupsBase):
    """``POST .../device-group/{group_id}/action`` (CreateOrDeleteDeviceInGroup)."""

    @api
    async def post(self, project_id: str, group_id: str) -> None:
        action = self.get_query_argument("action_id", None)
        device_id = self.get_query_argument("device_id", None)
        if action not in ("addDevice", "removeDevice") or not device_id:
            raise bad_request("'action_id' is addDevice or removeDevice and 'device_id' is mandatory.")
        await self.require_device(device_id)
        fn = self.groups.add_device if action == "addDevice" else self.groups.remove_device
        await self.run(fn, group_id, device_id)
        self.reply(None, 200)


class DevicesInGroupHandler(_GroupsBase):
    """``GET .../device-group/{group_id}/devices`` (ShowDevicesInGroup)."""

    @api
    async def get(self, project_id: str, group_id: str) -> None:
        rows = await self.call(search_rows, self.emulator)
        ids = await self.run(self.groups.members, group_id, lambda: rows)
        by_id = {r["device_id"]: r for r in rows}
        items = [by_id[i] for i in reversed(ids)]   # newest first; each row carries its marker
        page, info = self.paged(items)
        self.reply({"devices": [{k: d.get(k) for k in ("device_id", "node_id", "device_name", "product_id")}
                                for d in page], "page": info})


class GroupsOfDeviceHandler(_GroupsBase):
    """``POST .../devices/{device_id}/list-device-group`` (ListDeviceGroupsByDevice): static and dynamic."""

    @api
    async def post(self, project_id: str, device_id: str) -> None:
        await self.require_device(device_id)

        def groups_of() -> List[dict]:
            static = set(self.groups.static_groups_of(device_id))
            rows = search_rows(self.emulator)
            dynamic = {g["group_id"] for g in self.groups.dynamic_groups()
                       if device_id in self.groups.members(g["group_id"], lambda: rows)}
            return [g for g in self.groups.list_groups() if g["group_id"] in static | dynamic]

        found = await self.run(groups_of)
        self.reply({"device_groups": [{k: g.get(k) for k in _SUMMARY_FIELDS} for g in found]})


def _resource(body: dict) -> str:
    if body.get("resource_type") != "device":
        raise bad_request("'resource_type' must be device.")
    resource_id = body.get("resource_id")
    if not isinstance(resource_id, str) or not resource_id:
        raise bad_request("'resource_id' is mandatory.")
    return resource_id


def _tag_list(body: dict, key: str = "tags") -> List[Dict[str, Optional[str]]]:
    tags = body.get(key)
    if not isinstance(tags, list) or not tags or not all(
            isinstance(t, dict) and isinstance(t.get("tag_key"), str)
            and (t.get("tag_value") is None or isinstance(t.get("tag_value"), str)) for t in tags):
        raise bad_request(f"'{key}' is a non-empty list of {{tag_key, tag_value}} strings.")
    return tags


class TagBindHandler(_GroupsBase):
    """``POST .../tags/bind-resource`` (TagDevice)."""

    @api
    async def post(self, project_id: str) -> None:
        body = self.json_body()
        device_id = _resource(body)
        tags = _tag_list(body)
        await self.require_device(device_id)
        await self.run(self.groups.tag, device_id, tags)
        self.reply(None, 200)


class TagUnbindHandler(_GroupsBase):
    """``POST .../tags/unbind-resource`` (UntagDevice)."""

    @api
    async def post(self, project_id: str) -> None:
        body = self.json_body()
        device_id = _resource(body)
        keys = body.get("tag_keys")
        if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
            raise bad_request("'tag_keys' is a non-empty list of strings.")
        await self.require_device(device_id)
        await self.run(self.groups.untag, device_id, keys)
        self.reply(None, 200)


class TagQueryHandler(_GroupsBase):
    """``POST .../tags/query-resources`` (ListResourcesByTags)."""

    @api
    async def post(self, project_id: str) -> None:
        body = self.json_body()
        if body.get("resource_type") != "device":
            raise bad_request("'resource_type' must be device.")
        ids = await self.run(self.groups.devices_tagged, _tag_list(body))
        items = [{"resource_id": i, "marker": i} for i in reversed(ids)]
        page, info = self.paged(items)
        self.reply({"resources": [{"resource_id": r["resource_id"]} for r in page], "page": info})


def routes(server: Any) -> List[tuple]:
    """The group and tag routes, each handler initialised with the owning HTTP server."""
    kw = {"server": server}
    return [
        (PREFIX + r"/device-group/?", DeviceGroupsHandler, kw),
        (GROUP + r"/?", DeviceGroupHandler, kw),
        (GROUP + r"/action/?", DeviceGroupActionHandler, kw),
        (GROUP + r"/devices/?", DevicesInGroupHandler, kw),
        (DEVICE + r"/list-device-group/?", GroupsOfDeviceHandler, kw),
        (PREFIX + r"/tags/bind-resource/?", TagBindHandler, kw),
        (PREFIX + r"/tags/unbind-resource/?", TagUnbindHandler, kw),
        (PREFIX + r"/tags/query-resources/?", TagQueryHandler, kw),
    ]
