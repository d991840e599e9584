"""IoTDA v5 asynchronous commands over REST (the behaviour is in :mod:`iotda_emulator.services.async_commands`):

* ``POST .../devices/{device_id}/async-commands`` (CreateAsyncCommand, 201);
* ``GET .../devices/{device_id}/async-commands/{command_id}`` (ShowAsyncDeviceCommand);
* ``GET .../devices/{device_id}/async-commands`` (ListAsyncCommands: PENDING and SENT) and
  ``GET .../devices/{device_id}/async-commands-history`` (ListAsyncHistoryCommands: finished), newest first,
  paged by ``marker`` (only records older than it), ``offset`` and ``limit``, filtered by ``start_time``,
  ``end_time`` (creation time, ``yyyyMMdd'T'HHmmss'Z'``), ``status`` and ``command_name``;
* ``POST .../devices/{device_id}/async-commands-history/count`` (CountAsyncHistoryCommands), same filters.
"""
from __future__ import annotations

from typing import Any, Dict, List

from iotda_emulator import errors
from iotda_emulator.http.rest import (DEVICE, ApiError, BaseApiHandler, _emulator_error, _time_arg, api,
                                      stamp_seconds)
from iotda_emulator.services import async_commands as ac

_CREATE_FIELDS = ("device_id", "command_id", "service_id", "command_name", "paras", "expire_time", "status",
                  "created_time", "send_strategy")


def _command_not_found(command_id: str) -> ApiError:
    return ApiError(404, "IOTDA.000006", f"Invalid input data. The command does not exist. command_id={command_id}")


class _AsyncBase(BaseApiHandler):
    @property
    def commands(self) -> Any:
        return self.emulator.service("$async_commands")

    def filtered(self, records: List[dict]) -> List[dict]:
        """``records`` (newest first) kept by the time, status and command name query arguments."""
        start, end = _time_arg(self, "start_time"), _time_arg(self, "end_time")
        status = self.get_query_argument("status", None)
        name = self.get_query_argument("command_name", None)

        def keep(rec: dict) -> bool:
            created = stamp_seconds(rec["created_time"])
            return ((start is None or created >= start) and (end is None or created <= end)
                    and (not status or rec.get("status") == status)
                    and (not name or rec.get("command_name") == name))

        return [r for r in records if keep(r)]


class AsyncCommandsHandler(_AsyncBase):
    """``POST`` (CreateAsyncCommand) and ``GET`` (ListAsyncCommands) ``.../devices/{device_id}/async-commands``."""

    @api
    async def post(self, project_id: str, device_id: str) -> None:
        body = self.json_body()
        service_id, command_name, paras = self.command_body(body)
        send_strategy = body.get("send_strategy")
        expire_time = body.get("expire_time")
        await self.require_device(device_id)
        try:
            rec = await self.call(self.commands.create, device_id, service_id, command_name, paras, expire_time,
                                  send_strategy)
        except ac.TooManyPending as exc:
            raise ApiError(400, "IOTDA.000006", f"Invalid input data. {exc}.") from None
        except (errors.DeviceNotFound, ValueError, TypeError) as exc:
            raise _emulator_error(exc, device_id) from None
        self.reply({k: rec.get(k) for k in _CREATE_FIELDS}, 201)

    @api
    async def get(self, project_id: str, device_id: str) -> None:
        await self.require_device(device_id)
        records = self.filtered(await self.call(self.commands.queue, device_id))
        page, marker = self.marker_page(records)
        self.reply({"commands": page, "page": {"count": len(records), "marker": marker}})


class AsyncCommandHandler(_AsyncBase):
    """``GET .../devices/{device_id}/async-commands/{command_id}`` (ShowAsyncDeviceCommand)."""

    @api
    async def get(self, project_id: str, device_id: str, command_id: str) -> None:
        await self.require_device(device_id)
        rec = await self.call(self.commands.get, command_id, device_id)
        if rec is None:
            raise _command_not_found(command_id)
        self.reply(rec)


class AsyncHistoryHandler(_AsyncBase):
    """``GET .../devices/{device_id}/async-commands-history`` (ListAsyncHistoryCommands)."""

    @api
    async def get(self, project_id: str, device_id: str) -> None:
        await self.require_device(device_id)
        records = self.filtered(await self.call(self.commands.history, device_id))
        page, marker = self.marker_page(records)
        self.reply({"commands": page, "page": {"marker": marker}})


class AsyncHistoryCountHandler(_AsyncBase):
    """``POST .../devices/{device_id}/async-commands-history/count`` (CountAsyncHistoryCommands)."""

    @api
    async def post(self, project_id: str, device_id: str) -> None:
        await self.require_device(device_id)
        records = self.filtered(await self.call(self.commands.history, device_id))
        self.reply({"count": len(records)})


def routes(server: Any) -> List[tuple]:
    """The asynchronous-command routes, each handler initialised with the owning HTTP server."""
    kw: Dict[str, Any] = {"server": server}
    return [
        (DEVICE + r"/async-commands/?", AsyncCommandsHandler, kw),
        (DEVICE + r"/async-commands/(?P<command_id>[^/]+)/?", AsyncCommandHandler, kw),
        (DEVICE + r"/async-commands-history/?", AsyncHistoryHandler, kw),
        (DEVICE + r"/async-commands-history/count/?", AsyncHistoryCountHandler, kw),
    ]
