"""Platform side of ``$device_rule``: device-side rules (``doc/protocol.md`` §3.8).

The emulator keeps each device's rules (sqlite table ``device_rules``), tells the device their ids and
versions by a property set on service ``$device_rule`` (``{ruleId: {"version": n}}``, ``-1`` = deleted)
and answers the device's ``device_rule_config_request`` with ``device_rule_config_response``
``{rulesInfos: [...]}``. Rules are stored as given (the device must cope with bad ones).

Python API (``emu.service("$device_rule")``): :meth:`create_rule`, :meth:`update_rule`, :meth:`delete_rule`,
:meth:`activate_rule`, :meth:`deactivate_rule`, :meth:`get_rule`, :meth:`list_rules`, :meth:`push_rules`,
:attr:`requests` (every config request received).
"""
from __future__ import annotations

import copy
import json
import logging
import threading
import time
import uuid
from typing import Any, Dict, List, Optional

from iotda_emulator.services.base import PlatformService

_logger = logging.getLogger(__name__)

SERVICE_ID = "$device_rule"
EVENT_CONFIG_REQUEST = "device_rule_config_request"
EVENT_CONFIG_RESPONSE = "device_rule_config_response"
DELETED_VERSION = -1
RULE_ACTIVE, RULE_INACTIVE = "active", "inactive"      # a rule's status
ACTION_ENABLED, ACTION_DISABLED = "enable", "disable"  # an action's status

_SCHEMA = """
CREATE TABLE IF NOT EXISTS device_rules (
    device_id TEXT NOT NULL,
    rule_id   TEXT NOT NULL,
    version   INTEGER NOT NULL,
    body      TEXT NOT NULL,
    PRIMARY KEY (device_id, rule_id)
)
"""


def _as_served(rule: dict) -> dict:
    """A copy of ``rule`` as IoTDA serves it: every action object carries ``status`` (``enable`` unless
    given; an action's status is enable/disable while the rule's own is active/inactive, §3.8). Anything
    else is kept as given, bad values included: devices must cope with them."""
    body = copy.deepcopy(rule)
    actions = body.get("actions")
    if isinstance(actions, list):
        for action in actions:
            if isinstance(action, dict):
                action.setdefault("status", ACTION_ENABLED)
    return body


