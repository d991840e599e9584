"""``SubDevicesInfo``: the payload of an add/delete sub-device notification."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from iot_device_sdk_python.gateway.requests._model import as_int, as_list, rw
from iot_device_sdk_python.gateway.requests.device_info import DeviceInfo
from iot_device_sdk_python.utils._props import Field


class SubDevicesInfo:
    """The changed ``devices`` (``List[DeviceInfo]``) and the platform's sub-device list ``version``."""

    devices: Field[List[DeviceInfo]] = rw("devices", "List[DeviceInfo]")
    version: Field[int] = rw("version", "sub-device list version on the platform")

    def __init__(self, devices: Optional[List[DeviceInfo]] = None, version: int = 0) -> None:
        self._devices = devices if devices is not None else []
        self._version = version

    def to_dict(self) -> Dict[str, Any]:
        return {"devices": [d.to_dict() for d in self._devices], "version": self._version}

    def convert_from_dict(self, json_dict: Optional[Dict[str, Any]]) -> "SubDevicesInfo":
        """Parse notification ``paras``: ``null``/malformed devices are skipped, a bad version gives 0."""
        if not isinstance(json_dict, dict):
            return self
        self._devices = [DeviceInfo.from_dict(d) for d in as_list(json_dict.get("devices")) if isinstance(d, dict)]
        self._version = as_int(json_dict.get("version"), 0)
        return self

    @classmethod
    def from_dict(cls, json_dict: Optional[Dict[str, Any]]) -> "SubDevicesInfo":
        return cls().convert_from_dict(json_dict)

    def __repr__(self) -> str:
        return f"SubDevicesInfo(version={self._version}, devices={len(self._devices)})"
