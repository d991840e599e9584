"""``AddedSubDeviceInfoRsp``: one created sub-device in an ``add_sub_device_response``."""
from __future__ import annotations

from typing import Any, Dict, Optional

from iot_device_sdk_python.gateway.requests._model import as_dict
from iot_device_sdk_python.gateway.requests.device_info import DeviceInfo


def _proxy(name: str) -> property:
    def fget(self: Any) -> Any:
        return getattr(self._device_info, name)

    def fset(self: Any, value: Any) -> None:
        setattr(self._device_info, name, value)

    return property(fget, fset, doc=name)


class AddedSubDeviceInfoRsp:
    """A :class:`DeviceInfo` (all its fields readable/writable here) plus ``extension_info``."""

    parent_device_id = _proxy("parent_device_id")
    node_id = _proxy("node_id")
    device_id = _proxy("device_id")
    name = _proxy("name")
    description = _proxy("description")
    manufacturer_id = _proxy("manufacturer_id")
    model = _proxy("model")
    product_id = _proxy("product_id")
    fw_version = _proxy("fw_version")
    sw_version = _proxy("sw_version")
    status = _proxy("status")

    def __init__(self, device_info: Optional[DeviceInfo] = None, extension_info: Optional[Dict[str, Any]] = None) -> None:
        self._device_info = device_info if device_info is not None else DeviceInfo()
        self._extension_info = extension_info

    @property
    def device_info(self) -> DeviceInfo:
        """The wrapped :class:`DeviceInfo`."""
        return self._device_info

    @device_info.setter
    def device_info(self, value: DeviceInfo) -> None:
        self._device_info = value

    @property
    def extension_info(self) -> Optional[Dict[str, Any]]:
        return self._extension_info

    @extension_info.setter
    def extension_info(self, value: Optional[Dict[str, Any]]) -> None:
        self._extension_info = value

    def to_dict(self) -> Dict[str, Any]:
        """The 11 DeviceInfo keys plus ``extension_info``."""
        d = self._device_info.to_dict()
        d["extension_info"] = self._extension_info
        return d

    def convert_from_dict(self, json_dict: Optional[Dict[str, Any]]) -> "AddedSubDeviceInfoRsp":
        """Fill from a platform dict; returns ``self``."""
        if not isinstance(json_dict, dict):
            return self
        self._device_info.convert_from_dict(json_dict)
        if "extension_info" in json_dict:
            self._extension_info = as_dict(json_dict["extension_info"])
        return self

    @classmethod
    def from_dict(cls, json_dict: Optional[Dict[str, Any]]) -> "AddedSubDeviceInfoRsp":
        return cls().convert_from_dict(json_dict)

    def __repr__(self) -> str:
        return f"AddedSubDeviceInfoRsp(node_id={self.node_id!r}, device_id={self.device_id!r})"

