"""``DeviceInfo``: one sub-device as the platform describes it (``$sub_device_manager`` notifications)."""
from __future__ import annotations

from iot_device_sdk_python.gateway.requests._model import TextRecord, rw
from iot_device_sdk_python.utils._props import Field


class DeviceInfo(TextRecord):
    """A sub-device: ids, descriptive fields, versions and status (``ONLINE``/``OFFLINE``/``INACTIVE``)."""

    _FIELDS = ("parent_device_id", "node_id", "device_id", "name", "description", "manufacturer_id",
               "model", "product_id", "fw_version", "sw_version", "status")

    parent_device_id: Field[str] = rw("parent_device_id", "id of the gateway the sub-device belongs to")
    node_id: Field[str] = rw("node_id", "physical identifier of the sub-device (serial number, IMEI...)")
    device_id: Field[str] = rw("device_id", "platform device id of the sub-device")
    name: Field[str] = rw("name")
    description: Field[str] = rw("description")
    manufacturer_id: Field[str] = rw("manufacturer_id")
    model: Field[str] = rw("model")
    product_id: Field[str] = rw("product_id")
    fw_version: Field[str] = rw("fw_version")
    sw_version: Field[str] = rw("sw_version")
    status: Field[str] = rw("status", "ONLINE, OFFLINE or INACTIVE")

    def __init__(self, parent_device_id: str = "", node_id: str = "", device_id: str = "", name: str = "",
                 description: str = "", manufacturer_id: str = "", model: str = "", product_id: str = "",
                 fw_version: str = "", sw_version: str = "", status: str = "") -> None:
        self._parent_device_id = parent_device_id
        self._node_id = node_id
        self._device_id = device_id
        self._name = name
        self._description = description
        self._manufacturer_id = manufacturer_id
        self._model = model
        self._product_id = product_id
        self._fw_version = fw_version
        self._sw_version = sw_version
        self._status = status

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DeviceInfo) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"DeviceInfo(node_id={self._node_id!r}, device_id={self._device_id!r}, status={self._status!r})"
