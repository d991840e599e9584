"""The data source of a DEVICE_DATA condition (upstream ``rule.model.device_info``; not the gateway DeviceInfo)."""
from __future__ import annotations


class DeviceInfo:
    """``device_id`` whose data is watched (empty = this device) and ``path`` ``"service_id/property"``."""

    def __init__(self) -> None:
        self.device_id: str = ""
        self.path: str = ""

    def __repr__(self) -> str:
        return f"DeviceInfo(device_id={self.device_id!r}, path={self.path!r})"
