"""``DelSubDeviceFailedReason``: one refused entry of a ``delete_sub_device_response``."""
from __future__ import annotations

from typing import Optional

from iot_device_sdk_python.gateway.requests._model import as_text, rw

_FIELDS = ("device_id", "error_code", "error_msg")


class DelSubDeviceFailedReason:
    """Why the platform did not delete the sub-device ``device_id``."""

    device_id = rw("device_id")
    error_code = rw("error_code")
    error_msg = rw("error_msg")

    def __init__(self, device_id: str = "", error_code: str = "", error_msg: str = "") -> None:
        self._device_id = device_id
        self._error_code = error_code
        self._error_msg = error_msg

    def to_dict(self) -> dict:
        return {f: getattr(self, f) for f in _FIELDS}

    def convert_from_dict(self, json_dict: Optional[dict]) -> "DelSubDeviceFailedReason":
        """Copy the known keys; returns ``self``."""
        if isinstance(json_dict, dict):
            for f in _FIELDS:
                if f in json_dict:
                    value = as_text(json_dict[f], None)
                    if value is not None:
                        setattr(self, f, value)
        return self

    @classmethod
    def from_dict(cls, json_dict: Optional[dict]) -> "DelSubDeviceFailedReason":
        return cls().convert_from_dict(json_dict)

    def __repr__(self) -> str:
        return f"DelSubDeviceFailedReason(device_id={self._device_id!r}, error_code={self._error_code!r})"
