"""``UrlInfo``: the paras of ``get_upload_url_response`` / ``get_download_url_response``."""
from __future__ import annotations

from typing import Any, Dict, Optional


class UrlInfo:
    """A temporary object-store URL granted by the platform (PUT for upload, GET for download).

    ``url`` is presigned: treat it as a secret (never log it). ``expire`` is its validity in seconds.
    ``file_attributes`` is the platform's echo (e.g. ``{"hash_code": sha256_hex, "size": n}``).
    """

    def __init__(self) -> None:
        self._url = ""
        self._bucket_name = ""
        self._object_name = ""
        self._expire = 0
        self._file_attributes: Dict[str, Any] = {}

    @property
    def url(self) -> str:
        """The presigned URL."""
        return self._url

    @url.setter
    def url(self, value: str) -> None:
        self._url = value

    @property
    def bucket_name(self) -> str:
        """Object-store bucket."""
        return self._bucket_name

    @bucket_name.setter
    def bucket_name(self, value: str) -> None:
        self._bucket_name = value

    @property
    def object_name(self) -> str:
        """Object name: the name to use in ``report_upload_result`` / ``report_download_result``."""
        return self._object_name

    @object_name.setter
    def object_name(self, value: str) -> None:
        self._object_name = value

    @property
    def expire(self) -> int:
        """URL validity in seconds."""
        return self._expire

    @expire.setter
    def expire(self, value: int) -> None:
        self._expire = value

    @property
    def file_attributes(self) -> Dict[str, Any]:
        """File attributes echoed by the platform (``hash_code``, ``size``), ``{}`` when absent."""
        return self._file_attributes

    @file_attributes.setter
    def file_attributes(self, value: Optional[Dict[str, Any]]) -> None:
        self._file_attributes = value if isinstance(value, dict) else {}

    def to_dict(self) -> Dict[str, Any]:
        """All five fields as the JSON paras."""
        return {"url": self._url, "bucket_name": self._bucket_name, "object_name": self._object_name,
                "expire": self._expire, "file_attributes": self._file_attributes}

    def convert_from_dict(self, json_dict: Dict[str, Any]) -> None:
        """Copy the known keys present in ``json_dict``, ``file_attributes`` included (upstream dropped it)."""
        if not isinstance(json_dict, dict):
            return
        for key in ("url", "bucket_name", "object_name", "expire"):
            if key in json_dict:
                setattr(self, "_" + key, json_dict[key])
        if "file_attributes" in json_dict:
            self.file_attributes = json_dict["file_attributes"]

    def __repr__(self) -> str:
        from iot_device_sdk_python.transfer.http_transfer import redact_url
        return (f"UrlInfo(url={redact_url(self._url)!r}, bucket_name={self._bucket_name!r}, "
                f"object_name={self._object_name!r}, expire={self._expire!r})")
