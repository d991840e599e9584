"""IoTDA v5 device operations beyond create/show/update/delete (those are in :mod:`.rest`):

* ``POST /v5/iot/{project_id}/devices/{device_id}/change-gateway`` (ChangeGateway): moves a device under
  another gateway. Both gateways are told through their sub-device notifications (delete on the old one, add
  on the new one), as for a child added or deleted over REST. Refused (400) when the new gateway does not
  exist, is the device itself, or is one of the device's own children (IoTDA allows two levels; a cycle is
  never valid).
* ``POST /v5/iot/{project_id}/search/query-devices`` (SearchDevices): the SQL-like search of
  :mod:`iotda_emulator.device_search`; a statement it cannot parse is a 400 ``IOTDA.000006`` with the reason.
"""
from __future__ import annotations

from typing import Any, Dict, List

from iotda_emulator import device_search, errors
from iotda_emulator.http.rest import (DEVICE, PREFIX, BaseApiHandler, _device_view, _event_time, _NAME_RE,
                                      _opt_str, _tell_gateway, api, bad_request, reported_versions)


class ChangeGatewayHandler(BaseApiHandler):
    """``POST .../devices/{device_id}/change-gateway`` (ChangeGateway)."""

    @api
    async def post(self, project_id: str, device_id: str) -> None:
        body = self.json_body()
        new_gateway = _opt_str(body, "gateway_id", max_len=128, pattern=_NAME_RE)
        if not new_gateway:
            raise bad_request("'gateway_id' is mandatory.")
        record = await self.require_device(device_id)
        if new_gateway == device_id:
            raise bad_request("A device cannot be its own gateway.")
        gateway = await self.call(self.emulator.get_device, new_gateway)
        if gateway is None:
            raise bad_request(f"The gateway {new_gateway} does not exist.")
        if gateway.get("gateway_id") == device_id:
            raise bad_request(f"The gateway {new_gateway} is a child of {device_id}.")
        old_gateway = record.get("gateway_id")
        if old_gateway == new_gateway:
            self.reply({})
            return
        try:
            await self.call(self.emulator.update_device, device_id, gateway_id=new_gateway)
        except errors.DeviceNotFound:
            raise bad_request(f"The device {device_id} was deleted meanwhile.") from None
        if old_gateway:
            await self.call(_tell_gateway, self.emulator, old_gateway)
        await self.call(_tell_gateway, self.emulator, new_gateway)
        self.reply({})


def search_rows(emulator: Any) -> List[Dict[str, Any]]:
    """Every device as the flat dict SearchDevices matches on, in creation order, with its marker, tags and
    (static) groups. Blocking: call it off the IOLoop."""
    groups = emulator.core.groups
    rows = []
    for seq, record in enumerate(emulator.list_devices()):
        device_id = record["device_id"]
        view = _device_view(record, emulator.is_online(device_id), full=False,
                            versions=reported_versions(emulator, device_id))
        view["create_time"] = _event_time(record.get("created"))
        view["marker"] = f"{int((record.get('created') or 0) * 1000):016x}{seq:08x}"
        view["tags"] = groups.tags_of(device_id)
        view["groups"] = groups.static_groups_of(device_id)
        view["modules"] = []
        rows.append(view)
    return rows


class SearchDevicesHandler(BaseApiHandler):
    """``POST .../search/query-devices`` (SearchDevices)."""

    @api
    async def post(self, project_id: str) -> None:
        body = self.json_body()
        try:
            query = device_search.parse(body.get("sql"))
        except device_search.SearchSyntaxError as exc:
            raise bad_request(f"'sql' is not a valid search statement: {exc}.") from None
        # on the worker pool: the rows read the registry, tags and groups
        page, count = await self.call(lambda: device_search.run(query, search_rows(self.emulator)))
        self.reply({"devices": page, "count": count})


def routes(server: Any) -> List[tuple]:
    """The routes of this module, each handler initialised with the owning HTTP server."""
    kw = {"server": server}
    return [
        (DEVICE + r"/change-gateway/?", ChangeGatewayHandler, kw),
        (PREFIX + r"/search/query-devices/?", SearchDevicesHandler, kw),
    ]
