"""``GtwAddSubDeviceRsp``: the platform's ``add_sub_device_response``."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from iot_device_sdk_python.gateway.requests._model import as_list, rw
from iot_device_sdk_python.gateway.requests.add_sub_device_failed_reason import AddSubDeviceFailedReason
from iot_device_sdk_python.gateway.requests.added_sub_device_info_rsp import AddedSubDeviceInfoRsp
from iot_device_sdk_python.utils._props import Field


class GtwAddSubDeviceRsp:
    """Created sub-devices (``successful_devices``) and refused ones (``add_sub_device_failed_reasons``)."""

    successful_devices: Field[List[AddedSubDeviceInfoRsp]] = rw("successful_devices", "List[AddedSubDeviceInfoRsp]")
    add_sub_device_failed_reasons: Field[List[AddSubDeviceFailedReason]] = rw("add_sub_device_failed_reasons",
                                                                             "List[AddSubDeviceFailedReason]")

    def __init__(self, successful_devices: Optional[List[AddedSubDeviceInfoRsp]] = None,
                 add_sub_device_failed_reasons: Optional[List[AddSubDeviceFailedReason]] = None) -> None:
        self._successful_devices = successful_devices if successful_devices is not None else []
        self._add_sub_device_failed_reasons = (add_sub_device_failed_reasons
                                               if add_sub_device_failed_reasons is not None else [])

    def to_dict(self) -> Dict[str, Any]:
        """The wire shape ``{"successful_devices": [...], "failed_devices": [...]}`` (plain dicts)."""
        return {"successful_devices": [d.to_dict() for d in self._successful_devices],
                "failed_devices": [r.to_dict() for r in self._add_sub_device_failed_reasons]}

    def convert_from_dict(self, json_dict: Optional[Dict[str, Any]]) -> "GtwAddSubDeviceRsp":
        """Parse the event ``paras``; ``null`` or malformed lists give empty lists."""
        if not isinstance(json_dict, dict):
            return self
        self._successful_devices = [AddedSubDeviceInfoRsp.from_dict(d)
                                    for d in as_list(json_dict.get("successful_devices")) if isinstance(d, dict)]
        self._add_sub_device_failed_reasons = [AddSubDeviceFailedReason.from_dict(d)
                                               for d in as_list(json_dict.get("failed_devices"))
                                               if isinstance(d, dict)]
        return self

    @classmethod
    def from_dict(cls, json_dict: Optional[Dict[str, Any]]) -> "GtwAddSubDeviceRsp":
        return cls().convert_from_dict(json_dict)

    def __repr__(self) -> str:
        return (f"GtwAddSubDeviceRsp(successful={len(self._successful_devices)}, "
                f"failed={len(self._add_sub_device_failed_reasons)})")
