"""``AddSubDeviceFailedReason``: one refused entry of an ``add_sub_device_response``."""
from __future__ import annotations

from iot_device_sdk_python.gateway.requests._model import TextRecord, rw
from iot_device_sdk_python.utils._props import Field


class AddSubDeviceFailedReason(TextRecord):
    """Why the platform did not create the sub-device ``node_id``."""

    _FIELDS = ("node_id", "product_id", "error_code", "error_msg")

    node_id: Field[str] = rw("node_id")
    product_id: Field[str] = rw("product_id")
    error_code: Field[str] = rw("error_code")
    error_msg: Field[str] = rw("error_msg")

    def __init__(self, node_id: str = "", product_id: str = "", error_code: str = "", error_msg: str = "") -> None:
        self._node_id = node_id
        self._product_id = product_id
        self._error_code = error_code
        self._error_msg = error_msg

    def __repr__(self) -> str:
        return f"AddSubDeviceFailedReason(node_id={self._node_id!r}, error_code={self._error_code!r})"
