"""A JSON-file ``SubDevicesPersistence`` that survives restarts.

File layout: ``{"version": <int>, "sub_devices": {<node_id>: <DeviceInfo dict>}}``. Every change is
written to a temporary file in the same directory and moved over the old one with ``os.replace``,
so a crash never leaves a half-written file. The location comes from the constructor, else the
environment variable ``IOT_GATEWAY_SUBDEVICES_FILE``, else ``./subdevices.json``.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from typing import Optional

from iot_device_sdk_python.gateway.requests.device_info import DeviceInfo
from iot_device_sdk_python.gateway.sub_devices_persistence import MemorySubDevicesPersistence

_logger = logging.getLogger(__name__)

ENV_FILE = "IOT_GATEWAY_SUBDEVICES_FILE"
DEFAULT_FILE = "subdevices.json"


class SubDevicesFilePersistence(MemorySubDevicesPersistence):
    """Sub-devices and the platform's list version, kept in one JSON file (thread-safe).

    A notification whose version is older than the stored one is ignored (returns -1); equal versions
    are applied, because one change may arrive as several notifications carrying the same version.
    """

    def __init__(self, path: Optional[str] = None) -> None:
        super().__init__()
        self._path = os.path.abspath(path or os.environ.get(ENV_FILE) or DEFAULT_FILE)
        self._load()

    @property
    def path(self) -> str:
        """Absolute path of the JSON file."""
        return self._path

    def _load(self) -> None:
        try:
            with open(self._path, "r", encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            # keep the unreadable file for inspection and start empty: a sync will refill the list
            _logger.error("cannot read %s (%s); starting with an empty sub-device list", self._path, exc)
            try:
                os.replace(self._path, self._path + ".corrupt")
            except OSError:
                pass
            return
        if not isinstance(data, dict):
            _logger.error("%s is not a JSON object; starting with an empty sub-device list", self._path)
            return
        version = data.get("version")
        self._version = version if isinstance(version, int) and not isinstance(version, bool) else 0
        devices = data.get("sub_devices")
        if isinstance(devices, dict):
            for node_id, info in devices.items():
                if isinstance(info, dict):
                    self._devices[node_id] = DeviceInfo.from_dict(info)

    def _save(self) -> None:
        data = {"version": self._version,
                "sub_devices": {node: info.to_dict() for node, info in sorted(self._devices.items())}}
        directory = os.path.dirname(self._path)
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".subdevices-", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, ensure_ascii=False, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self._path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def _store(self) -> int:
        try:
            self._save()
        except OSError as exc:
            _logger.error("cannot write %s: %s", self._path, exc)
            return -1
        return 0
