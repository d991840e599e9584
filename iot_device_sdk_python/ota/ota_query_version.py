"""``OTAQueryVersion``: the paras of a ``$ota`` / ``version_query`` event."""
from __future__ import annotations

from typing import Any, Dict, Optional


class OTAQueryVersion:
    """A platform request for the device's versions (optionally part of an upgrade task)."""

    def __init__(self) -> None:
        self._task_id: Optional[str] = None
        self._task_ext_info: Any = None
        self._sub_device_count: Optional[int] = None

    @property
    def task_id(self) -> Optional[str]:
        """Upgrade task id, when the query belongs to a task."""
        return self._task_id

    @task_id.setter
    def task_id(self, value: Optional[str]) -> None:
        self._task_id = value

    @property
    def task_ext_info(self) -> Any:
        """Task extension info (object or string) as the platform sent it."""
        return self._task_ext_info

    @task_ext_info.setter
    def task_ext_info(self, value: Any) -> None:
        self._task_ext_info = value

    @property
    def sub_device_count(self) -> Optional[int]:
        """Number of gateway sub-devices in the task (gateway upgrades)."""
        return self._sub_device_count

    @sub_device_count.setter
    def sub_device_count(self, value: Optional[int]) -> None:
        self._sub_device_count = value

    def to_dict(self) -> Dict[str, Any]:
        """The fields that are set, as the JSON paras."""
        d = {"task_id": self._task_id, "task_ext_info": self._task_ext_info,
             "sub_device_count": self._sub_device_count}
        return {k: v for k, v in d.items() if v is not None}

    def convert_from_dict(self, json_dict: Dict[str, Any]) -> None:
        """Copy the known keys from ``json_dict`` (other keys are ignored)."""
        if not isinstance(json_dict, dict):
            return
        for key in ("task_id", "task_ext_info", "sub_device_count"):
            if key in json_dict:
                setattr(self, "_" + key, json_dict[key])
