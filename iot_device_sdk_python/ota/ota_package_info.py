"""``OTAPackageInfo``: the paras of ``firmware_upgrade`` / ``software_upgrade`` (v1, package on IoTDA)."""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from iot_device_sdk_python.utils._props import Field, field as _rw


class _PackageFields:
    """JSON conversion shared by the v1 and v2 package classes (each names its keys)."""

    _FIELDS: Tuple[str, ...] = ()
    _ALWAYS: Tuple[str, ...] = ()     # keys always present in to_dict()
    _OPTIONAL: Tuple[str, ...] = ()   # keys present only when not None
    # set by the subclasses' __init__ (values come from untrusted platform JSON: any type)
    _version: Any
    _file_name: Any
    _file_size: Any
    _url: Any
    _task_id: Any

    def to_dict(self) -> Dict[str, Any]:
        """The JSON paras: the ``_ALWAYS`` keys, plus the ``_OPTIONAL`` ones that are not None."""
        d = {k: getattr(self, k) for k in self._ALWAYS}
        for k in self._OPTIONAL:
            if getattr(self, k) is not None:
                d[k] = getattr(self, k)
        return d

    def convert_from_dict(self, json_dict: Dict[str, Any]) -> None:
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

    url: Field[str] = _rw("url", "Download URL (HTTPS).")
    version: Field[str] = _rw("version", "Target version of the package.")
    sign: Field[str] = _rw("sign", "SHA-256 hex digest of the package.")
    file_size: Field[Optional[int]] = _rw("file_size", "Package size in bytes.")
    file_name: Field[str] = _rw("file_name", "Package file name.")
    access_token: Field[str] = _rw("access_token", "Temporary bearer token for the download (a secret: never log it).")
    expires: Field[Optional[int]] = _rw("expires", "Token validity in seconds.")
    custom_info: Field[Any] = _rw("custom_info", "Custom info attached to the package.")
    sub_device_count: Field[Optional[int]] = _rw("sub_device_count", "Number of sub-devices in a gateway task.")
    task_id: Field[Optional[str]] = _rw("task_id", "Upgrade task id.")
    task_ext_info: Field[Any] = _rw("task_ext_info", "Task extension info.")

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

