"""Where a gateway keeps its list of sub-devices (the user provides the storage)."""
from __future__ import annotations

import logging
import threading
from abc import ABCMeta, abstractmethod
from typing import Dict, Optional

from iot_device_sdk_python.gateway.requests.device_info import DeviceInfo
from iot_device_sdk_python.gateway.requests.sub_devices_info import SubDevicesInfo

_logger = logging.getLogger(__name__)


class SubDevicesPersistence(metaclass=ABCMeta):
    """Storage of the gateway's sub-devices and of the platform's sub-device list version.

    The gateway calls ``add_sub_devices``/``delete_sub_devices`` when the platform notifies changes and
    ``get_version`` when it synchronises. Calls come from the SDK's dispatcher thread while the
    application may read from other threads, so implementations must be thread-safe.
    """

    @abstractmethod
    def get_sub_device(self, node_id: str) -> Optional[DeviceInfo]:
        """The sub-device with this node id, or ``None``."""

    @abstractmethod
    def add_sub_devices(self, sub_devices_info: SubDevicesInfo) -> int:
        """Store the added sub-devices and the new version; return 0 on success, non-zero otherwise."""

    @abstractmethod
    def delete_sub_devices(self, sub_devices_info: SubDevicesInfo) -> int:
        """Remove the deleted sub-devices and store the new version; return 0 on success."""

    @abstractmethod
    def get_version(self) -> int:
        """The last sub-device list version received from the platform (0 when none)."""


class MemorySubDevicesPersistence(SubDevicesPersistence):
    """A thread-safe in-memory persistence (lost on restart); handy for tests and simple gateways.

    Notifications older than the stored version are ignored; equal versions are applied (the platform
    may split one change into several notifications with the same version).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version = 0
        self._devices: Dict[str, DeviceInfo] = {}

    def get_sub_device(self, node_id: str) -> Optional[DeviceInfo]:
        with self._lock:
            return self._devices.get(node_id)

    def get_sub_device_by_device_id(self, device_id: str) -> Optional[DeviceInfo]:
        """The sub-device with this platform device id, or ``None``."""
        with self._lock:
            for info in self._devices.values():
                if info.device_id == device_id:
                    return info
        return None

    def add_sub_devices(self, sub_devices_info: SubDevicesInfo) -> int:
        with self._lock:
            if self._is_stale(sub_devices_info, "add"):
                return -1
            for info in sub_devices_info.devices:
                if info.node_id:
                    self._devices[info.node_id] = info
            return self._apply_version(sub_devices_info)

    def delete_sub_devices(self, sub_devices_info: SubDevicesInfo) -> int:
        with self._lock:
            if self._is_stale(sub_devices_info, "delete"):
                return -1
            for info in sub_devices_info.devices:
                node_id = info.node_id if info.node_id in self._devices else None
                if node_id is None and info.device_id:
                    node_id = next((n for n, d in self._devices.items() if d.device_id == info.device_id), None)
                if node_id is not None:
                    del self._devices[node_id]
            return self._apply_version(sub_devices_info)

    def _is_stale(self, sub_devices_info: SubDevicesInfo, what: str) -> bool:
        if sub_devices_info.version and sub_devices_info.version < self._version:
            _logger.info("ignoring %s notification of version %s (have %s)", what, sub_devices_info.version,
                         self._version)
            return True
        return False

    def _apply_version(self, sub_devices_info: SubDevicesInfo) -> int:
        """Record the notification's version, then :meth:`_store` the list; returns 0 or -1."""
        if sub_devices_info.version:
            self._version = sub_devices_info.version
        return self._store()

    def _store(self) -> int:
        """Called under the lock after every applied change: a subclass persists the list here (0 = ok)."""
        return 0

    def get_version(self) -> int:
        with self._lock:
            return self._version

    def all_devices(self) -> Dict[str, DeviceInfo]:
        """A copy of ``{node_id: DeviceInfo}``."""
        with self._lock:
            return dict(self._devices)
