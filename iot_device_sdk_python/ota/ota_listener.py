"""``OTAListener``: what a device implements to take part in OTA upgrades."""
from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import Union

from iot_device_sdk_python.ota.ota_package_info import OTAPackageInfo
from iot_device_sdk_python.ota.ota_package_info_v2 import OTAPackageInfoV2
from iot_device_sdk_python.ota.ota_query_version import OTAQueryVersion


class OTAListener(metaclass=ABCMeta):
    """Callbacks of :class:`OTAService`. They run on the device's dispatcher thread, in arrival order.

    A long job (a download) should not run inside a callback: use
    :meth:`OTAService.download_package`, which runs on a worker thread.
    """

    @abstractmethod
    def on_query_version(self, queryInfo: OTAQueryVersion) -> None:  # noqa: N803 (upstream parameter name)
        """The platform asks for the versions: answer with ``OTAService.report_version``."""

    @abstractmethod
    def on_receive_package_info(self, pkg: Union[OTAPackageInfo, OTAPackageInfoV2]) -> None:
        """An upgrade package is available (``OTAPackageInfo`` for v1, ``OTAPackageInfoV2`` for v2 events)."""
