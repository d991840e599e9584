"""One service of a device shadow (upstream ``client.request.shadow_data``)."""
from __future__ import annotations

from typing import Any, Dict, Optional

from iot_device_sdk_python.client.request._util import as_dict, get_int, get_str
from iot_device_sdk_python.client.request.properties_data import PropertiesData
from iot_device_sdk_python.utils._props import Field, rw


class ShadowData:
    """``service_id``, ``desired`` and ``reported`` (:class:`PropertiesData` or None), ``version``."""

    def __init__(self) -> None:
        self._service_id = ""
        self._desired: Optional[PropertiesData] = None
        self._reported: Optional[PropertiesData] = None
        self._version: Optional[int] = None

    service_id: Field[str] = rw("_service_id")
    desired: Field[Optional[PropertiesData]] = rw("_desired")
    reported: Field[Optional[PropertiesData]] = rw("_reported")
    version: Field[Optional[int]] = rw("_version")

    def convert_from_dict(self, json_dict: Dict[str, Any]) -> None:
        d = as_dict(json_dict)
        self._service_id = get_str(d, "service_id", self._service_id)
        for key in ("desired", "reported"):
            if isinstance(d.get(key), dict):
                pd = PropertiesData()
                pd.convert_from_dict(d[key])
                setattr(self, "_" + key, pd)
        self._version = get_int(d, "version", self._version)
