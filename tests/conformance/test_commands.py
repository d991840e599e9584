"""Commands (doc/protocol.md §2.4): the platform's request, the device's response, the app's view (REST)."""
from __future__ import annotations

import threading

import pytest

from tests.conformance.conftest import COMMAND_TIMEOUT


def _command_in_background(api, device_id, body):
    """CreateCommand blocks until the device answers: run it beside the device's work."""
    out = {}

    def run():
        out["rsp"] = api.post(f"/devices/{device_id}/commands", body, timeout=COMMAND_TIMEOUT + 10)
    t = threading.Thread(target=run)
    t.start()
    return t, out


def test_command_round_trip_without_subscribe(api, make_device):
    dev = make_device()
    t, out = _command_in_background(api, dev.id, {"service_id": "Sensor", "command_name": "set_level",
                                                  "paras": {"level": 42}})
    prefix = f"$oc/devices/{dev.id}/sys/commands/request_id="
    msg = dev.expect(prefix)
    assert msg.qos == 0
    request_id = msg.topic[len(prefix):]
    assert request_id and "/" not in request_id
    assert msg.json() == {"service_id": "Sensor", "command_name": "set_level", "paras": {"level": 42}}
    dev.publish(f"$oc/devices/{dev.id}/sys/commands/response/request_id={request_id}",
                {"result_code": 0, "response_name": "set_level_result", "paras": {"applied": 42}})
    t.join()
    rsp = out["rsp"]
    assert rsp.status_code == 200, rsp.text
    assert rsp.json()["command_id"] == request_id
    assert rsp.json()["response"] == {"result_code": 0, "response_name": "set_level_result",
                                      "paras": {"applied": 42}}


def test_response_without_result_code_counts_as_success(api, make_device):
    dev = make_device()
    t, out = _command_in_background(api, dev.id, {"paras": {}})
    prefix = f"$oc/devices/{dev.id}/sys/commands/request_id="
    request_id = dev.expect(prefix).topic[len(prefix):]
    dev.publish(f"$oc/devices/{dev.id}/sys/commands/response/request_id={request_id}", {})
    t.join()
    assert out["rsp"].json()["response"]["result_code"] == 0


def test_failed_command_result_code_reaches_the_application(api, make_device):
    dev = make_device()
    t, out = _command_in_background(api, dev.id, {"service_id": "Sensor", "command_name": "set_level",
                                                  "paras": {"level": 101}})
    prefix = f"$oc/devices/{dev.id}/sys/commands/request_id="
    request_id = dev.expect(prefix).topic[len(prefix):]
    dev.publish(f"$oc/devices/{dev.id}/sys/commands/response/request_id={request_id}", {"result_code": 1})
    t.join()
    assert out["rsp"].json()["response"]["result_code"] == 1


def test_unanswered_command_times_out_for_the_application(api, make_device):
    dev = make_device()
    rsp = api.post(f"/devices/{dev.id}/commands", {"paras": {"x": 1}}, timeout=COMMAND_TIMEOUT + 10)
    assert rsp.status_code == 200 and rsp.json()["error_code"] == "IOTDA.014111"
    # the device did get it: the timeout is about the missing answer, not about delivery
    dev.expect(f"$oc/devices/{dev.id}/sys/commands/request_id=", timeout=1)


def test_a_late_or_unknown_response_is_ignored(emu, api, make_device):
    dev = make_device()
    dev.publish(f"$oc/devices/{dev.id}/sys/commands/response/request_id=never-asked", {"result_code": 0})
    # the platform keeps the link and keeps serving the device
    t, out = _command_in_background(api, dev.id, {"paras": {}})
    prefix = f"$oc/devices/{dev.id}/sys/commands/request_id="
    request_id = dev.expect(prefix).topic[len(prefix):]
    dev.publish(f"$oc/devices/{dev.id}/sys/commands/response/request_id={request_id}", {"result_code": 0})
    t.join()
    assert out["rsp"].status_code == 200 and out["rsp"].json()["command_id"] == request_id


def test_command_to_an_offline_device_is_refused(api, make_device):
    dev = make_device(connect=False)
    rsp = api.post(f"/devices/{dev.id}/commands", {"paras": {}})
    assert rsp.status_code == 409 and rsp.json()["error_code"] == "IOTDA.014016"


def test_command_to_an_unknown_device_is_not_found(api):
    rsp = api.post("/devices/nobody_here/commands", {"paras": {}})
    assert rsp.status_code == 404


def test_explicit_command_subscription_gets_qos1_once(api, make_device):
    dev = make_device()
    assert dev.subscribe(f"$oc/devices/{dev.id}/sys/commands/#", qos=1) == [1]
    t, out = _command_in_background(api, dev.id, {"paras": {"n": 1}})
    prefix = f"$oc/devices/{dev.id}/sys/commands/request_id="
    msg = dev.expect(prefix)
    assert msg.qos == 1
    dev.publish(f"$oc/devices/{dev.id}/sys/commands/response/request_id={msg.topic[len(prefix):]}", {})
    t.join()
    with pytest.raises(TimeoutError):
        dev.expect(prefix, timeout=0.6)
