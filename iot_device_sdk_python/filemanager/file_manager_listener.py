"""``FileManagerListener``: receives the URLs granted by the platform."""
from __future__ import annotations

from abc import ABCMeta, abstractmethod

from iot_device_sdk_python.filemanager.url_info import UrlInfo


class FileManagerListener(metaclass=ABCMeta):
    """Callbacks of :class:`FileManagerService`, run on the device's dispatcher thread."""

    @abstractmethod
    def on_upload_url(self, url_info: UrlInfo) -> None:
        """An upload URL (HTTP PUT) arrived; upload, then call ``report_upload_result``."""

    @abstractmethod
    def on_download_url(self, url_info: UrlInfo) -> None:
        """A download URL (HTTP GET) arrived; download, then call ``report_download_result``."""
