"""``OTAPackageInfoV2``: the paras of ``firmware_upgrade_v2`` / ``software_upgrade_v2`` (package in OBS)."""
from __future__ import annotations

from typing import Any, Optional

from iot_device_sdk_python.ota.ota_package_info import _PackageFields
from iot_device_sdk_python.utils._props import Field, field as _rw


class OTAPackageInfoV2(_PackageFields):
    """An upgrade package in the customer's OBS bucket: ``url`` is presigned (no token needed).

    Unlike upstream, every documented field is parsed, including ``sign`` (SHA-256 hex) and ``file_size``.
    """

    _FIELDS = ("url", "version", "file_size", "file_name", "expires", "sign", "custom_info",
               "task_id", "sub_device_count", "task_ext_info")
    _ALWAYS = ("url", "version", "file_size", "file_name", "expires")
    _OPTIONAL = ("sign", "custom_info", "task_id", "sub_device_count", "task_ext_info")

    url: Field[str] = _rw("url", "Presigned download URL (a secret: never log it).")
    version: Field[str] = _rw("version", "Target version of the package.")
    file_size: Field[Optional[int]] = _rw("file_size", "Package size in bytes.")
    file_name: Field[Optional[str]] = _rw("file_name", "Package file name.")
    expires: Field[Optional[int]] = _rw("expires", "URL validity in seconds.")
    sign: Field[Optional[str]] = _rw("sign", "SHA-256 hex digest of the package.")
    custom_info: Field[Any] = _rw("custom_info", "Custom info attached to the package.")
    task_id: Field[Optional[str]] = _rw("task_id", "Upgrade task id.")
    sub_device_count: Field[Optional[int]] = _rw("sub_device_count", "Number of sub-devices in a gateway task.")
    task_ext_info: Field[Any] = _rw("task_ext_info", "Task extension info.")

    def __init__(self) -> None:
        self._url = ""
        self._version = ""
        self._file_size: Optional[int] = None
        self._file_name: Optional[str] = None
        self._expires: Optional[int] = None
        self._sign: Optional[str] = None
        self._custom_info: Any = None
        self._task_id: Optional[str] = None
        self._sub_device_count: Optional[int] = None
        self._task_ext_info: Any = None

