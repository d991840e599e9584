"""The on-device rule engine, system service ``$device_rule`` (upstream ``rule.rule_manage_service``).

Flow (``doc/protocol.md`` §3.8):

1. The platform sets properties of ``$device_rule`` as ``{ruleId: {"version": n}}`` (``-1`` = deleted):
   :meth:`RuleManageService.on_write` records the ids, drops deleted rules (and their timers) and asks for
   the rules with a ``device_rule_config_request`` event ``{ruleIds, delIds}``.
2. The platform answers ``device_rule_config_response`` with ``rulesInfos``: :meth:`on_event` parses each
   rule on its own (a bad rule is rejected with one log line, the others keep running), drops inactive ones
   and arms timer conditions on the device's single scheduler.
3. DEVICE_DATA conditions are checked by :meth:`handle_rule` each time the device reports properties
   (``DeviceClient.report_properties`` calls it); DAILY_TIMER / SIMPLE_TIMER conditions fire from the scheduler.
4. A fired rule's actions go to ``DeviceClient.on_rule_action_handler``: the user's ``ActionHandler`` if one is
   set, otherwise each command action runs like a platform command (CommandListener, else the profile service).

Times are UTC. For tests, :meth:`set_clock` injects a clock and switches timers to manual stepping with
:meth:`run_due_timers`.
"""
from __future__ import annotations

import datetime as _dt
import logging
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

from iot_device_sdk_python.client.iot_result import IotResult
from iot_device_sdk_python.client.request.command import Command
from iot_device_sdk_python.client.request.command_response import CommandRsp
from iot_device_sdk_python.client.request.device_event import DeviceEvent
from iot_device_sdk_python.client.request.service_property import ServiceProperty
from iot_device_sdk_python.rule.model.actions import Action
from iot_device_sdk_python.rule.model.condition_execute import DEVICE_DATA, ConditionExecute
from iot_device_sdk_python.rule.model.rule_info import RuleInfo
from iot_device_sdk_python.rule.rule_parser import (
    STATUS_ACTIVE, STATUS_INACTIVE, TIMER_TYPES, RuleParseError, parse_rule, parse_version)
from iot_device_sdk_python.rule.timer_rule.timer_rule import TimerRuleInstance
from iot_device_sdk_python.rule.util import time_util
from iot_device_sdk_python.service.abstract_service import AbstractService

if TYPE_CHECKING:
    from iot_device_sdk_python.client.device_client import DeviceClient

_logger = logging.getLogger(__name__)

SERVICE_ID = "$device_rule"
EVENT_CONFIG_REQUEST = "device_rule_config_request"
EVENT_CONFIG_RESPONSE = "device_rule_config_response"
DELETED_VERSION = -1


