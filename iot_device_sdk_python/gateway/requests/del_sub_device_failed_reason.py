"""``DelSubDeviceFailedReason``: one refused entry of a ``delete_sub_device_response``."""
from __future__ import annotations

from iot_device_sdk_python.gateway.requests._model import TextRecord, rw
from iot_device_sdk_python.utils._props import Field


class DelSubDeviceFailedReason(TextRecord):
    """Why the platform did not delete the sub-device ``device_id``."""

    _FIELDS = ("device_id", "error_code", "error_msg")

    device_id: Field[str] = rw("device_id")
    error_code: Field[str] = rw("error_code")
    error_msg: Field[str] = rw("error_msg")

    def __init__(self, device_id: str = "", error_code: str = "", error_msg: str = "") -> None:
        self._device_id = device_id
        self._error_code = error_code
        self._error_msg = error_msg

    def __repr__(self) -> str:
        return f"DelSubDeviceFailedReason(device_id={self._device_id!r}, error_code={self._error_code!r})"
