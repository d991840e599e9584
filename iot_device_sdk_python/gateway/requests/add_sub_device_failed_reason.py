"""``AddSubDeviceFailedReason``: one refused entry of an ``add_sub_device_response``."""
from __future__ import annotations

from typing import Optional

from iot_device_sdk_python.gateway.requests._model import as_text, rw

_FIELDS = ("node_id", "product_id", "error_code", "error_msg")


class AddSubDeviceFailedReason:
    """Why the platform did not create the sub-device ``node_id``."""

    node_id = rw("node_id")
    product_id = rw("product_id")
    error_code = rw("error_code")
    error_msg = rw("error_msg")

    def __init__(self, node_id: str = "", product_id: str = "", error_code: str = "", error_msg: str = "") -> None:
        self._node_id = node_id
        self._product_id = product_id
        self._error_code = error_code
        self._error_msg = error_msg

    def to_dict(self) -> dict:
        return {f: getattr(self, f) for f in _FIELDS}

    def convert_from_dict(self, json_dict: Optional[dict]) -> "AddSubDeviceFailedReason":
        """Copy the known keys; returns ``self``."""
        if isinstance(json_dict, dict):
            for f in _FIELDS:
                if f in json_dict:
                    value = as_text(json_dict[f], None)
                    if value is not None:
                        setattr(self, f, value)
        return self

    @classmethod
    def from_dict(cls, json_dict: Optional[dict]) -> "AddSubDeviceFailedReason":
        return cls().convert_from_dict(json_dict)

    def __repr__(self) -> str:
        return f"AddSubDeviceFailedReason(node_id={self._node_id!r}, error_code={self._error_code!r})"
