"""``DeviceProperty``: the properties of one sub-device inside a gateway batch report."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional

from iot_device_sdk_python.gateway.requests._model import as_list, as_text, rw, to_plain
from iot_device_sdk_python.utils._props import Field

if TYPE_CHECKING:
    from iot_device_sdk_python.client.request.service_property import ServiceProperty


class DeviceProperty:
    """``device_id`` plus its list of ``ServiceProperty`` (``doc/protocol.md`` §2.6)."""

    device_id: Field[str] = rw("device_id", "sub-device id")
    services: Field[List["ServiceProperty"]] = rw("services", "List[ServiceProperty]")

    def __init__(self, device_id: str = "", services: Optional[List["ServiceProperty"]] = None) -> None:
        self._device_id = device_id
        self._services = services if services is not None else []

    def to_dict(self) -> Dict[str, Any]:
        """``{"device_id", "services": [ServiceProperty dicts]}`` (JSON-serialisable)."""
        return {"device_id": self._device_id, "services": to_plain(list(self._services or []))}

    def convert_from_dict(self, json_dict: Optional[Dict[str, Any]]) -> "DeviceProperty":
        """Fill from ``{"device_id", "services"}``; services become ``ServiceProperty`` objects."""
        from iot_device_sdk_python.client.request.service_property import ServiceProperty

        if not isinstance(json_dict, dict):
            return self
        if "device_id" in json_dict:
            self._device_id = as_text(json_dict["device_id"], self._device_id)
        if "services" in json_dict:
            services: List[ServiceProperty] = []
            for item in as_list(json_dict["services"]):
                if isinstance(item, dict):
                    sp = ServiceProperty()
                    sp.convert_from_dict(item)
                    services.append(sp)
            self._services = services
        return self

    def __repr__(self) -> str:
        return f"DeviceProperty(device_id={self._device_id!r}, services={len(self._services or [])})"
