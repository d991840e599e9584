"""One condition of a device rule (upstream module name ``connditions``, spelled as upstream)."""
from __future__ import annotations

from typing import List, Optional

from iot_device_sdk_python.rule.model.device_info import DeviceInfo


class Condition:
    """A rule condition.

    * ``DEVICE_DATA``: ``device_info`` (path ``service/property``), ``operator`` (``>``, ``>=``, ``<``, ``<=``,
      ``=``, ``between``, ``in``), ``value`` (``"a,b"`` for between) or ``in_values``.
    * ``DAILY_TIMER``: ``time`` ``"HH:MM"`` (UTC) and ``days_of_week`` ``"1,2,..."`` (1 = Sunday ... 7 = Saturday).
    * ``SIMPLE_TIMER``: ``start_time`` ``"YYYY-MM-DD HH:MM:SS"`` (UTC), ``repeat_interval`` (s), ``repeat_count``.
    """

    def __init__(self) -> None:
        self.type: str = ""
        self.start_time: str = ""
        self.repeat_interval: int = 0
        self.repeat_count: int = 0
        self.time: str = ""
        self.days_of_week: str = ""
        self.operator: str = ""
        self.device_info: Optional[DeviceInfo] = None
        self.value: str = ""
        self.in_values: List[str] = []

    def __repr__(self) -> str:
        return (f"Condition(type={self.type!r}, operator={self.operator!r}, device_info={self.device_info!r}, "
                f"value={self.value!r}, in_values={self.in_values!r}, time={self.time!r}, "
                f"days_of_week={self.days_of_week!r}, start_time={self.start_time!r}, "
                f"repeat_interval={self.repeat_interval!r}, repeat_count={self.repeat_count!r})")
