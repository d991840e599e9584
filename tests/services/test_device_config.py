"""Remote configuration (``$device_config``, doc/protocol.md §3.7) end to end: tasks created over the emulator's
REST API, pushed to SDK devices, applied by a DeviceConfigListener, results recorded per device."""
from __future__ import annotations

import threading
import time
import uuid

import requests

from iot_device_sdk_python import DeviceConfigListener, IotResult
from iot_device_sdk_python.service.abstract_service import AbstractService
from tests.waiting import wait_until


class Applier(DeviceConfigListener):
    def __init__(self, result=None, raises=False, gate=None):
        self.configs = []
        self.result = result if result is not None else IotResult(0, "applied")
        self.raises = raises
        self.event = threading.Event()
        self.gate = gate   # when given, the answer waits for it (the test decides when devices answer)

    def on_config_update(self, config_content):
        self.configs.append(config_content)
        self.event.set()
        if self.gate is not None:
            self.gate.wait(30)
        if self.raises:
            raise RuntimeError("flash is read-only")
        return self.result


class Silent(AbstractService):
    """Replaces the SDK's $device_config service: records config_update and never answers."""

    def __init__(self):
        super().__init__()
        self.events = []

    def on_event(self, device_event):
        self.events.append((device_event.event_type, device_event.event_id, dict(device_event.paras)))


def _url(emulator, path=""):
    return f"http://{emulator.host}:{emulator.http_port}/v5/iot/emu-project/device-config-tasks{path}"


def _create(emulator, content, targets, **extra):
    resp = requests.post(_url(emulator), json=dict(config_content=content, targets=targets, **extra), timeout=10)
    assert resp.status_code == 201, resp.text
    return resp.json()


