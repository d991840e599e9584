"""``GtwDelSubDeviceRsp``: the platform's ``delete_sub_device_response``."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from iot_device_sdk_python.gateway.requests._model import as_list, rw
from iot_device_sdk_python.gateway.requests.del_sub_device_failed_reason import DelSubDeviceFailedReason
from iot_device_sdk_python.utils._props import Field


class GtwDelSubDeviceRsp:
    """Deleted sub-device ids (``successful_devices``) and refused ones (``failed_devices``)."""

    successful_devices: Field[List[str]] = rw("successful_devices", "List[str]")
    failed_devices: Field[List[DelSubDeviceFailedReason]] = rw("failed_devices", "List[DelSubDeviceFailedReason]")

    def __init__(self, successful_devices: Optional[List[str]] = None,
                 failed_devices: Optional[List[DelSubDeviceFailedReason]] = None) -> None:
        self._successful_devices = successful_devices if successful_devices is not None else []
        self._failed_devices = failed_devices if failed_devices is not None else []

    def to_dict(self) -> Dict[str, Any]:
        """The wire shape ``{"successful_devices": [ids], "failed_devices": [...]}`` (plain dicts)."""
        return {"successful_devices": list(self._successful_devices),
                "failed_devices": [r.to_dict() for r in self._failed_devices]}

    def convert_from_dict(self, json_dict: Optional[Dict[str, Any]]) -> "GtwDelSubDeviceRsp":
        """Parse the event ``paras``; ``null`` or malformed lists give empty lists."""
        if not isinstance(json_dict, dict):
            return self
        self._successful_devices = [d for d in as_list(json_dict.get("successful_devices")) if isinstance(d, str)]
        self._failed_devices = [DelSubDeviceFailedReason.from_dict(d)
                                for d in as_list(json_dict.get("failed_devices")) if isinstance(d, dict)]
        return self

    @classmethod
    def from_dict(cls, json_dict: Optional[Dict[str, Any]]) -> "GtwDelSubDeviceRsp":
        return cls().convert_from_dict(json_dict)

    def __repr__(self) -> str:
        return f"GtwDelSubDeviceRsp(successful={len(self._successful_devices)}, failed={len(self._failed_devices)})"