class DeviceRuleService(PlatformService):
    """Stores device rules and serves them to devices."""

    service_ids = (SERVICE_ID,)

    def __init__(self, core) -> None:
        super().__init__(core)
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self.requests: List[Dict[str, Any]] = []   # {"device_id", "ruleIds", "delIds", "time"}
        core.db.execute(_SCHEMA)

    # ---- Python API ----------------------------------------------------------------------------

    def create_rule(self, device_id: str, rule: dict, push: bool = True) -> str:
        """Add a rule for ``device_id`` (``rule`` in the platform's rulesInfos shape; ``ruleId`` optional).

        Returns the rule id. The device is told at once when online (else when it connects).
        """
        if not isinstance(rule, dict):
            raise TypeError("rule must be a dict")
        rule_id = str(rule.get("ruleId") or uuid.uuid4().hex[:16])
        with self._lock:
            if self._row(device_id, rule_id) is not None:
                raise ValueError(f"rule {rule_id} already exists for {device_id}")
            body = _as_served(rule)
            body["ruleId"] = rule_id
            body.setdefault("status", RULE_ACTIVE)
            self._save(device_id, rule_id, 1, body)
        if push:
            self.push_rules(device_id, [rule_id])
        return rule_id

    def update_rule(self, device_id: str, rule_id: str, rule: dict, push: bool = True) -> int:
        """Replace a rule's body (its id is kept) and bump its version; returns the new version."""
        if not isinstance(rule, dict):
            raise TypeError("rule must be a dict")
        with self._lock:
            row = self._require(device_id, rule_id)
            body = _as_served(rule)
            body["ruleId"] = rule_id
            body.setdefault("status", json.loads(row["body"]).get("status", RULE_ACTIVE))
            version = int(row["version"]) + 1
            self._save(device_id, rule_id, version, body)
        if push:
            self.push_rules(device_id, [rule_id])
        return version

    def activate_rule(self, device_id: str, rule_id: str, active: bool = True, push: bool = True) -> int:
        """Set a rule's status to ``active`` (or ``inactive``); returns the new version."""
        with self._lock:
            row = self._require(device_id, rule_id)
            body = json.loads(row["body"])
            body["status"] = RULE_ACTIVE if active else RULE_INACTIVE
            version = int(row["version"]) + 1
            self._save(device_id, rule_id, version, body)
        if push:
            self.push_rules(device_id, [rule_id])
        return version

    def deactivate_rule(self, device_id: str, rule_id: str, push: bool = True) -> int:
        """Set a rule's status to ``inactive``; returns the new version."""
        return self.activate_rule(device_id, rule_id, active=False, push=push)

    def delete_rule(self, device_id: str, rule_id: str, push: bool = True) -> None:
        """Delete a rule; the device is told with version -1."""
        with self._lock:
            self._require(device_id, rule_id)
            self.core.db.execute("DELETE FROM device_rules WHERE device_id=? AND rule_id=?", (device_id, rule_id))
        if push:
            self._submit_push(device_id, {rule_id: {"version": DELETED_VERSION}})

    def get_rule(self, device_id: str, rule_id: str) -> Optional[dict]:
        """The rule as served to the device (with ``ruleVersionInShadow``), or None."""
        row = self._row(device_id, rule_id)
        return self._served(row) if row is not None else None

    def list_rules(self, device_id: str) -> List[dict]:
        """Every rule of ``device_id`` as served to the device."""
        rows = self.core.db.query("SELECT * FROM device_rules WHERE device_id=? ORDER BY rule_id", (device_id,))
        return [self._served(r) for r in rows]

    def push_rules(self, device_id: str, rule_ids: Optional[List[str]] = None) -> None:
        """Send the ids and versions of ``rule_ids`` (default: all rules of the device) by a property set
        on ``$device_rule``, from the core's worker pool (never blocks the caller)."""
        rows = self.core.db.query("SELECT rule_id, version FROM device_rules WHERE device_id=?", (device_id,))
        versions = {r["rule_id"]: {"version": int(r["version"])} for r in rows
                    if rule_ids is None or r["rule_id"] in rule_ids}
        if versions:
            self._submit_push(device_id, versions)

    def wait_for_request(self, predicate=None, timeout: float = 10.0) -> Dict[str, Any]:
        """Block until a config request matching ``predicate(request_dict)`` has arrived (TimeoutError)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for req in self.requests:
                    if predicate is None or predicate(req):
                        return req
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no matching device_rule_config_request")
                self._cond.wait(left)

    # ---- PlatformService ---------------------------------------------------------------------------

    def on_event(self, device_id: str, object_device_id: Optional[str], event: dict) -> None:
        if not isinstance(event, dict) or event.get("event_type") != EVENT_CONFIG_REQUEST:
            _logger.info("$device_rule event from %s ignored: %r", device_id,
                         event.get("event_type") if isinstance(event, dict) else None)
            return
        target = object_device_id or device_id
        paras = event.get("paras")
        if not isinstance(paras, dict):
            _logger.warning("device_rule_config_request from %s without paras", device_id)
            paras = {}
        rule_ids = paras.get("ruleIds") if isinstance(paras.get("ruleIds"), list) else []
        del_ids = paras.get("delIds") if isinstance(paras.get("delIds"), list) else []
        with self._cond:
            self.requests.append({"device_id": target, "ruleIds": list(rule_ids), "delIds": list(del_ids),
                                  "time": time.time()})
            self._cond.notify_all()
        infos = []
        for rid in rule_ids:
            if not isinstance(rid, str):
                continue
            row = self._row(target, rid)
            if row is not None:
                infos.append(self._served(row))
        self.core.submit(self._send_response, device_id, object_device_id, infos)

    def on_device_online(self, device_id: str) -> None:
        # like the platform's shadow: a (re)connected device learns its rules again
        self.push_rules(device_id)

    def describe(self) -> Any:
        rows = self.core.db.query("SELECT device_id, COUNT(*) AS n FROM device_rules GROUP BY device_id")
        return {r["device_id"]: int(r["n"]) for r in rows}

    # ---- internals --------------------------------------------------------------------------------

    def _send_response(self, device_id: str, object_device_id: Optional[str], infos: List[dict]) -> None:
        try:
            self.core.send_event(device_id, SERVICE_ID, EVENT_CONFIG_RESPONSE, {"rulesInfos": infos},
                                 object_device_id=object_device_id)
        except Exception as exc:
            _logger.warning("device_rule_config_response to %s not sent: %s", device_id, exc)

    def _submit_push(self, device_id: str, versions: Dict[str, dict]) -> None:
        self.core.submit(self._push, device_id, versions)

    def _push(self, device_id: str, versions: Dict[str, dict]) -> None:
        try:
            if not self.core.emulator.is_online(device_id):
                return  # pushed again by on_device_online
        except Exception:
            pass
        try:
            self.core.set_properties(device_id, [{"service_id": SERVICE_ID, "properties": versions}])
        except Exception as exc:
            _logger.info("$device_rule versions not delivered to %s: %s", device_id, exc)

    def _row(self, device_id: str, rule_id: str):
        rows = self.core.db.query("SELECT * FROM device_rules WHERE device_id=? AND rule_id=?", (device_id, rule_id))
        return rows[0] if rows else None

    def _require(self, device_id: str, rule_id: str):
        row = self._row(device_id, rule_id)
        if row is None:
            raise KeyError(f"no rule {rule_id} for device {device_id}")
        return row

    def _save(self, device_id: str, rule_id: str, version: int, body: dict) -> None:
        self.core.db.execute(
            "INSERT OR REPLACE INTO device_rules(device_id, rule_id, version, body) VALUES (?,?,?,?)",
            (device_id, rule_id, version, json.dumps(body)))

    @staticmethod
    def _served(row) -> dict:
        body = json.loads(row["body"])
        body["ruleVersionInShadow"] = int(row["version"])
        return body
