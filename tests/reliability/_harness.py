"""Helpers for the reliability tests: a CONNECT gate on the emulator's access front and a QoS 1 stream tally."""
from __future__ import annotations

import json
import os
import threading
import time
from typing import Dict, List

from iot_device_sdk_python.client.request.service_property import ServiceProperty
from iot_device_sdk_python.protocol import codec, topics
from iot_device_sdk_python.transport.publish_handle import PublishHandle
from iotda_emulator import mqtt_packets as mp
from iotda_emulator.access_front import AuthDecision
from tests.waiting import wait_until  # noqa: F401 - re-exported for the reliability tests

SERVICE = "rel"


class AuthGate:
    """Wraps the access front's authenticator (the emulator's own CONNECT check): records every CONNECT
    attempt (time, client id, CONNACK code) and, while ``hold`` is set, answers accepted ones with
    CONNACK 3 "server unavailable" (the platform is down). ``restore()`` puts the original back."""

    def __init__(self, emulator):
        self._front = emulator.front
        self.inner = self._front.authenticator
        self.attempts: List[tuple] = []
        self.hold = threading.Event()
        self._lock = threading.Lock()
        self._front.authenticator = self

    def __call__(self, info, cert_der):
        decision = self.inner(info, cert_der)
        if self.hold.is_set() and decision.return_code == mp.ACCEPTED:
            decision = AuthDecision(mp.SERVER_UNAVAILABLE, reason="held by the test (platform down)")
        with self._lock:
            self.attempts.append((time.time(), info.client_id, decision.return_code))
        return decision

    def for_device(self, device_id: str) -> List[tuple]:
        with self._lock:
            return [a for a in self.attempts if a[1].startswith(device_id + "_0_")]

    def restore(self) -> None:
        self._front.authenticator = self.inner


class Stream:
    """Numbered QoS 1 property reports of one device, and the tally of what the platform received."""

    def __init__(self, device):
        self.device = device
        self.client = device.get_client()
        self.device_id = device.get_device_id()
        self.handles: List[PublishHandle] = []

    def send(self, count: int = 1, pause: float = 0.0) -> None:
        for _ in range(count):
            seq = len(self.handles)
            self.handles.append(self.client.report_properties([ServiceProperty(SERVICE, {"seq": seq})]))
            if pause:
                time.sleep(pause)

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until every handle is resolved (success or reported failure)."""
        wait_until(lambda: all(h.done() for h in self.handles), timeout, 0.05)

    def received(self, emulator) -> List[int]:
        out = []
        for e in emulator.trace(self.device_id, "up", topics.PROPERTIES_REPORT):
            try:
                for s in codec.loads_object(e.payload).get("services") or []:
                    if s.get("service_id") == SERVICE:
                        out.append(int(s["properties"]["seq"]))
            except (ValueError, KeyError, TypeError):
                continue
        return out

    def wait_delivered(self, emulator, timeout: float = 15.0) -> None:
        """Wait until every report whose handle succeeded shows up at the platform."""
        ok = {i for i, h in enumerate(self.handles) if h.succeeded()}
        wait_until(lambda: ok <= set(self.received(emulator)), timeout, 0.05)

    def tally(self, emulator) -> Dict[str, object]:
        """sent/delivered/duplicated/lost/failed; ``lost`` = neither received nor reported failed."""
        got = self.received(emulator)
        unique = set(got)
        failed = {i for i, h in enumerate(self.handles) if h.done() and not h.succeeded()}
        acked_missing = [i for i, h in enumerate(self.handles) if h.succeeded() and i not in unique]
        lost = [i for i in range(len(self.handles)) if i not in unique and i not in failed]
        first: List[int] = []
        seen = set()
        for s in got:
            if s not in seen:
                seen.add(s)
                first.append(s)
        return {"sent": len(self.handles), "delivered": len(unique), "duplicated": len(got) - len(unique),
                "lost": len(lost), "failed_reported": len(failed), "acked_but_missing": len(acked_missing),
                "in_order": first == sorted(first)}


def record_figures(name: str, figures: Dict[str, object]) -> None:
    """Append one scenario's figures to ``$RELIABILITY_FIGURES`` (JSON lines) when set (doc/reliability.md)."""
    path = os.environ.get("RELIABILITY_FIGURES")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(dict(scenario=name, **figures)) + "\n")


def assert_nothing_lost(tally: Dict[str, object]) -> None:
    assert tally["lost"] == 0, tally
    assert tally["acked_but_missing"] == 0, tally
    assert tally["in_order"], tally
