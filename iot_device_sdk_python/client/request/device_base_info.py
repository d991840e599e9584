"""Firmware/software versions for the ``$sdk_info`` report (upstream ``client.request.device_base_info``)."""
from __future__ import annotations

from iot_device_sdk_python.utils._props import Field, rw


class DeviceBaseInfo:
    """``fw_version`` and ``sw_version`` (both "" by default)."""

    def __init__(self) -> None:
        self._fw_version = ""
        self._sw_version = ""

    fw_version: Field[str] = rw("_fw_version")
    sw_version: Field[str] = rw("_sw_version")
