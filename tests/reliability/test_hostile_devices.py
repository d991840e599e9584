"""Hostile devices and a hostile network against this session's new device-side paths, and the SDK's new
asyncio and transfer APIs when the broker dies or the application cancels at every moment.

* compressed reports that lie (``?encoding=gzip``): bombs on every compressed topic, zlib or raw deflate
  instead of gzip, truncated streams, trailing junk, two members, unknown encodings: dropped, logged, the link
  stays and the next good report is applied;
* ``config_update_response`` that is malformed, for another device, duplicated or late: the task keeps its
  state until a valid answer, and a valid answer is recorded once;
* asynchronous commands answered with junk, twice, or for a request nobody made;
* broadcast: a device may subscribe to ``$oc/broadcast/#`` and receive, but never publish there, nor subscribe
  its way into ``$oc/#``;
* SDK: ``AsyncIotDevice`` awaits while the broker is SIGKILLed (every await ends: a message id or an error,
  and every acknowledged report reached the platform), cancellation storms, a file transfer cancelled at every
  stage.

Everything runs under DEBUG logging: no device secret, configuration password or presigned-URL signature may
appear in any line, and no thread may die of an uncaught exception.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import gzip
import json
import logging
import os
import re
import threading
import time
import uuid
import zlib
from typing import Any, Iterator, List, Tuple

import pytest
import requests

from iot_device_sdk_python import DeviceConfigListener, IotResult
from iot_device_sdk_python.aio import AsyncIotDevice
from iot_device_sdk_python.client.request.service_property import ServiceProperty
from iot_device_sdk_python.errors import IotDeviceError
from iot_device_sdk_python.transport.publish_handle import PublishError
from iotda_emulator.protocol.compression import MAX_INFLATED
from tests.emulator.bare_device import BareDevice, RecordingDevice
from tests.fixtures_sdk import build_client_conf
from tests.reliability._log_capture import captured_logs
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def watch() -> Iterator[dict]:
    """DEBUG capture of every log record, every uncaught thread exception, and the secrets the tests used."""
    old_hook = threading.excepthook
    crashes: List[str] = []

    def hook(args: Any) -> None:
        crashes.append(f"{args.thread.name if args.thread else '?'}: {args.exc_type.__name__}: {args.exc_value}")
        old_hook(args)

    with captured_logs() as handler:
        threading.excepthook = hook
        try:
            yield {"logs": handler, "crashes": crashes, "secrets": set()}
        finally:
            threading.excepthook = old_hook


def _bare(emulator: Any, watch: dict, extra: Any = None) -> BareDevice:
    rec = emulator.create_device()
    watch["secrets"].add(rec["secret"])
    dev = BareDevice(emulator.host, emulator.mqtt_port, rec["device_id"], rec["secret"]).connect(extra)
    assert emulator.wait_online(rec["device_id"])
    return dev


def _rest(emulator: Any, method: str, path: str, body: Any = None) -> requests.Response:
    r = requests.request(method, f"{emulator.http_url}/v5/iot/p1{path}", json=body, timeout=30)
    assert r.status_code < 500, r.text
    return r


def _reported(emulator: Any, device_id: str, service_id: str = "S") -> Any:
    for entry in emulator.core.shadow(device_id):
        if entry["service_id"] == service_id:
            return (entry.get("reported") or {}).get("properties")
    return None


# ---- compressed reports that lie ---------------------------------------------------------------------------

def _report(value: Any) -> bytes:
    return json.dumps({"services": [{"service_id": "S", "properties": {"v": value}}]}).encode()


def test_lying_gzip_reports_are_dropped_and_the_link_stays(emulator: Any, watch: dict) -> None:
    dev = _bare(emulator, watch)
    did = dev.device_id
    child = emulator.create_device(gateway_id=did)
    base = f"$oc/devices/{did}/sys"
    bomb = gzip.compress(b"\0" * (64 * MAX_INFLATED))                   # 64 MB of zeros in ~64 KB
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw_deflate = deflate.compress(_report(1)) + deflate.flush()
    good_gz = gzip.compress(_report(2))
    lies = [
        (f"{base}/properties/report?encoding=gzip", bomb),
        (f"{base}/properties/report?encoding=gzip", zlib.compress(_report(3))),       # zlib, not gzip
        (f"{base}/properties/report?encoding=gzip", raw_deflate),                      # raw deflate
        (f"{base}/properties/report?encoding=gzip", good_gz[:-9]),                     # truncated
        (f"{base}/properties/report?encoding=gzip", good_gz + b"junk"),                # trailing junk
        (f"{base}/properties/report?encoding=gzip", good_gz + good_gz),                # two members
        (f"{base}/properties/report?encoding=gzip", b""),
        (f"{base}/properties/report?encoding=GZIP", good_gz),
        (f"{base}/properties/report?encoding=deflate", raw_deflate),
        (f"{base}/properties/report?encoding=gzip", gzip.compress(b"\xff\xfe not json")),
        (f"{base}/properties/report?encoding=gzip", gzip.compress(b"[" * 200000 + b"]" * 200000)),
        (f"{base}/gateway/sub_devices/properties/report?encoding=gzip", bomb),
        (f"{base}/messages/up?encoding=gzip", bomb),
    ]
    for topic, payload in lies:
        dev.publish(topic, payload)
    # reports are handled in order: once the good one is applied, every lie before it was dropped
    dev.publish(f"{base}/properties/report?encoding=gzip", gzip.compress(_report("ok")))
    wait_until(lambda: _reported(emulator, did) == {"v": "ok"}, what="the good report applied")
    assert emulator.is_online(did) and dev.client.is_connected()
    gw_report = {"devices": [{"device_id": child["device_id"], "services": [{"service_id": "S",
                                                                            "properties": {"v": "child"}}]}]}
    dev.publish(f"{base}/gateway/sub_devices/properties/report?encoding=gzip",
                gzip.compress(json.dumps(gw_report).encode()))
    wait_until(lambda: _reported(emulator, child["device_id"]) == {"v": "child"}, what="the gateway report")
    # each refusal is a log line of the platform core, at most one WARNING per device and kind
    warned = [line for name, level, line in watch["logs"].lines
              if name.startswith("iotda_emulator") and level >= logging.WARNING and did in line
              and "malformed" in line]
    assert 1 <= len(warned) <= 3, warned
    dev.close()


def test_a_payload_of_url_fragments_does_not_stall_the_console_trace(emulator: Any, watch: dict) -> None:
    """The console masks URL query strings in every trace payload it serves (and searches). A device's payload
    of ``http://a`` repeated made that mask quadratic: 128 KB took 12 s with the GIL held, a 1 MB one minutes,
    for every view and search of the trace. The trace must answer, masked, and so must the rest."""
    dev = _bare(emulator, watch)
    payload = b"http://a" * 120000 + b" https://x/y?X-Signature=zzzsecretzzz"     # just under 1 MB
    dev.publish(f"$oc/devices/{dev.device_id}/sys/messages/up", payload)
    wait_until(lambda: emulator.trace(dev.device_id, "up"), what="the payload traced")
    for params in ({"device_id": dev.device_id}, {"device_id": dev.device_id, "q": "nothing-like-this"}):
        r = requests.get(f"{emulator.http_url}/console/api/trace", params=params, timeout=60)
        assert r.status_code == 200, r.text[:200]
        assert "zzzsecretzzz" not in r.text
    assert requests.get(f"{emulator.http_url}/v5/iot/p1/devices/{dev.device_id}", timeout=30).status_code == 200
    dev.close()


# ---- remote configuration answers that lie -----------------------------------------------------------------

def _task(emulator: Any, task_id: str) -> dict:
    r = _rest(emulator, "GET", f"/device-config-tasks/{task_id}")
    assert r.status_code == 200
    return {d["device_id"]: d for d in r.json()["task_details"]}


def test_malformed_duplicated_and_foreign_config_update_responses(emulator: Any, watch: dict) -> None:
    dev, other = _bare(emulator, watch), _bare(emulator, watch)
    password = "wifi-" + uuid.uuid4().hex
    watch["secrets"].add(password)
    created = _rest(emulator, "POST", "/device-config-tasks", {
        "config_content": {"ssid": "lab", "password": password}, "targets": [dev.device_id, other.device_id]})
    assert created.status_code == 201, created.text
    task_id = created.json()["task_id"]
    event = dev.wait_event("config_update")
    other.wait_event("config_update")
    event_id = event["services"][0].get("event_id")
    junk_paras: List[Any] = [[1, 2], "result_code=0", None, {"result_code": "abc"}, {"result_code": 1.5},
                             {"result_code": None}, {"result_code": [0]}, {"result_code": True},
                             {"result_code": "99999999999999999999999"}, {}]
    for paras in junk_paras:
        dev.event_up("$device_config", "config_update_response", paras, event_id=event_id)
    dev.event_up("$device_config", "config_update_responsex", {"result_code": 0}, event_id=event_id)
    dev.event_up("$device_config", "config_update_response", {"result_code": 0}, object_device_id=other.device_id)
    dev.publish(f"$oc/devices/{dev.device_id}/sys/events/up",
                {"services": [{"service_id": "$device_config", "event_type": "config_update_response",
                               "event_id": {"x": 1}, "paras": {"result_code": "x"}}]})
    dev.publish(f"$oc/devices/{dev.device_id}/sys/events/up", b"\x00\xff not json")
    # a marker both devices' answers are handled after (events are handled in order per device)
    time.sleep(0.5)
    details = _task(emulator, task_id)
    assert details[dev.device_id]["status"] == "PROCESSING", details
    assert details[other.device_id]["status"] == "PROCESSING", details   # a foreign answer changed nothing
    long_description = "d" * 100000
    dev.event_up("$device_config", "config_update_response", {"result_code": 0, "description": long_description},
                 event_id=event_id)
    wait_until(lambda: _task(emulator, task_id)[dev.device_id]["status"] == "SUCCESS", what="answer recorded")
    dev.event_up("$device_config", "config_update_response", {"result_code": 7}, event_id=event_id)   # twice
    other.event_up("$device_config", "config_update_response", {"result_code": 3, "description": ["a"]})
    wait_until(lambda: _task(emulator, task_id)[other.device_id]["status"] == "FAILED", what="other answered")
    details = _task(emulator, task_id)
    assert (details[dev.device_id]["status"], details[dev.device_id]["result_code"]) == ("SUCCESS", 0)
    assert details[other.device_id]["result_code"] == 3
    # a late answer to a deleted task must not become the answer to the next one
    old_task = _rest(emulator, "POST", "/device-config-tasks", {"config_content": {"v": 1},
                                                               "targets": [dev.device_id]}).json()["task_id"]
    old_event = dev.wait_event("config_update")["services"][0]["event_id"]
    assert _rest(emulator, "DELETE", f"/device-config-tasks/{old_task}").status_code == 204
    new_task = _rest(emulator, "POST", "/device-config-tasks", {"config_content": {"v": 2},
                                                               "targets": [dev.device_id]}).json()["task_id"]
    new_event = dev.wait_event("config_update")["services"][0]["event_id"]
    assert new_event != old_event
    dev.event_up("$device_config", "config_update_response", {"result_code": 9}, event_id=old_event)
    time.sleep(0.5)
    assert _task(emulator, new_task)[dev.device_id]["status"] == "PROCESSING"
    dev.event_up("$device_config", "config_update_response", {"result_code": 0}, event_id=new_event)
    wait_until(lambda: _task(emulator, new_task)[dev.device_id]["status"] == "SUCCESS", what="the new answer")
    assert emulator.is_online(dev.device_id) and emulator.is_online(other.device_id)
    dev.close()
    other.close()


class _Applier(DeviceConfigListener):
    def __init__(self) -> None:
        self.configs: List[Any] = []

    def on_config_update(self, config_content: Any) -> IotResult:
        self.configs.append(config_content)
        return IotResult(0, "applied")


def test_sdk_answers_or_drops_hostile_config_updates_and_keeps_working(emulator: Any, make_device: Any,
                                                                      watch: dict) -> None:
    """A platform (or a man in the middle) sending the SDK config_update events that lie: junk event ids,
    config_content of the wrong type, deep nesting, not JSON. The SDK answers what it can, logs the rest, and
    its dispatcher keeps serving: a real task afterwards is applied and answered."""
    device = make_device(emulator)
    did = device.get_device_id()
    applier = _Applier()
    device.get_device_config_service().set_listener(applier)
    down = f"$oc/devices/{did}/sys/events/down"
    deep = "[" * 100000 + "]" * 100000
    hostile = [
        {"object_device_id": did, "services": [{"service_id": "$device_config", "event_type": "config_update",
                                                "event_id": [1, 2], "paras": {"config_content": {"a": 1}}}]},
        {"object_device_id": did, "services": [{"service_id": "$device_config", "event_type": "config_update",
                                                "event_id": "e1", "paras": {"config_content": [1]}}]},
        {"object_device_id": did, "services": [{"service_id": "$device_config", "event_type": "config_update",
                                                "event_id": "e2", "paras": "config"}]},
        {"object_device_id": did, "services": [{"service_id": "$device_config", "event_type": 7,
                                                "paras": {"config_content": {}}}]},
        {"object_device_id": did, "services": {"service_id": "$device_config"}},
    ]
    for body in hostile:
        emulator.core.publish(down, json.dumps(body).encode(), qos=1)
    emulator.core.publish(down, ('{"services": [{"service_id": "$device_config", "event_type": "config_update", '
                                 '"paras": {"config_content": {"a": %s}}}]}' % deep).encode(), qos=1)
    emulator.core.publish(down, b"\xff\x00 not json", qos=1)
    # the SDK answered the three config_update events it could parse; let those answers land first (one of
    # them echoes a list as event_id, which the platform cannot match and would take for any task in flight)
    wait_until(lambda: sum(b"config_update_response" in e.payload for e in emulator.trace(did, "up")) >= 3,
               what="the SDK's answers to the hostile events")
    password = "pw-" + uuid.uuid4().hex   # configurations carry credentials: never in a log line (checked last)
    watch["secrets"].add(password)
    content = {"interval": 9, "wifi": {"password": password}}
    created = _rest(emulator, "POST", "/device-config-tasks", {"config_content": content, "targets": [did]})
    task_id = created.json()["task_id"]
    wait_until(lambda: _task(emulator, task_id)[did]["status"] == "SUCCESS", what="the real task applied")
    assert content in applier.configs
    assert device.get_client().get_dispatcher() is not None and emulator.is_online(did)


# ---- asynchronous commands answered with junk or twice ----------------------------------------------------

def _command_request(dev: BareDevice) -> str:
    msg = dev.wait(lambda m: "/sys/commands/request_id=" in m.topic)
    return msg.topic.rsplit("request_id=", 1)[1]


def _async(emulator: Any, device_id: str, command_id: str) -> dict:
    return _rest(emulator, "GET", f"/devices/{device_id}/async-commands/{command_id}").json()


def test_async_commands_answered_with_junk_twice_or_unasked(emulator: Any, watch: dict) -> None:
    dev = _bare(emulator, watch)
    did = dev.device_id
    up = f"$oc/devices/{did}/sys/commands/response/request_id="
    made = [_rest(emulator, "POST", f"/devices/{did}/async-commands", {"paras": {"n": i}}).json()["command_id"]
            for i in range(3)]
    first, second, third = (_command_request(dev) for _ in range(3))
    assert [first, second, third] == made
    dev.publish(up + first, b"\xff{not json")
    dev.publish(up + second, {"result_code": 0, "paras": {"ok": 1}})
    dev.publish(up + second, {"result_code": 5})                         # a second answer
    dev.publish(up + third, {"result_code": "0", "paras": [[[[[]]]]]})
    dev.publish(up + str(uuid.uuid4()), {"result_code": 0})              # nobody asked
    wait_until(lambda: all(_async(emulator, did, c)["status"] != "SENT" for c in made), what="answers handled")
    states = [_async(emulator, did, c) for c in made]
    assert [s["status"] for s in states] == ["FAILED", "SUCCESSFUL", "SUCCESSFUL"], states
    assert states[1]["result"]["paras"] == {"ok": 1}                    # the first answer stands
    # the device still gets and answers commands
    again = _rest(emulator, "POST", f"/devices/{did}/async-commands", {"paras": {}}).json()["command_id"]
    dev.publish(up + _command_request(dev), {"result_code": 0})
    wait_until(lambda: _async(emulator, did, again)["status"] == "SUCCESSFUL", what="a later command")
    assert emulator.is_online(did)
    # a response topic whose request id holds '/' is no topic of this device's: the link is closed, as for
    # any topic IoTDA rejects, and the platform keeps answering others
    dev.client.publish(up + "../../x", b"{}", qos=1)
    assert emulator.wait_offline(did, 10)
    dev.close()


# ---- broadcast --------------------------------------------------------------------------------------------

def test_broadcast_subscribers_receive_and_a_device_cannot_inject(emulator: Any, watch: dict) -> None:
    topic = f"$oc/broadcast/h_{uuid.uuid4().hex[:8]}"
    listeners = []
    for _ in range(2):
        rec = emulator.create_device()
        watch["secrets"].add(rec["secret"])
        listeners.append(RecordingDevice(emulator, rec).connect())
    assert listeners[0].subscribe(("$oc/broadcast/#", 1)) == [1]
    assert listeners[1].subscribe((topic, 1)) == [1]
    wait_until(lambda: {d.device_id for d in listeners} <= set(emulator.front.subscribers(topic)),
               what="broadcast subscriptions")
    rec = emulator.create_device()
    watch["secrets"].add(rec["secret"])
    intruder = RecordingDevice(emulator, rec).connect()
    # '..' is an ordinary topic level in MQTT (no path resolution): that filter is a broadcast filter like any other
    codes = intruder.subscribe(("$oc/#", 1), ("$oc/+/#", 1), (f"$oc/devices/{listeners[0].device_id}/#", 1),
                               ("$oc/+/broadcast/#", 1), ("$oc/broadcast/../devices/#", 1), ("$oc/broadcast/+", 0))
    assert codes == [0x80, 0x80, 0x80, 0x80, 1, 0], codes
    intruder.c.publish(topic, b"forged", qos=1)
    assert intruder.disconnected.wait(10)                              # refused: the link is closed
    body = {"topic_full_name": topic, "message": "cmVhbA=="}           # b"real"
    assert _rest(emulator, "POST", "/broadcast-messages", body).status_code == 201
    for listener in listeners:
        # retained broadcasts other tests sent with a ttl may arrive on '$oc/broadcast/#': not this test's concern
        got = [(m.topic, m.payload) for m in listener.drain(1.0) if not m.retain]
        assert got == [(topic, b"real")], got
        listener.close()
    intruder.close()


_POLICY_PROBE = """
import os, sys, tempfile
from iotda_emulator.store import Store
from iotda_emulator import device_policies as dp
store = Store(os.path.join(tempfile.mkdtemp(), "s.sqlite3"))
policies = dp.DevicePolicies(store)
resource = "topic:${devices.deviceId}/" + "*/" * 10 + "x"     # an ordinary policy: ten levels, then x
p = policies.create_policy("multi", [{"effect": "ALLOW", "actions": [dp.PUBLISH_ACTION], "resources": [resource]}])
policies.bind(p["policy_id"], dp.DEVICE, ["d1"])
args = dict(app_id="app", product_of=lambda _d: "p", groups_of=lambda _d: [])
assert policies.check("d1", dp.PUBLISH_ACTION, "d1/" + "a/" * 10 + "x", **args) is None
evil = "d1/" + "a/" * 200 + "y"                                  # a 400-byte topic the device chooses
assert policies.check("d1", dp.PUBLISH_ACTION, evil, **args) is not None
assert policies.device_of(evil) is None
print("done")
"""


def test_a_device_topic_cannot_make_policy_matching_backtrack() -> None:
    """A device picks the topics it publishes and subscribes to. Against an ordinary ten-star policy, a topic
    of 200 levels took hours to refuse (40 levels: 11 s), with the GIL held: every thread of the emulator, the
    access front's included, stood still. Run in a child process so a regression cannot freeze the test run;
    the 20 s bound is a hang guard (a linear matcher answers in microseconds)."""
    import subprocess
    import sys

    try:
        out = subprocess.run([sys.executable, "-c", _POLICY_PROBE], capture_output=True, text=True, timeout=20,
                             cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    except subprocess.TimeoutExpired:
        pytest.fail("matching one device topic against one policy did not end within 20 s")
    assert out.returncode == 0 and out.stdout.strip() == "done", out.stderr[-2000:]


# ---- SDK: asyncio while the broker dies, cancellation storms ----------------------------------------------

def _run(coro: Any, timeout: float = 120.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def _delivered(emulator: Any, device_id: str) -> List[Any]:
    out = []
    for entry in emulator.trace(device_id, "up"):
        try:
            out.append(json.loads(entry.payload)["services"][0]["properties"]["n"])
        except (ValueError, KeyError, IndexError, TypeError):
            continue
    return out


def _kill_mid_await(emulator: Any, rec: dict, settings: dict) -> Tuple[List[Any], List[float], float, Any]:
    """60 reports awaited on one device while the broker is SIGKILLed and restarted: (results, the time each
    await ended, the time the broker was back, the report made afterwards)."""
    device = AsyncIotDevice(build_client_conf(emulator, rec, **settings))

    async def main() -> Tuple[List[Any], List[float], float, Any]:
        await device.connect()
        client = device.get_client()
        ended = [0.0] * 60
        tasks = []
        for i in range(60):
            task = asyncio.create_task(client.report_properties([ServiceProperty("S", {"n": i})]))
            task.add_done_callback(lambda _t, i=i: ended.__setitem__(i, time.monotonic()))
            tasks.append(task)
        await asyncio.sleep(0.01)
        await asyncio.to_thread(emulator.kill_broker)
        await asyncio.sleep(0.5)
        await asyncio.to_thread(emulator.restart_broker)
        back = time.monotonic()
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)
        for _ in range(300):
            if device.is_connected():
                break
            await asyncio.sleep(0.1)
        after = await client.report_properties([ServiceProperty("S", {"n": "after"})], timeout=30)
        await device.destroy()
        return results, ended, back, after

    return _run(main())


@pytest.mark.parametrize("buffered", [True, False], ids=["offline-buffer", "no-buffer"])
def test_async_reports_awaited_while_the_broker_is_killed_all_end(fresh_emulator: Any, watch: dict,
                                                                  buffered: bool) -> None:
    """Every awaited report ends (a message id, or PublishError); with an offline buffer none fails; every
    report acknowledged after the broker came back (re-sent by the SDK) reached the platform; the device
    reports again afterwards. No await hangs (the whole run is bounded)."""
    emulator = fresh_emulator
    rec = emulator.create_device()
    watch["secrets"].add(rec["secret"])
    results, ended, back, after = _kill_mid_await(emulator, rec, {"max_buffer_message": 1000} if buffered else {})
    assert isinstance(after, int)
    failed = [r for r in results if not isinstance(r, int)]
    assert all(isinstance(r, PublishError) for r in failed), failed
    if buffered:
        assert not failed, failed
    resent = {i for i, r in enumerate(results) if isinstance(r, int) and ended[i] >= back} | {"after"}
    wait_until(lambda: resent <= set(_delivered(emulator, rec["device_id"])), what="re-sent reports arrived")


# Holds since the access front hands a device's own system uplinks straight to the platform core and acknowledges
# them after that (doc/emulator.md, "Direct uplinks"); through Mosquitto (direct_uplinks=False) a SIGKILLed broker
# lost reports it had already acknowledged (21 of 60 in one run).
def test_no_report_the_emulator_acknowledged_is_lost_when_its_broker_dies(fresh_emulator: Any, watch: dict) -> None:
    emulator = fresh_emulator
    rec = emulator.create_device()
    results, _, _, _ = _kill_mid_await(emulator, rec, {"max_buffer_message": 1000})
    acknowledged = {i for i, r in enumerate(results) if isinstance(r, int)}
    time.sleep(2)
    lost = acknowledged - set(_delivered(emulator, rec["device_id"]))
    assert not lost, f"{len(lost)} acknowledged reports never reached the platform: {sorted(lost)}"


def test_an_open_command_stream_outlives_a_broker_death(fresh_emulator: Any, watch: dict) -> None:
    """A stream opened before the broker is SIGKILLed neither ends nor raises; after the reconnect the next
    command arrives on it and is answered."""
    from iot_device_sdk_python.client.request.command_response import CommandRsp

    emulator = fresh_emulator
    rec = emulator.create_device()
    watch["secrets"].add(rec["secret"])
    device = AsyncIotDevice(build_client_conf(emulator, rec))

    async def main() -> dict:
        await device.connect()
        async with device.get_client().commands() as commands:
            await asyncio.to_thread(emulator.kill_broker)
            await asyncio.sleep(0.3)
            await asyncio.to_thread(emulator.restart_broker)
            for _ in range(300):
                if device.is_connected() and emulator.is_online(rec["device_id"]):
                    break
                await asyncio.sleep(0.1)
            asking = asyncio.create_task(asyncio.to_thread(emulator.send_command, rec["device_id"], "S", "c", {"x": 1}))
            command = await asyncio.wait_for(commands.__anext__(), 30)
            await command.respond(CommandRsp(0, "after the crash", {"x": command.paras["x"]}))
            answer = await asking
        await device.destroy()
        return answer

    answer = _run(main())
    assert answer["result_code"] == 0 and answer["paras"] == {"x": 1}


def test_async_connect_while_the_broker_is_dead_ends_with_an_error(fresh_emulator: Any, watch: dict) -> None:
    emulator = fresh_emulator
    rec = emulator.create_device()
    device = AsyncIotDevice(build_client_conf(emulator, rec, reconnect_on_failure=False, timeout=5))
    emulator.kill_broker()

    async def main() -> None:
        with pytest.raises(IotDeviceError):
            await device.connect()
        assert not device.is_connected()
        await device.destroy()

    try:
        _run(main(), 60)
    finally:
        emulator.restart_broker()


def test_cancellation_storms_leave_a_working_device(emulator: Any, watch: dict) -> None:
    rec = emulator.create_device()
    watch["secrets"].add(rec["secret"])
    device = AsyncIotDevice(build_client_conf(emulator, rec))

    async def main() -> None:
        await device.connect()
        client = device.get_client()
        tasks = [asyncio.create_task(client.report_properties([ServiceProperty("S", {"n": i})]))
                 for i in range(300)]
        for i, task in enumerate(tasks):
            if i % 2:
                task.cancel()
            if i % 7 == 0:
                await asyncio.sleep(0)
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)
        kept = [r for i, r in enumerate(results) if i % 2 == 0]
        cancelled = [r for i, r in enumerate(results) if i % 2]
        assert all(isinstance(r, int) for r in kept), [r for r in kept if not isinstance(r, int)][:3]
        assert all(isinstance(r, (int, asyncio.CancelledError)) for r in cancelled)
        # streams opened and their waits cancelled, many times over
        for _ in range(100):
            stream = client.commands()
            waiter = asyncio.create_task(stream.__anext__())
            await asyncio.sleep(0)
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
        inner = device.iot_device.get_client()
        assert inner._command_listener is None   # every slot released: commands go to the services again
        answer = await asyncio.to_thread(emulator.send_command, rec["device_id"], "S", "c", {})
        assert isinstance(answer, dict)
        assert isinstance(await client.report_properties([ServiceProperty("S", {"n": "end"})], timeout=30), int)
        await device.destroy()

    _run(main())


# ---- a file transfer cancelled at every stage -------------------------------------------------------------

SIZE = 1024 * 1024


class _CancelAt:
    """A progress callback that cancels its future at the n-th call (or never)."""

    def __init__(self, at_call: int) -> None:
        self.at_call, self.calls, self.future = at_call, 0, None
        self.ready = threading.Event()
        self.cancelled = None

    def __call__(self, done: int, total: Any) -> None:
        self.calls += 1
        if self.calls == self.at_call:
            assert self.ready.wait(10)
            self.cancelled = self.future.cancel()


@pytest.mark.parametrize("stage", ["url-wait", "first-chunk", "mid-stream"])
def test_download_cancelled_at_each_stage_leaves_nothing_and_tells_the_platform(
        emulator: Any, make_device: Any, tmp_path: Any, watch: dict, stage: str) -> None:
    device = make_device(emulator)
    did = device.get_device_id()
    fms = device.get_file_manager_service()
    emu_fm = emulator.service("$file_manager")
    name = f"f_{stage}.bin"
    emu_fm.put_file(did, name, os.urandom(SIZE))
    dst = tmp_path / "down" / name
    if stage == "url-wait":
        emulator.pause(did)   # the URL request waits: cancel then
        try:
            future = fms.transfer_download(name, str(dst), ca_file=emulator.ca_file, url_timeout=30)
            assert future.cancel() and future.cancelled()
        finally:
            emulator.resume(did)
    else:
        progress = _CancelAt(1 if stage == "first-chunk" else 4)
        future = fms.transfer_download(name, str(dst), ca_file=emulator.ca_file, progress=progress)
        progress.future = future
        progress.ready.set()
        assert future.wait_finished(60)
        assert progress.cancelled is True
        assert emu_fm.wait_result(did, "download", name)["result_code"] != 0
    with pytest.raises(concurrent.futures.CancelledError):
        future.result(0)
    assert not dst.exists() and not (tmp_path / "down" / (name + ".part")).exists()
    # the service is still usable
    again = tmp_path / "again.bin"
    assert fms.transfer_download(name, str(again), ca_file=emulator.ca_file).result(60).size == SIZE


def test_a_storm_of_transfers_cancelled_from_another_thread(emulator: Any, make_device: Any, tmp_path: Any,
                                                            watch: dict) -> None:
    """Twelve uploads and downloads at once, each cancelled by another thread at a different moment (before
    its URL, mid-body, possibly after it ended): every future ends, nothing partial is left on disk, the
    transfer threads are gone, and the service still transfers."""
    import random

    device = make_device(emulator)
    did = device.get_device_id()
    fms = device.get_file_manager_service()
    emu_fm = emulator.service("$file_manager")
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(SIZE))
    before = threading.active_count()
    futures = []
    for i in range(12):
        if i % 2:
            emu_fm.put_file(did, f"s{i}.bin", os.urandom(SIZE))
            futures.append(fms.transfer_download(f"s{i}.bin", str(tmp_path / "down" / f"s{i}.bin"),
                                                 ca_file=emulator.ca_file))
        else:
            futures.append(fms.transfer_upload(f"u{i}.bin", str(src), ca_file=emulator.ca_file))
    rnd = random.Random(7)
    cancellers = [threading.Timer(rnd.uniform(0.0, 0.4), f.cancel) for f in futures]
    for t in cancellers:
        t.start()
    for t in cancellers:
        t.join(10)
    for f in futures:
        if not f.cancelled():
            f.result(60)   # a transfer that won the race finished properly
        assert f.done()
        assert f.wait_finished(60)
    wait_until(lambda: threading.active_count() <= before + 1, timeout=60, what="transfer threads ended")
    down = tmp_path / "down"
    leftovers = [n for n in (os.listdir(down) if down.exists() else []) if n.endswith(".part")]
    assert not leftovers, leftovers
    for i, f in enumerate(futures):
        if i % 2 and f.cancelled():
            assert not (down / f"s{i}.bin").exists()
    assert fms.transfer_download("s1.bin", str(tmp_path / "final.bin"), ca_file=emulator.ca_file).result(60).size == SIZE


def test_a_transfer_cancelled_before_its_url_is_finished_for_every_waiter(emulator: Any, make_device: Any,
                                                                          tmp_path: Any, watch: dict) -> None:
    device = make_device(emulator)
    did = device.get_device_id()
    emulator.pause(did)   # the URL request waits
    try:
        future = device.get_file_manager_service().transfer_download("none.bin", str(tmp_path / "none.bin"),
                                                                     ca_file=emulator.ca_file, url_timeout=30)
        assert future.cancel() and future.done()
        assert future.wait_finished(5)                 # no worker will ever run: nothing to wait for
        done, _ = concurrent.futures.wait([future], timeout=5)
        assert future in done
        assert list(concurrent.futures.as_completed([future], timeout=5)) == [future]
    finally:
        emulator.resume(did)


def test_download_cancelled_at_its_last_chunk_is_not_reported_as_a_success(
        emulator: Any, make_device: Any, tmp_path: Any, watch: dict) -> None:
    device = make_device(emulator)
    did = device.get_device_id()
    fms = device.get_file_manager_service()
    emu_fm = emulator.service("$file_manager")
    emu_fm.put_file(did, "last.bin", b"x" * 1000)             # one chunk: its progress call is the last one
    dst = tmp_path / "last.bin"
    dst.write_bytes(b"the application's previous file")
    progress = _CancelAt(1)
    future = fms.transfer_download("last.bin", str(dst), ca_file=emulator.ca_file, progress=progress)
    progress.future = future
    progress.ready.set()
    assert future.wait_finished(60) and progress.cancelled is True and future.cancelled()
    report = emu_fm.wait_result(did, "download", "last.bin")
    # the application was told "cancelled": the platform must not be told "success", and a download that did
    # not happen must not delete what was there before
    assert report["result_code"] != 0, report
    assert dst.exists() and dst.read_bytes() == b"the application's previous file"


# ---- log hygiene and thread health over the whole module (runs last) --------------------------------------

def test_no_secret_in_any_log_line_and_no_thread_died(watch: dict) -> None:
    secrets = {s for s in watch["secrets"] if s and len(s) >= 8}
    assert len(secrets) >= 5
    lines = list(watch["logs"].lines)
    assert any(level == logging.DEBUG for _, level, _ in lines)
    leaks = [(name, line[:300]) for name, _, line in lines for s in secrets if s in line]
    assert not leaks, leaks
    signatures = [(name, line[:300]) for name, _, line in lines if re.search(r"Signature=(?!\*)", line)]
    assert not signatures, signatures
    assert not watch["crashes"], watch["crashes"]
