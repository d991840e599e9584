"""Time helpers of the rule engine (upstream ``rule.util.time_util``).

All rule times are UTC. Platform week days are 1 = Sunday, 2 = Monday ... 7 = Saturday.
"""
from __future__ import annotations

import datetime as _dt
from typing import Callable, Optional, Set, Union

from iot_device_sdk_python.rule.model.time_range import TimeRange

Clock = Callable[[], _dt.datetime]


def utc_now() -> _dt.datetime:
    """The current time as an aware UTC datetime (the default rule clock)."""
    return _dt.datetime.now(_dt.timezone.utc)


def get_rule_week(week: Union[str, int]) -> int:
    """Map an ISO week day (``datetime.isoweekday()``: 1 = Monday ... 7 = Sunday, as int or str) to the
    platform's numbering (1 = Sunday ... 7 = Saturday). Raises ``ValueError`` outside 1..7."""
    iso = int(week)
    if not 1 <= iso <= 7:
        raise ValueError(f"week day out of range: {week!r}")
    return iso % 7 + 1


def platform_weekday(moment: _dt.datetime) -> int:
    """The platform week day (1 = Sunday ... 7 = Saturday) of ``moment`` in UTC."""
    return get_rule_week(_as_utc(moment).isoweekday())


def parse_hh_mm(text: str) -> int:
    """``"HH:MM"`` (two digits each, doc/protocol.md §3.8) -> minutes since midnight.

    Raises ``ValueError`` for anything else (``"7:05"``, ``" 07:05"``, ``"24:00"``, ...)."""
    if not isinstance(text, str):
        raise ValueError(f"time must be a string 'HH:MM', got {type(text).__name__}")
    parts = text.split(":")
    if len(parts) != 2 or not all(len(p) == 2 and p.isascii() and p.isdigit() for p in parts):
        raise ValueError(f"time must be 'HH:MM': {text!r}")
    hour, minute = int(parts[0]), int(parts[1])
    if hour > 23 or minute > 59:
        raise ValueError(f"time out of range: {text!r}")
    return hour * 60 + minute


def parse_days_of_week(text: Optional[str]) -> Set[int]:
    """``"1,2,7"`` -> ``{1, 2, 7}``; empty or None -> every day. Raises ``ValueError`` on bad or empty
    items (``"1,,2"``)."""
    if text is None:
        return set(range(1, 8))
    if isinstance(text, (list, tuple)):
        items = [str(x) for x in text]
    elif isinstance(text, (str, int)):
        items = str(text).split(",")
    else:
        raise ValueError(f"daysOfWeek must be a string like '1,2,7', got {type(text).__name__}")
    days = set()
    if items == [""]:
        return set(range(1, 8))
    for item in items:
        item = item.strip()
        if not (item.isascii() and item.isdigit()) or not 1 <= int(item) <= 7:
            raise ValueError(f"daysOfWeek item out of 1..7: {item!r}")
        days.add(int(item))
    return days or set(range(1, 8))


def validate_time_range(time_range: Optional[TimeRange]) -> None:
    """Raise ``ValueError`` when ``time_range`` cannot be evaluated."""
    if time_range is None:
        return
    parse_hh_mm(time_range.start_time)
    parse_hh_mm(time_range.end_time)
    parse_days_of_week(time_range.days_of_week)


def check_time_range(time_range: Optional[TimeRange], now: Optional[_dt.datetime] = None) -> bool:
    """True when ``now`` (default: the current UTC time) lies inside ``time_range``.

    No range means always. Both ends are inclusive, to the minute. A window whose end is before its start
    crosses midnight: the part after midnight belongs to the previous day's window, so its week day is the
    day the window started. An unreadable range is never satisfied.
    """
    if time_range is None:
        return True
    moment = _as_utc(now if now is not None else utc_now())
    try:
        start = parse_hh_mm(time_range.start_time)
        end = parse_hh_mm(time_range.end_time)
        days = parse_days_of_week(time_range.days_of_week)
    except ValueError:
        return False
    minute = moment.hour * 60 + moment.minute
    today = platform_weekday(moment)
    if start <= end:
        return start <= minute <= end and today in days
    if minute >= start:
        return today in days
    if minute <= end:
        yesterday = platform_weekday(moment - _dt.timedelta(days=1))
        return yesterday in days
    return False


def _as_utc(moment: _dt.datetime) -> _dt.datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=_dt.timezone.utc)
    return moment.astimezone(_dt.timezone.utc)