def _show(emulator, task_id):
    resp = requests.get(_url(emulator, f"/{task_id}"), timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def _details(view):
    return {d["device_id"]: d for d in view["task_details"]}


def test_config_pushed_applied_and_reported_per_device(emulator, make_device):
    ok_dev, bad_dev = make_device(emulator), make_device(emulator)
    answer = threading.Event()   # devices answer only after the create's answer is read: it must say Processing
    ok, bad = Applier(gate=answer), Applier(IotResult(3, "unknown key 'baud'"), gate=answer)
    ok_dev.get_device_config_service().set_listener(ok)
    bad_dev.get_device_config_service().set_listener(bad)
    content = {"baud": 9600, "server": {"host": "example.org", "port": 5683}}
    try:
        task = _create(emulator, content, [ok_dev.get_device_id(), bad_dev.get_device_id()], task_name="serial",
                       timeout=2)
    finally:
        answer.set()
    assert task["status"] == "Processing" and task["timeout"] == 2 and task["task_name"] == "serial"
    assert {d["status"] for d in task["task_details"]} <= {"WAITING", "PROCESSING"}, task["task_details"]
    view = emulator.service("$device_config").wait_task(task["task_id"], timeout=15)
    assert ok.configs == [content] and bad.configs == [content]
    assert view["status"] == "PartialSuccess"
    details = _details(_show(emulator, task["task_id"]))
    assert details[ok_dev.get_device_id()]["status"] == "SUCCESS"
    assert details[ok_dev.get_device_id()]["result_code"] == 0
    assert details[bad_dev.get_device_id()]["status"] == "FAILED"
    assert details[bad_dev.get_device_id()]["result_code"] == 3
    assert details[bad_dev.get_device_id()]["description"] == "unknown key 'baud'"
    # on the wire: config_update down, config_update_response up echoing the event id
    down = emulator.core.trace(device_id=ok_dev.get_device_id(), direction="down", kind="events_down")
    up = emulator.core.trace(device_id=ok_dev.get_device_id(), direction="up", kind="events_up")
    sent = [e.json()["services"][0] for e in down if e.json()["services"][0]["service_id"] == "$device_config"]
    answered = [e.json()["services"][0] for e in up if e.json()["services"][0]["service_id"] == "$device_config"]
    assert sent[0]["event_type"] == "config_update" and sent[0]["paras"] == {"config_content": content}
    assert answered[0]["event_type"] == "config_update_response"
    assert answered[0]["paras"] == {"result_code": 0, "description": "applied"}
    assert answered[0]["event_id"] == sent[0]["event_id"]


def test_offline_device_gets_the_config_when_it_connects(emulator, make_device):
    device = make_device(emulator, connect=False)
    applier = Applier()
    device.get_device_config_service().set_listener(applier)
    task = _create(emulator, {"interval": 30}, [device.get_device_id()])
    assert _details(_show(emulator, task["task_id"]))[device.get_device_id()]["status"] == "WAITING"
    assert device.connect() == 0
    view = emulator.service("$device_config").wait_task(task["task_id"], timeout=15)
    assert view["status"] == "Success" and applier.configs == [{"interval": 30}]


def test_listener_missing_or_raising_answers_a_failure(emulator, make_device):
    no_listener, raising = make_device(emulator), make_device(emulator)
    raising.get_device_config_service().set_listener(Applier(raises=True))
    task = _create(emulator, {"a": 1}, [no_listener.get_device_id(), raising.get_device_id()])
    view = emulator.service("$device_config").wait_task(task["task_id"], timeout=15)
    assert view["status"] == "Fail"
    details = _details(view)
    assert details[no_listener.get_device_id()]["status"] == "FAILED"
    assert "no DeviceConfigListener" in details[no_listener.get_device_id()]["description"]
    assert "flash is read-only" in details[raising.get_device_id()]["description"]


def test_unanswered_config_is_resent_one_task_at_a_time_and_times_out(emulator, make_device):
    device = make_device(emulator)
    silent = Silent()
    device.add_service("$device_config", silent)
    svc = emulator.service("$device_config")
    first = _create(emulator, {"n": 1}, [device.get_device_id()])
    second = _create(emulator, {"n": 2}, [device.get_device_id()])
    wait_until(lambda: silent.events, what="first config received")
    # one configuration in flight per device: the second waits for the first's answer
    assert _details(_show(emulator, second["task_id"]))[device.get_device_id()]["status"] == "WAITING"
    old_interval = svc.resend_interval_s
    svc.resend_interval_s = 0.2
    try:
        wait_until(lambda: len(silent.events) >= 3, what="config re-sent")
    finally:
        svc.resend_interval_s = old_interval
    assert all(e[2] == {"config_content": {"n": 1}} for e in silent.events)
    assert len({e[1] for e in silent.events}) == 1            # re-sends keep the event id
    assert _details(_show(emulator, first["task_id"]))[device.get_device_id()]["sent_times"] >= 3
    # the first task times out (its end moved to now): the device gets the second one
    with svc._lock:
        svc._tasks[first["task_id"]]["expires"] = time.time()
    wait_until(lambda: any(e[2] == {"config_content": {"n": 2}} for e in list(silent.events)),
               what="second config sent after the first timed out")
    assert _show(emulator, first["task_id"])["status"] == "Fail"
    assert _details(_show(emulator, first["task_id"]))[device.get_device_id()]["status"] == "TIMEOUT"
    resp = requests.delete(_url(emulator, f"/{second['task_id']}"), timeout=10)
    assert resp.status_code == 204
    assert requests.get(_url(emulator, f"/{second['task_id']}"), timeout=10).status_code == 404


def test_rest_refuses_bad_tasks(emulator):
    record = emulator.create_device()
    cases = [({"targets": [record["device_id"]]}, 400),                                   # no config_content
             ({"config_content": [1], "targets": [record["device_id"]]}, 400),            # not an object
             ({"config_content": {"a": 1}}, 400),                                         # no targets
             ({"config_content": {"a": 1}, "targets": [record["device_id"]], "timeout": 31}, 400),
             ({"config_content": {"a": 1}, "targets": [record["device_id"]], "timeout": 0}, 400),
             ({"config_content": {"a": "x" * 70000}, "targets": [record["device_id"]]}, 400),
             ({"config_content": {"a": 1}, "targets": [f"nobody_{uuid.uuid4().hex[:6]}"]}, 404)]
    for body, status in cases:
        resp = requests.post(_url(emulator), json=body, timeout=10)
        assert resp.status_code == status, (body.keys(), resp.text)
        assert resp.json()["error_code"].startswith("IOTDA.")
    listed = requests.get(_url(emulator), timeout=10).json()
    assert isinstance(listed["tasks"], list) and listed["count"] == len(listed["tasks"])
    assert requests.delete(_url(emulator, "/no-such-task"), timeout=10).status_code == 404


def test_malformed_config_update_is_answered_as_failed(emulator, make_device):
    device = make_device(emulator)
    applier = Applier()
    device.get_device_config_service().set_listener(applier)
    since = emulator.core.last_trace_id
    emulator.core.send_event(device.get_device_id(), "$device_config", "config_update", {"config_content": "x=1"})

    def answered(entry):
        body = entry.json() if entry.direction == "up" and entry.kind == "events_up" else None
        return bool(body) and body["services"][0]["event_type"] == "config_update_response"

    entry = emulator.core.wait_for_trace(answered, timeout=10, since_id=since)
    paras = entry.json()["services"][0]["paras"]
    assert paras["result_code"] == 1 and "not a JSON object" in paras["description"]
    assert applier.configs == []                                 # the listener never saw it
