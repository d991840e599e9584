"""Timer conditions of one rule on the device's shared APScheduler (upstream ``rule.timer_rule.timer_rule``).

Upstream started one scheduler thread per rule and never stopped it; here every rule of a device adds
jobs to ONE scheduler owned by the rule service, and :meth:`TimerRuleInstance.shutdown_timer` removes
exactly this rule's jobs. In *manual* mode (tests, simulations) no job is added: the same APScheduler
triggers are stepped by :meth:`TimerRuleInstance.due_until` with a controllable clock.
"""
from __future__ import annotations

import datetime as _dt
import logging
import threading
import uuid
from typing import Any, Callable, List, Optional, Tuple

from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.date import DateTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

from iot_device_sdk_python.rule.model.connditions import Condition
from iot_device_sdk_python.rule.model.rule_info import RuleInfo
from iot_device_sdk_python.rule.rule_parser import DAILY_TIMER, SIMPLE_TIMER, parse_simple_timer_start
from iot_device_sdk_python.rule.util import time_util

_logger = logging.getLogger(__name__)

UTC = _dt.timezone.utc
# platform day (1 = Sunday ... 7 = Saturday) -> cron day name (names avoid APScheduler's Monday=0 numbering)
_CRON_DAY = {1: "sun", 2: "mon", 3: "tue", 4: "wed", 5: "thu", 6: "fri", 7: "sat"}
#: how late (s) a timer may still fire, e.g. after the machine was suspended
MISFIRE_GRACE_SECONDS = 60

FireCallback = Callable[[str, _dt.datetime], None]


def build_trigger(condition: Condition) -> Any:
    """The APScheduler trigger for a DAILY_TIMER or SIMPLE_TIMER condition (UTC)."""
    if condition.type == DAILY_TIMER:
        minutes = time_util.parse_hh_mm(condition.time)
        days = sorted(time_util.parse_days_of_week(condition.days_of_week))
        return CronTrigger(day_of_week=",".join(_CRON_DAY[d] for d in days), hour=minutes // 60,
                           minute=minutes % 60, second=0, timezone=UTC)
    if condition.type == SIMPLE_TIMER:
        start = parse_simple_timer_start(condition.start_time)
        count = int(condition.repeat_count or 1)
        interval = int(condition.repeat_interval or 0)
        if count <= 1 or interval <= 0:
            return DateTrigger(run_date=start, timezone=UTC)
        end = start + _dt.timedelta(seconds=interval * (count - 1))
        return IntervalTrigger(seconds=interval, start_date=start, end_date=end, timezone=UTC)
    raise ValueError(f"not a timer condition: {condition.type!r}")


class _Entry:
    __slots__ = ("trigger", "next_time", "job_id")

    def __init__(self, trigger: Any, job_id: str) -> None:
        self.trigger = trigger
        self.next_time: Optional[_dt.datetime] = None
        self.job_id = job_id


class TimerRuleInstance:
    """The timer jobs of one rule.

    ``scheduler`` is the device's APScheduler ``BackgroundScheduler`` (None = manual mode);
    ``on_fire(rule_id, fire_time)`` is called for each firing (on the scheduler thread in real mode);
    ``clock`` returns the current aware UTC time.
    """

    def __init__(self, device_client: Any = None, scheduler: Any = None, on_fire: Optional[FireCallback] = None,
                 clock: Optional[Callable[[], _dt.datetime]] = None) -> None:
        self._device_client = device_client
        self._scheduler = scheduler
        self._on_fire = on_fire
        self._clock = clock or time_util.utc_now
        self._rule_id = ""
        self._entries: List[_Entry] = []
        self._lock = threading.Lock()
        self._started = False

    @property
    def rule_id(self) -> str:
        return self._rule_id

    def submit_rule(self, rule_info: RuleInfo) -> None:
        """Build the triggers of every timer condition of ``rule_info`` (raises ``ValueError`` if one is bad)."""
        entries = []
        tag = uuid.uuid4().hex[:8]
        for i, cond in enumerate(rule_info.conditions):
            if cond.type in (DAILY_TIMER, SIMPLE_TIMER):
                entries.append(_Entry(build_trigger(cond), f"rule:{rule_info.rule_id}:{i}:{tag}"))
        with self._lock:
            self._rule_id = rule_info.rule_id
            self._entries = entries

    def start(self) -> None:
        """Arm the timers: add the jobs to the scheduler, or compute the first due time in manual mode."""
        now = self._clock()
        with self._lock:
            if self._started:
                return
            self._started = True
            for entry in self._entries:
                if self._scheduler is None:
                    first = entry.trigger.get_next_fire_time(None, now)
                    if first is not None and (now - first).total_seconds() > MISFIRE_GRACE_SECONDS:
                        first = None  # a one-shot time long gone: the scheduler would skip it as well
                    entry.next_time = first
                else:
                    self._scheduler.add_job(self._run_job, trigger=entry.trigger, id=entry.job_id,
                                            name=entry.job_id, misfire_grace_time=MISFIRE_GRACE_SECONDS,
                                            coalesce=True, max_instances=1, replace_existing=True)

    def shutdown_timer(self) -> None:
        """Stop this rule's timers (the shared scheduler keeps running for the other rules)."""
        with self._lock:
            entries, self._entries = self._entries, []
            started, self._started = self._started, False
        if self._scheduler is None or not started:
            return
        for entry in entries:
            try:
                self._scheduler.remove_job(entry.job_id)
            except Exception:  # JobLookupError: already finished (one-shot) or scheduler stopped
                pass

    def next_fire_time(self) -> Optional[_dt.datetime]:
        """The earliest next firing of this rule (manual mode), or None."""
        with self._lock:
            times = [e.next_time for e in self._entries if e.next_time is not None]
        return min(times) if times else None

    def due_until(self, until: _dt.datetime) -> List[Tuple[_dt.datetime, "TimerRuleInstance"]]:
        """Manual mode: pop every firing at or before ``until`` (in time order) and return it.

        The caller runs them (``fire(time)``), so firings of several rules can be merged in order.
        """
        due = []
        with self._lock:
            for entry in self._entries:
                while entry.next_time is not None and entry.next_time <= until:
                    due.append((entry.next_time, self))
                    prev = entry.next_time
                    entry.next_time = entry.trigger.get_next_fire_time(prev, prev)
        due.sort(key=lambda item: item[0])
        return due

    def fire(self, fire_time: Optional[_dt.datetime] = None) -> None:
        """Run the rule's firing callback now (used by the scheduler job and by manual stepping)."""
        if self._on_fire is None:
            return
        try:
            self._on_fire(self._rule_id, fire_time or self._clock())
        except Exception:
            _logger.exception("timer rule %s failed", self._rule_id)

    def _run_job(self) -> None:
        self.fire(self._clock())


def execute_task() -> None:
    """Kept for upstream compatibility (unused there as well)."""
    return None