class RuleManageService(AbstractService):
    """System service ``$device_rule``: keeps the device's rules and runs them.

    Created by ``AbstractDevice`` with its ``DeviceClient``; inactive unless
    ``ConnectAuthInfo.enable_rule_manage`` is True. Thread-safe: rules arrive on the dispatcher thread,
    data rules run on the reporting thread, timer rules on the scheduler thread.
    """

    def __init__(self, device_client: "DeviceClient") -> None:
        super().__init__()
        self._device_client = device_client
        self._lock = threading.RLock()
        self._rule_id_list: List[str] = []                 # every id the platform announced (not deleted)
        self._rule_info: Dict[str, RuleInfo] = {}          # active, parsed rules
        self._timer_rule_dict: Dict[str, TimerRuleInstance] = {}
        self._announced_versions: Dict[str, int] = {}
        self._condition_execute = ConditionExecute()
        self._clock: Callable[[], _dt.datetime] = time_util.utc_now
        self._manual_timers = False
        self._scheduler: Any = None  # APScheduler BackgroundScheduler (untyped library)
        self._own_scheduler = False
        self._closed = False

    # ---- configuration -----------------------------------------------------------------------

    def set_clock(self, clock: Callable[[], _dt.datetime], manual_timers: bool = True) -> None:
        """Use ``clock`` (returning an aware UTC datetime) for time ranges and timers.

        With ``manual_timers`` (the default) no scheduler job is created: timers fire only when
        :meth:`run_due_timers` is called, which makes timer behaviour testable at any simulated time.
        Existing timers are re-armed against the new clock.
        """
        with self._lock:
            self._clock = clock
            self._manual_timers = manual_timers
            rules = [self._rule_info[rid] for rid in list(self._timer_rule_dict) if rid in self._rule_info]
            for rid in list(self._timer_rule_dict):
                self._stop_timer_locked(rid)
            for rule in rules:
                self._submit_timer_rule(rule)

    def now(self) -> _dt.datetime:
        """The rule engine's current UTC time."""
        return self._clock()

    def get_rules(self) -> Dict[str, RuleInfo]:
        """A copy of the active rules by id."""
        with self._lock:
            return dict(self._rule_info)

    def get_rule(self, rule_id: str) -> Optional[RuleInfo]:
        """The active rule ``rule_id``, or None."""
        with self._lock:
            return self._rule_info.get(rule_id)

    def is_enabled(self) -> bool:
        """True when ``ConnectAuthInfo.enable_rule_manage`` is on."""
        client = self._device_client
        fn = getattr(client, "enable_rule_manage", None)
        try:
            if callable(fn):
                return bool(fn())
        except Exception:  # pragma: no cover - defensive: a broken client must not break the service
            _logger.debug("enable_rule_manage() failed", exc_info=True)
        info = getattr(client, "connect_auth_info", None) or getattr(client, "_connect_auth_info", None)
        return bool(getattr(info, "enable_rule_manage", False))

    # ---- IService ------------------------------------------------------------------------------

    def on_read(self, properties: List[str]) -> Dict[str, Any]:
        """``$device_rule`` has no readable properties."""
        return {}

    def on_command(self, command: Command) -> CommandRsp:
        """``$device_rule`` has no commands."""
        rsp = CommandRsp()
        rsp.result_code = CommandRsp.fail_code()
        rsp.paras = {"error": "command not found: " + str(getattr(command, "command_name", ""))}
        return rsp

    def on_write(self, properties: Dict[str, Any]) -> IotResult:
        """Property set ``{ruleId: {"version": n}}`` from the platform; always answered SUCCESS.

        Deleted rules (version -1) stop at once; then a ``device_rule_config_request`` asks for the rules.
        Malformed entries are skipped with a WARNING.
        """
        from iot_device_sdk_python.client import iot_result

        if not self.is_enabled():
            return iot_result.SUCCESS
        if not isinstance(properties, dict):
            _logger.warning("$device_rule property set ignored: properties is not an object")
            return iot_result.SUCCESS
        del_ids: List[str] = []
        with self._lock:
            for rule_id, info in properties.items():
                version = parse_version(info.get("version")) if isinstance(info, dict) else None
                if not isinstance(rule_id, str) or not rule_id or version is None:
                    _logger.warning("$device_rule property set: entry %r skipped (expected {\"version\": int})",
                                    rule_id)
                    continue
                if version == DELETED_VERSION:
                    if rule_id in self._rule_id_list:
                        self._rule_id_list.remove(rule_id)
                    self._announced_versions.pop(rule_id, None)
                    self._remove_rule_locked(rule_id)
                    del_ids.append(rule_id)
                    _logger.info("device rule %s deleted", rule_id)
                else:
                    if rule_id not in self._rule_id_list:
                        self._rule_id_list.append(rule_id)
                    self._announced_versions[rule_id] = version
            rule_ids = list(self._rule_id_list)
        if rule_ids or del_ids:
            self._request_rules(rule_ids, del_ids)
        return iot_result.SUCCESS

    def on_event(self, device_event: DeviceEvent) -> None:
        """Handle ``device_rule_config_response`` (other events of ``$device_rule`` are logged and ignored)."""
        service_id = getattr(device_event, "service_id", None)
        event_type = getattr(device_event, "event_type", None)
        if service_id != SERVICE_ID or event_type != EVENT_CONFIG_RESPONSE:
            _logger.info("$device_rule event ignored: %s/%s", service_id, event_type)
            return
        if not self.is_enabled():
            _logger.debug("rule engine disabled: %s ignored", event_type)
            return
        paras = getattr(device_event, "paras", None)
        rules = paras.get("rulesInfos") if isinstance(paras, dict) else None
        if not isinstance(rules, list):
            _logger.warning("device_rule_config_response without a rulesInfos list: ignored")
            return
        for raw in rules:
            self._apply_rule(raw)

    # ---- rule evaluation -------------------------------------------------------------------------

    def handle_rule(self, services: List[ServiceProperty]) -> None:
        """Check every active DEVICE_DATA rule against the properties being reported; fire those that hold.

        Never raises: a failing rule is logged and the others still run.
        """
        if self._closed or not self.is_enabled():
            return
        with self._lock:
            rules = list(self._rule_info.values())
        if not rules:
            return
        now = self._clock()
        self._condition_execute.device_id = self._own_device_id()
        for rule in rules:
            try:
                data_conditions = [c for c in rule.conditions if c.type == DEVICE_DATA]
                if not data_conditions or rule.status != STATUS_ACTIVE:
                    continue
                if not time_util.check_time_range(rule.time_range, now):
                    continue
                results = (self._condition_execute.is_condition_satisfied(c, services) for c in data_conditions)
                satisfied = any(results) if rule.logic == "or" else all(results)
                if satisfied:
                    self._fire(rule, "data")
            except Exception:
                _logger.exception("device rule %s evaluation failed", rule.rule_id)

    def handle_action(self, action: Action) -> None:
        """Run one action as a fired rule would."""
        self._dispatch([action])

    def run_due_timers(self, until: Optional[_dt.datetime] = None) -> int:
        """Manual timers (see :meth:`set_clock`): fire, in time order, every timer firing due at or before
        ``until`` (default: the clock's now). Returns the number of timer firings processed."""
        until = until or self._clock()
        with self._lock:
            instances = list(self._timer_rule_dict.values())
        due = []
        for inst in instances:
            due.extend(inst.due_until(until))
        due.sort(key=lambda item: item[0])
        for fire_time, inst in due:
            inst.fire(fire_time)
        return len(due)

    def next_timer_fire_time(self) -> Optional[_dt.datetime]:
        """Manual timers: the earliest pending firing of any rule, or None."""
        with self._lock:
            times = [t for t in (i.next_fire_time() for i in self._timer_rule_dict.values()) if t]
        return min(times) if times else None

    def close(self) -> None:
        """Stop every timer and the scheduler this service created (called when the device is destroyed)."""
        with self._lock:
            self._closed = True
            for rid in list(self._timer_rule_dict):
                self._stop_timer_locked(rid)
            scheduler, own = self._scheduler, self._own_scheduler
            self._scheduler, self._own_scheduler = None, False
        if scheduler is not None and own:
            try:
                scheduler.shutdown(wait=False)
            except Exception:
                _logger.debug("rule scheduler shutdown failed", exc_info=True)

    # upstream-compatible alias, and the hook AbstractDevice.destroy() calls on every service
    shutdown = close
    on_destroy = close

    # ---- internals ---------------------------------------------------------------------------------

    def _apply_rule(self, raw: Any) -> None:
        rule_id = raw.get("ruleId") if isinstance(raw, dict) else None
        try:
            rule = parse_rule(raw)
        except RuleParseError as exc:
            _logger.warning("device rule %r rejected: %s", rule_id, exc)
            with self._lock:
                if isinstance(rule_id, str):
                    self._remove_rule_locked(rule_id)  # never keep running an outdated version of it
            return
        except Exception as exc:  # e.g. the SDK core's Command class refusing a value
            _logger.warning("device rule %r rejected: %s", rule_id, exc)
            return
        with self._lock:
            if self._closed:
                return
            if rule.rule_id not in self._rule_id_list:
                _logger.info("device rule %s ignored: not announced or already deleted", rule.rule_id)
                return
            if rule.status == STATUS_INACTIVE:
                if rule.rule_id in self._rule_info:
                    _logger.info("device rule %s deactivated", rule.rule_id)
                self._remove_rule_locked(rule.rule_id)
                return
            current = self._rule_info.get(rule.rule_id)
            if current is not None and current.rule_version_in_shadow >= rule.rule_version_in_shadow > 0:
                _logger.debug("device rule %s version %s already applied", rule.rule_id,
                              rule.rule_version_in_shadow)
                return
            self._remove_rule_locked(rule.rule_id)
            self._rule_info[rule.rule_id] = rule
            try:
                if any(c.type in TIMER_TYPES for c in rule.conditions):
                    self._submit_timer_rule(rule)
            except Exception as exc:
                self._rule_info.pop(rule.rule_id, None)
                _logger.warning("device rule %s rejected: timer cannot be scheduled: %s", rule.rule_id, exc)
                return
        _logger.info("device rule %s (%s) version %s active", rule.rule_id, rule.rule_name,
                     rule.rule_version_in_shadow)

    def _submit_timer_rule(self, rule_info: RuleInfo) -> None:
        """Arm the timer conditions of ``rule_info`` (caller holds the lock)."""
        scheduler = None if self._manual_timers else self._get_scheduler()
        inst = TimerRuleInstance(self._device_client, scheduler=scheduler, on_fire=self._on_timer,
                                 clock=self._clock)
        inst.submit_rule(rule_info)
        inst.start()
        self._timer_rule_dict[rule_info.rule_id] = inst

    def _remove_rule_locked(self, rule_id: str) -> None:
        self._rule_info.pop(rule_id, None)
        self._stop_timer_locked(rule_id)

    def _stop_timer_locked(self, rule_id: str) -> None:
        inst = self._timer_rule_dict.pop(rule_id, None)
        if inst is not None:
            inst.shutdown_timer()

    def _on_timer(self, rule_id: str, fire_time: _dt.datetime) -> None:
        if self._closed or not self.is_enabled():
            return
        with self._lock:
            rule = self._rule_info.get(rule_id)
            if rule is None or self._timer_rule_dict.get(rule_id) is None:
                return
        if rule.status != STATUS_ACTIVE:
            return
        if not time_util.check_time_range(rule.time_range, fire_time):
            _logger.debug("timer of device rule %s outside its time range", rule_id)
            return
        self._fire(rule, "timer")

    def _fire(self, rule: RuleInfo, source: str) -> None:
        actions = [a for a in rule.actions if a.is_enabled()]
        _logger.info("device rule %s fired (%s): %d action(s)", rule.rule_id, source, len(actions))
        if actions:
            self._dispatch(actions)

    def _dispatch(self, actions: List[Action]) -> None:
        fn = getattr(self._device_client, "on_rule_action_handler", None)
        if not callable(fn):
            _logger.warning("device client cannot run rule actions; %d dropped", len(actions))
            return
        try:
            fn(actions)
        except Exception:
            _logger.exception("rule actions failed")

    def _request_rules(self, rule_ids: List[str], del_ids: List[str]) -> None:
        from iot_device_sdk_python.client.request.device_event import DeviceEvent
        from iot_device_sdk_python.protocol import codec

        event = DeviceEvent()
        event.service_id = SERVICE_ID
        event.event_type = EVENT_CONFIG_REQUEST
        event.event_time = codec.event_time()
        event.paras = {"ruleIds": rule_ids, "delIds": del_ids}
        try:
            self._device_client.report_event(event)
        except Exception:
            _logger.exception("device_rule_config_request could not be sent")

    def _own_device_id(self) -> Optional[str]:
        device = None
        getter = getattr(self, "get_iot_device", None)
        if callable(getter):
            try:
                device = getter()
            except Exception:
                device = None
        device = device or getattr(self, "_iot_device", None)
        if device is not None and callable(getattr(device, "get_device_id", None)):
            own: Optional[str] = device.get_device_id()
            return own
        info = getattr(self._device_client, "_connect_auth_info", None)
        own = getattr(info, "id", None)
        return own

    def _get_scheduler(self) -> Any:
        """The device's single scheduler: the SDK core's if it exposes one, else one created here (lazily)."""
        if self._scheduler is not None:
            return self._scheduler
        shared = None
        for owner in (getattr(self, "_iot_device", None), self._device_client):
            getter = getattr(owner, "get_scheduler", None)
            if callable(getter):
                try:
                    shared = getter()
                except Exception:
                    shared = None
                if shared is not None:
                    break
        if shared is not None:
            self._scheduler, self._own_scheduler = shared, False
        else:
            from apscheduler.schedulers.background import BackgroundScheduler  # type: ignore[import-untyped]
            scheduler = BackgroundScheduler(daemon=True, timezone=_dt.timezone.utc)
            scheduler.start()
            self._scheduler, self._own_scheduler = scheduler, True
        return self._scheduler
