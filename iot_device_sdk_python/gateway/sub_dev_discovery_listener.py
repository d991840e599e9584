"""Listener for sub-device scan requests (``start_scan``; sent by IoTEdge, not by IoTDA)."""
from __future__ import annotations

from abc import ABCMeta, abstractmethod

from iot_device_sdk_python.gateway.requests.scan_sub_device_notify import ScanSubDeviceNotify


class SubDevDiscoveryListener(metaclass=ABCMeta):
    """Called when the platform asks the gateway to scan for sub-devices."""

    @abstractmethod
    def on_scan(self, scan_sub_device_notify: ScanSubDeviceNotify) -> None:
        """Start a scan; report what was found with ``AbstractGateway.report_sub_dev_list``."""
