"""Device-side rules: the ``$device_rule`` property set and the config request/response (doc/protocol.md §3.8).

Rules are created with IoTDA's rule API (``rule_type`` ``DEVICE_SIDE``); the device learns rule ids and
versions by a property set on service ``$device_rule`` and fetches the bodies with
``device_rule_config_request``.
"""
from __future__ import annotations

from tests.conformance._device import Device, new_id, only_event


def _rule_body(device_id: str, name: str) -> dict:
    return {
        "name": name, "description": "conformance", "rule_type": "DEVICE_SIDE", "status": "active",
        "condition_group": {"logic": "and", "conditions": [{
            "type": "DEVICE_DATA",
            "device_property_condition": {"device_id": device_id, "filters": [
                {"path": "Sensor/temperature", "operator": ">", "value": "30"}]}}]},
        "actions": [{"type": "DEVICE_CMD", "device_command": {"device_id": device_id, "cmd": {
            "service_id": "Sensor", "command_name": "set_level", "command_body": {"level": 0}}}}],
        "device_side": {"device_ids": [device_id]},
    }


def _expect_rule_versions(dev, expected=None) -> dict:
    """Take the next ``$device_rule`` property set, answer it, return its ``{ruleId: {"version": n}}``.

    With ``expected``, earlier announcements are answered and skipped until one equals it: the platform may
    announce the same versions twice (when the device comes online, and when a rule changes), as IoTDA may.
    """
    prefix = f"$oc/devices/{dev.id}/sys/properties/set/request_id="
    while True:
        msg = dev.expect(lambda m: m.topic.startswith(prefix)
                         and m.json().get("services", [{}])[0].get("service_id") == "$device_rule")
        [service] = msg.json()["services"]
        dev.publish(f"$oc/devices/{dev.id}/sys/properties/set/response/request_id={msg.topic[len(prefix):]}",
                    {"result_code": 0})
        if expected is None or service["properties"] == expected:
            return service["properties"]


def _fetch(dev, rule_ids, del_ids=()):
    dev.event_up("$device_rule", "device_rule_config_request", {"ruleIds": list(rule_ids), "delIds": list(del_ids)})
    return only_event(dev.expect_event("$device_rule", "device_rule_config_response"))["paras"]["rulesInfos"]


def _create(api, dev):
    rsp = api.post("/rules", _rule_body(dev.id, new_id("rule")))
    assert rsp.status_code == 201, rsp.text
    return rsp.json()["rule_id"]


def test_rule_version_property_set_and_config_response(api, make_device):
    dev = make_device()
    rule_id = _create(api, dev)
    versions = _expect_rule_versions(dev, {rule_id: {"version": 1}})
    assert versions == {rule_id: {"version": 1}}
    [rule] = _fetch(dev, [rule_id])
    assert rule["ruleId"] == rule_id and rule["ruleVersionInShadow"] == 1
    assert rule["status"] == "active" and rule["logic"] == "and"
    [cond] = rule["conditions"]
    assert cond["type"] == "DEVICE_DATA" and cond["operator"] == ">" and cond["value"] == "30"
    assert cond["deviceInfo"] == {"deviceId": dev.id, "path": "Sensor/temperature"}
    [action] = rule["actions"]
    assert action["type"] == "DEVICE_CMD" and action["deviceId"] == dev.id
    assert action["command"] == {"serviceId": "Sensor", "commandName": "set_level", "commandBody": {"level": 0}}


def test_rule_actions_carry_enable_status(api, make_device):
    # Huawei's C SDK runs only actions whose status is "enable"; the rule itself is active/inactive
    dev = make_device()
    rule_id = _create(api, dev)
    _expect_rule_versions(dev)
    [rule] = _fetch(dev, [rule_id])
    assert [a["status"] for a in rule["actions"]] == ["enable"]


def test_rule_status_change_bumps_the_version(api, make_device):
    dev = make_device()
    rule_id = _create(api, dev)
    _expect_rule_versions(dev)
    rsp = api.put(f"/rules/{rule_id}/status", {"status": "inactive"})
    assert rsp.status_code == 200, rsp.text
    assert _expect_rule_versions(dev, {rule_id: {"version": 2}}) == {rule_id: {"version": 2}}
    [rule] = _fetch(dev, [rule_id])
    assert rule["status"] == "inactive" and rule["ruleVersionInShadow"] == 2


def test_deleted_rule_is_announced_with_version_minus_one(api, make_device):
    dev = make_device()
    rule_id = _create(api, dev)
    _expect_rule_versions(dev)
    assert api.delete(f"/rules/{rule_id}").status_code == 204
    assert _expect_rule_versions(dev, {rule_id: {"version": -1}}) == {rule_id: {"version": -1}}
    assert _fetch(dev, [], [rule_id]) == []


def test_rule_versions_are_sent_again_when_the_device_reconnects(emu, api, make_device):
    dev = make_device()
    rule_id = _create(api, dev)
    _expect_rule_versions(dev)
    dev.close()
    assert emu.wait_offline(dev.id, 5)
    back = Device(emu.host, emu.mqtt_port, dev.id, dev.secret)
    try:
        assert back.connect() == 0
        assert _expect_rule_versions(back) == {rule_id: {"version": 1}}
    finally:
        back.close()


def test_unknown_rule_ids_are_left_out_of_the_response(api, make_device):
    dev = make_device()
    assert _fetch(dev, ["no-such-rule"]) == []
