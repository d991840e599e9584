"""``OTAPackageInfo``: the paras of ``firmware_upgrade`` / ``software_upgrade`` (v1, package on IoTDA)."""
from __future__ import annotations

from typing import Any, Optional

from iot_device_sdk_python.utils._props import field as _rw


class _PackageFields:
    """JSON conversion shared by the v1 and v2 package classes (each names its keys)."""

    _FIELDS: tuple = ()
    _ALWAYS: tuple = ()     # keys always present in to_dict()
    _OPTIONAL: tuple = ()   # keys present only when not None

    def to_dict(self) -> dict:
        """The JSON paras: the ``_ALWAYS`` keys, plus the ``_OPTIONAL`` ones that are not None."""
        d = {k: getattr(self, k) for k in self._ALWAYS}
        for k in self._OPTIONAL:
            if getattr(self, k) is not None:
                d[k] = getattr(self, k)
        return d

    def convert_from_dict(self, json_dict: dict) -> None:
        """Copy every known key present in ``json_dict`` (anything that is not a dict is ignored)."""
        if not isinstance(json_dict, dict):
            return
        for key in self._FIELDS:
            if key in json_dict:
                setattr(self, "_" + key, json_dict[key])

    def __repr__(self) -> str:
        # the token and the URL's query are secrets: keep them out of reprs (and so out of logs)
        from iot_device_sdk_python.transfer.http_transfer import redact_url
        return (f"{type(self).__name__}(version={self._version!r}, file_name={self._file_name!r}, "
                f"file_size={self._file_size!r}, url={redact_url(self._url)!r}, task_id={self._task_id!r})")


class OTAPackageInfo(_PackageFields):
    """An upgrade package hosted on IoTDA: download ``url`` with ``Authorization: Bearer {access_token}``.

    ``sign`` is the SHA-256 hex of the package, ``file_size`` its size in bytes, ``expires`` the token
    validity in seconds.
    """

    _FIELDS = ("url", "version", "sign", "file_size", "file_name", "access_token", "expires",
               "custom_info", "sub_device_count", "task_id", "task_ext_info")
    _ALWAYS = ("url", "version", "file_size", "file_name", "access_token", "expires", "sign")
    _OPTIONAL = ("custom_info", "task_id", "sub_device_count", "task_ext_info")

    url = _rw("url", "Download URL (HTTPS).")
    version = _rw("version", "Target version of the package.")
    sign = _rw("sign", "SHA-256 hex digest of the package.")
    file_size = _rw("file_size", "Package size in bytes.")
    file_name = _rw("file_name", "Package file name.")
    access_token = _rw("access_token", "Temporary bearer token for the download (a secret: never log it).")
    expires = _rw("expires", "Token validity in seconds.")
    custom_info = _rw("custom_info", "Custom info attached to the package.")
    sub_device_count = _rw("sub_device_count", "Number of sub-devices in a gateway task.")
    task_id = _rw("task_id", "Upgrade task id.")
    task_ext_info = _rw("task_ext_info", "Task extension info.")

    def __init__(self) -> None:
        self._url = ""
        self._version = ""
        self._sign = ""
        self._file_size: Optional[int] = None
        self._file_name = ""
        self._access_token = ""
        self._expires: Optional[int] = None
        self._custom_info: Any = None
        self._sub_device_count: Optional[int] = None
        self._task_id: Optional[str] = None
        self._task_ext_info: Any = None

