"""IoTDA v5 FreezeDevice and UnfreezeDevice, and the one rule both the REST API and the console apply.

* ``POST /v5/iot/{project_id}/devices/{device_id}/freeze`` - 204; the device's connection is dropped and every
  later CONNECT is refused with CONNACK 5 (see :meth:`PlatformCore.freeze_device`);
* ``POST /v5/iot/{project_id}/devices/{device_id}/unfreeze`` - 204; the device may connect again.

Errors as IoTDA's error table lists them: 404 ``IOTDA.014000`` (unknown device), 403 ``IOTDA.014038`` (a
sub-device: "only gateways or directly connected devices can be frozen") and 403 ``IOTDA.014040`` (unfreezing a
device that is not frozen). Freezing a device that is already frozen is accepted (IoTDA lists no error for it).
"""
from __future__ import annotations

from typing import Any, List

from iotda_emulator import errors
from iotda_emulator.http.rest import DEVICE, ApiError, BaseApiHandler, api, device_not_found

SUB_DEVICE_CODE = "IOTDA.014038"
NOT_FROZEN_CODE = "IOTDA.014040"


class FreezeRefused(ValueError):
    """IoTDA refuses this freeze/unfreeze (``code`` is its error code; HTTP status 403)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def set_device_frozen(emulator: Any, device_id: str, frozen: bool) -> dict:
    """Freeze or unfreeze ``device_id`` as IoTDA allows it; returns the device's record afterwards.

    Raises ``DeviceNotFound``, or :class:`FreezeRefused` for a sub-device or for unfreezing a device that
    is not frozen. Blocking (registry reads and writes): call it off the IOLoop.
    """
    record = emulator.get_device(device_id)
    if record is None:
        raise errors.DeviceNotFound(f"device {device_id} not found")
    if record.get("gateway_id") and record.get("gateway_id") != device_id:
        raise FreezeRefused(SUB_DEVICE_CODE, "Operation not allowed. It is not allowed to freeze sub-devices, "
                                             "only gateways or directly connected devices can be frozen.")
    if not frozen and not record.get("frozen"):
        raise FreezeRefused(NOT_FROZEN_CODE, "Operation not allowed. The device is not frozen, can not unfreeze.")
    emulator.freeze_device(device_id, frozen)
    return emulator.get_device(device_id) or record


class _FreezeHandler(BaseApiHandler):
    frozen = True

    @api
    async def post(self, project_id: str, device_id: str) -> None:
        try:
            await self.call(set_device_frozen, self.emulator, device_id, self.frozen)
        except errors.DeviceNotFound:
            raise device_not_found(device_id) from None
        except FreezeRefused as exc:
            raise ApiError(403, exc.code, str(exc)) from None
        self.reply(None, 204)


class FreezeHandler(_FreezeHandler):
    """``POST .../devices/{device_id}/freeze`` (FreezeDevice)."""

    frozen = True


class UnfreezeHandler(_FreezeHandler):
    """``POST .../devices/{device_id}/unfreeze`` (UnfreezeDevice)."""

    frozen = False


def routes(server: Any) -> List[tuple]:
    """The freeze/unfreeze routes, each handler initialised with the owning HTTP server."""
    kw = {"server": server}
    return [
        (DEVICE + r"/freeze/?", FreezeHandler, kw),
        (DEVICE + r"/unfreeze/?", UnfreezeHandler, kw),
    ]


__all__ = ["set_device_frozen", "FreezeRefused", "routes"]
