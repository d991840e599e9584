"""Remote-configuration tasks (``$device_config``, doc/protocol.md §3.7) — an **emulator-only** REST API.

IoTDA creates remote-configuration tasks in its console only; its application API has no operation for
them (the official ``huaweicloudsdkiotda`` has none), so these paths are the emulator's own, under the same
``/v5/iot/{project_id}`` prefix and with IoTDA's error body:

* ``POST /v5/iot/{project_id}/device-config-tasks`` ``{"config_content": {...} M, "targets": [device ids] M,
  "timeout": days 1-30 (default 30), "task_name": str}`` — 201 with the task view; online targets get
  ``config_update`` at once, offline ones when they connect;
* ``GET /v5/iot/{project_id}/device-config-tasks`` — ``{"count", "tasks": [views without details]}``;
* ``GET /v5/iot/{project_id}/device-config-tasks/{task_id}`` — the view: ``task_id``, ``task_name``,
  ``status`` (Processing, Success, Fail, PartialSuccess), ``config_content``, ``timeout``, ``created_time``,
  ``expire_time``, ``total``/``success``/``fail``/``processing`` and ``task_details`` per device
  (``status`` WAITING, PROCESSING, SUCCESS, FAILED or TIMEOUT, ``result_code``, ``description``,
  ``sent_times``, ``last_sent_time``, ``finished_time``);
* ``DELETE /v5/iot/{project_id}/device-config-tasks/{task_id}`` — 204; unanswered devices no longer get it.

Errors: 400 ``IOTDA.000006`` for bad input, 404 ``IOTDA.014000`` for an unknown target device, 404
``IOTDA.000006`` for an unknown task.
"""
from __future__ import annotations

from typing import Any, List

from iotda_emulator import errors
from iotda_emulator.http.rest import PREFIX, ApiError, BaseApiHandler, api, bad_request, device_not_found

_NAME_MAX = 128


def _service(emulator: Any) -> Any:
    try:
        return emulator.service("$device_config")
    except (KeyError, AttributeError):
        raise ApiError(500, "IOTDA.000001", "Internal error: the emulator has no $device_config service.") from None


def _task_not_found(task_id: str) -> ApiError:
    return ApiError(404, "IOTDA.000006", f"Invalid input data. The configuration task does not exist. "
                                         f"task_id={task_id}")


class DeviceConfigTasksHandler(BaseApiHandler):
    """``POST`` (create) and ``GET`` (list) ``.../device-config-tasks``."""

    @api
    async def post(self, project_id: str) -> None:
        body = self.json_body()
        content = body.get("config_content")
        if not isinstance(content, dict):
            raise bad_request("'config_content' is mandatory: a JSON object.")
        targets = body.get("targets")
        if not isinstance(targets, list) or not targets:
            raise bad_request("'targets' is mandatory: a list of device ids.")
        timeout = body.get("timeout", 30)
        name = body.get("task_name")
        if name is not None and (not isinstance(name, str) or not name or len(name) > _NAME_MAX):
            raise bad_request(f"'task_name' is a string of 1 to {_NAME_MAX} characters.")
        svc = _service(self.emulator)
        try:
            view = await self.call(svc.create_task, content, targets, timeout, name)
        except errors.DeviceNotFound as exc:
            raise device_not_found(getattr(exc, "device_id", "")) from None
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        self.reply(view, 201)

    @api
    async def get(self, project_id: str) -> None:
        views = await self.call(_service(self.emulator).tasks)
        self.reply({"count": len(views),
                    "tasks": [{k: v for k, v in view.items() if k != "task_details"} for view in views]})


class DeviceConfigTaskHandler(BaseApiHandler):
    """``GET`` (show, with per-device results) and ``DELETE`` ``.../device-config-tasks/{task_id}``."""

    @api
    async def get(self, project_id: str, task_id: str) -> None:
        view = await self.call(_service(self.emulator).task, task_id)
        if view is None:
            raise _task_not_found(task_id)
        self.reply(view)

    @api
    async def delete(self, project_id: str, task_id: str) -> None:
        if not await self.call(_service(self.emulator).delete_task, task_id):
            raise _task_not_found(task_id)
        self.reply(None, 204)


def routes(server: Any) -> List[tuple]:
    """The remote-configuration routes, each handler initialised with the owning HTTP server."""
    kw = {"server": server}
    return [
        (PREFIX + r"/device-config-tasks/?", DeviceConfigTasksHandler, kw),
        (PREFIX + r"/device-config-tasks/(?P<task_id>[^/]+)/?", DeviceConfigTaskHandler, kw),
    ]
