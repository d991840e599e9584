"""The time window in which a rule may fire (upstream ``rule.model.time_range``)."""
from __future__ import annotations


class TimeRange:
    """``start_time``/``end_time`` ``"HH:MM"`` in UTC (a window may cross midnight) and ``days_of_week``
    ``"1,2,..."`` (1 = Sunday ... 7 = Saturday; for a window crossing midnight, the day it starts)."""

    def __init__(self) -> None:
        self.start_time: str = ""
        self.end_time: str = ""
        self.days_of_week: str = ""

    def __repr__(self) -> str:
        return f"TimeRange({self.start_time!r}-{self.end_time!r}, days={self.days_of_week!r})"
