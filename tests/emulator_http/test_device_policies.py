"""Device (topic) policies through the official application SDK's models, enforced on bare paho devices:
CRUD and paging, bind/unbind/list-targets with failure entries, ALLOW granting a custom topic outside ``$oc``
(publish and subscribe), unbinding taking it back, DENY beating ALLOW, product/group/app targets, and the
Python ``add_topic_policy`` being one of these policies."""
from __future__ import annotations

import uuid

import paho.mqtt.client as mqtt
import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkiotda.v5 import (AddDeviceGroupDTO, AddDeviceGroupRequest, BindDevicePolicy,
                                    BindDevicePolicyRequest, CreateDevicePolicy, CreateDevicePolicyRequest,
                                    CreateOrDeleteDeviceInGroupRequest, DeleteDeviceGroupRequest,
                                    DeleteDevicePolicyRequest, ListDevicePoliciesRequest, ShowDevicePolicyRequest,
                                    ShowTargetsInDevicePolicyRequest, ShowTargetsInDevicePolicyRequestBody,
                                    Statement, UnBindDevicePolicy, UnbindDevicePolicyRequest, UpdateDevicePolicy,
                                    UpdateDevicePolicyRequest)

from iotda_emulator.device_policies import APP_ID, DevicePolicies, PolicyError
from iotda_emulator.store import Store
from tests.emulator.bare_device import RecordingDevice as BareDevice

PUB, SUB = "iotda:devices:publish", "iotda:devices:subscribe"
NOT_AUTHORIZED = 0x87


@pytest.fixture
def policies(app_client):
    """Factory creating policies through the SDK; every one is deleted afterwards (the instance holds 50)."""
    made = []

    def make(statements, name=None):
        body = CreateDevicePolicy(policy_name=name or "p_" + uuid.uuid4().hex[:12],
                                  statement=[Statement(**s) for s in statements])
        created = app_client.create_device_policy(CreateDevicePolicyRequest(body=body))
        made.append(created.policy_id)
        return created

    yield make
    for pid in made:
        try:
            app_client.delete_device_policy(DeleteDevicePolicyRequest(policy_id=pid))
        except ClientRequestException:
            pass   # deleted by the test itself


@pytest.fixture
def bare(emulator):
    made = []

    def connect(record, protocol=mqtt.MQTTv5) -> BareDevice:
        dev = BareDevice(emulator, record, protocol=protocol).connect()
        made.append(dev)
        return dev

    yield connect
    for dev in made:
        dev.close()


@pytest.fixture
def device_record(emulator):
    made = []

    def make(**kw):
        made.append(emulator.create_device(**kw))
        return made[-1]

    yield make
    for rec in made:
        emulator.delete_device(rec["device_id"])


def _bind(app_client, policy_id, target_type, ids):
    return app_client.bind_device_policy(BindDevicePolicyRequest(
        policy_id=policy_id, body=BindDevicePolicy(target_type=target_type, target_ids=ids)))


def _unbind(app_client, policy_id, target_type, ids):
    return app_client.unbind_device_policy(UnbindDevicePolicyRequest(
        policy_id=policy_id, body=UnBindDevicePolicy(target_type=target_type, target_ids=ids)))


def _publish(dev: BareDevice, topic: str, payload: bytes = b"x") -> int:
    """Publish at QoS 1 over MQTT 5 and return the PUBACK's reason code (0x87: refused, link kept)."""
    info = dev.c.publish(topic, payload, qos=1)
    while True:
        mid, rc = dev.pubacks.get(timeout=10)
        if mid == info.mid:
            return rc


def _status(call) -> int:
    with pytest.raises(ClientRequestException) as err:
        call()
    return err.value.status_code


def test_policy_crud_and_paging(app_client, policies):
    tag = uuid.uuid4().hex[:8]
    first = policies([{"effect": "ALLOW", "actions": [PUB], "resources": ["topic:/v1/${devices.deviceId}/a"]}],
                     name=f"crud_{tag}_1")
    assert len(first.policy_id) == 24 and first.app_id == APP_ID and first.policy_name == f"crud_{tag}_1"
    assert first.statement[0].effect == "ALLOW" and first.statement[0].resources == ["topic:/v1/${devices.deviceId}/a"]
    assert first.create_time.endswith("Z") and first.update_time == first.create_time
    second = policies([{"effect": "DENY", "actions": [PUB, SUB], "resources": ["topic:x/*"]}], name=f"crud_{tag}_2")

    shown = app_client.show_device_policy(ShowDevicePolicyRequest(policy_id=second.policy_id))
    assert shown.statement[0].actions == [PUB, SUB] and shown.policy_name == f"crud_{tag}_2"

    listed = app_client.list_device_policies(ListDevicePoliciesRequest(limit=50))
    ids = [p.policy_id for p in listed.policies]
    assert ids.index(second.policy_id) < ids.index(first.policy_id)   # newest first
    one = app_client.list_device_policies(ListDevicePoliciesRequest(policy_name=f"crud_{tag}_1"))
    assert [p.policy_id for p in one.policies] == [first.policy_id] and one.page.count == 1
    page1 = app_client.list_device_policies(ListDevicePoliciesRequest(limit=1))
    page2 = app_client.list_device_policies(ListDevicePoliciesRequest(limit=1, marker=page1.page.marker))
    assert page1.policies[0].policy_id != page2.policies[0].policy_id
    assert page2.page.count == page1.page.count - 1

    updated = app_client.update_device_policy(UpdateDevicePolicyRequest(
        policy_id=first.policy_id, body=UpdateDevicePolicy(policy_name=f"crud_{tag}_renamed", statement=[
            Statement(effect="DENY", actions=[SUB], resources=["topic:y/?"])])))
    assert updated.policy_name == f"crud_{tag}_renamed" and updated.statement[0].effect == "DENY"
    assert app_client.show_device_policy(ShowDevicePolicyRequest(
        policy_id=first.policy_id)).statement[0].resources == ["topic:y/?"]

    app_client.delete_device_policy(DeleteDevicePolicyRequest(policy_id=first.policy_id))
    assert _status(lambda: app_client.show_device_policy(ShowDevicePolicyRequest(policy_id=first.policy_id))) == 404
    assert _status(lambda: app_client.delete_device_policy(DeleteDevicePolicyRequest(
        policy_id=first.policy_id))) == 404


@pytest.mark.parametrize("statement", [
    {"effect": "MAYBE", "actions": [PUB], "resources": ["topic:a"]},
    {"effect": "ALLOW", "actions": ["iotda:devices:connect"], "resources": ["topic:a"]},
    {"effect": "ALLOW", "actions": [PUB], "resources": ["a/b"]},                     # no topic: prefix
    {"effect": "ALLOW", "actions": [PUB], "resources": ["topic:a/${devices.nodeId}"]},
    {"effect": "ALLOW", "actions": [PUB], "resources": ["topic:$oc/devices/x/sys/messages/up"]},
    {"effect": "ALLOW", "actions": [PUB], "resources": [f"topic:r{i}" for i in range(11)]},
])
def test_invalid_statements_are_refused(app_client, statement):
    body = CreateDevicePolicy(policy_name="bad_" + uuid.uuid4().hex[:8], statement=[Statement(**statement)])
    with pytest.raises(ClientRequestException) as err:
        app_client.create_device_policy(CreateDevicePolicyRequest(body=body))
    assert err.value.status_code == 400 and err.value.error_code == "IOTDA.000006"


def test_duplicate_name_is_refused(app_client, policies):
    made = policies([{"effect": "ALLOW", "actions": [PUB], "resources": ["topic:a"]}])
    assert _status(lambda: policies([{"effect": "ALLOW", "actions": [PUB], "resources": ["topic:b"]}],
                                    name=made.policy_name)) == 400


def test_bind_unbind_and_list_targets(app_client, policies, device_record):
    rec = device_record()
    policy = policies([{"effect": "ALLOW", "actions": [PUB], "resources": ["topic:t/${devices.deviceId}"]}])
    bound = _bind(app_client, policy.policy_id, "device", [rec["device_id"], "no_such_device"])
    assert bound.policy_id == policy.policy_id and bound.target_type == "device"
    assert bound.success_targets == [rec["device_id"]]
    assert [f.target_id for f in bound.failure_targets] == ["no_such_device"]
    assert bound.failure_targets[0].error_code and "does not exist" in bound.failure_targets[0].error_msg
    assert _bind(app_client, policy.policy_id, "product", [rec["product_id"]]).success_targets == [rec["product_id"]]

    targets = app_client.show_targets_in_device_policy(ShowTargetsInDevicePolicyRequest(
        policy_id=policy.policy_id, body=ShowTargetsInDevicePolicyRequestBody()))
    assert [(t.target_type, t.target_id) for t in targets.targets] == [("product", rec["product_id"]),
                                                                       ("device", rec["device_id"])]
    only = app_client.show_targets_in_device_policy(ShowTargetsInDevicePolicyRequest(
        policy_id=policy.policy_id, body=ShowTargetsInDevicePolicyRequestBody(target_type="device", limit=1)))
    assert [t.target_id for t in only.targets] == [rec["device_id"]] and only.page.count == 1

    unbound = _unbind(app_client, policy.policy_id, "device", [rec["device_id"], "never_bound"])
    assert unbound.success_targets == [rec["device_id"]]
    assert [f.target_id for f in unbound.failure_targets] == ["never_bound"]
    left = app_client.show_targets_in_device_policy(ShowTargetsInDevicePolicyRequest(
        policy_id=policy.policy_id, body=ShowTargetsInDevicePolicyRequestBody()))
    assert [t.target_type for t in left.targets] == ["product"]
    assert _status(lambda: _bind(app_client, policy.policy_id, "tenant", [rec["device_id"]])) == 400
    assert _status(lambda: _bind(app_client, "0" * 24, "device", [rec["device_id"]])) == 404


def test_a_target_holds_at_most_five_policies(app_client, policies, device_record):
    rec = device_record()
    made = [policies([{"effect": "ALLOW", "actions": [PUB], "resources": [f"topic:five/{i}"]}]) for i in range(6)]
    for p in made[:5]:
        assert _bind(app_client, p.policy_id, "device", [rec["device_id"]]).success_targets == [rec["device_id"]]
    sixth = _bind(app_client, made[5].policy_id, "device", [rec["device_id"]])
    assert sixth.success_targets == [] and [f.target_id for f in sixth.failure_targets] == [rec["device_id"]]


def test_allow_grants_a_custom_topic_and_unbinding_takes_it_back(emulator, app_client, policies, device_record,
                                                                 bare):
    rec = device_record()
    dev_id = rec["device_id"]
    dev = bare(rec)
    up, down = f"h20c/{dev_id}/up", f"h20c/{dev_id}/down"
    assert _publish(dev, up) == NOT_AUTHORIZED                     # no policy yet: refused, link kept (MQTT 5)
    assert dev.subscribe((down, 1)) == [NOT_AUTHORIZED]

    policy = policies([{"effect": "ALLOW", "actions": [PUB, SUB], "resources": ["topic:h20c/${devices.deviceId}/*"]}])
    assert _bind(app_client, policy.policy_id, "device", [dev_id]).success_targets == [dev_id]
    since = emulator.core.last_trace_id
    assert _publish(dev, up, b"granted") == 0
    entry = emulator.wait_for_trace(lambda e: e.topic == up and e.direction == "up", since_id=since)
    assert entry.device_id == dev_id and entry.payload == b"granted"   # traced under the device's id
    assert dev.subscribe((down, 1)) == [1]
    emulator.core.publish(down, b"to the device")
    assert dev.next_message().payload == b"to the device"
    other = f"h20c/{dev_id}x/up"                                     # ${devices.deviceId} is this device only
    assert _publish(dev, other) == NOT_AUTHORIZED

    _unbind(app_client, policy.policy_id, "device", [dev_id])
    assert _publish(dev, up) == NOT_AUTHORIZED
    assert dev.subscribe((f"h20c/{dev_id}/down2", 1)) == [NOT_AUTHORIZED]
    refused = emulator.wait_for_trace(lambda e: e.kind == "violation" and e.topic == up, since_id=since)
    assert refused.device_id == dev_id
    assert not dev.disconnected.is_set()


def test_an_mqtt311_device_loses_its_link_for_a_topic_no_longer_granted(app_client, policies, device_record, bare):
    rec = device_record()
    dev = bare(rec, protocol=mqtt.MQTTv311)
    policy = policies([{"effect": "ALLOW", "actions": [PUB], "resources": ["topic:old/${devices.deviceId}"]}])
    _bind(app_client, policy.policy_id, "device", [rec["device_id"]])
    dev.c.publish(f"old/{rec['device_id']}", b"ok", qos=1).wait_for_publish(10)
    assert not dev.disconnected.is_set()
    _unbind(app_client, policy.policy_id, "device", [rec["device_id"]])
    dev.c.publish(f"old/{rec['device_id']}", b"no longer", qos=1)
    assert dev.disconnected.wait(5)


def test_deny_beats_allow_across_policies_and_targets(app_client, policies, device_record, bare):
    product = "pp_" + uuid.uuid4().hex[:10]
    rec = device_record(product_id=product)
    dev_id = rec["device_id"]
    dev = bare(rec)
    allow = policies([{"effect": "ALLOW", "actions": [PUB, SUB], "resources": ["topic:fleet/${devices.productId}/*"]}])
    deny = policies([{"effect": "DENY", "actions": [PUB], "resources": ["topic:fleet/*/secret"]}])
    _bind(app_client, allow.policy_id, "product", [product])        # through the device's product
    _bind(app_client, deny.policy_id, "device", [dev_id])
    assert _publish(dev, f"fleet/{product}/status") == 0
    assert _publish(dev, f"fleet/{product}/secret") == NOT_AUTHORIZED   # DENY wins
    assert dev.subscribe((f"fleet/{product}/secret", 1)) == [1]          # the DENY covers publish only
    assert _publish(dev, "fleet/other_product/status") == NOT_AUTHORIZED
    # one statement denying and one allowing in the same policy: still DENY
    app_client.update_device_policy(UpdateDevicePolicyRequest(policy_id=allow.policy_id, body=UpdateDevicePolicy(
        statement=[Statement(effect="ALLOW", actions=[PUB], resources=["topic:fleet/*"]),
                   Statement(effect="DENY", actions=[PUB], resources=["topic:fleet/${devices.productId}/status"])])))
    assert _publish(dev, f"fleet/{product}/status") == NOT_AUTHORIZED
    assert _publish(dev, f"fleet/{product}/other") == 0


def test_group_and_app_targets(app_client, policies, device_record, bare):
    rec, outsider = device_record(), device_record()
    dev, out = bare(rec), bare(outsider)
    group = app_client.add_device_group(AddDeviceGroupRequest(body=AddDeviceGroupDTO(
        name="pol-" + uuid.uuid4().hex[:8])))
    try:
        app_client.create_or_delete_device_in_group(CreateOrDeleteDeviceInGroupRequest(
            group_id=group.group_id, action_id="addDevice", device_id=rec["device_id"]))
        by_group = policies([{"effect": "ALLOW", "actions": [PUB], "resources": ["topic:grp/?"]}])
        assert _bind(app_client, by_group.policy_id, "group", [group.group_id]).success_targets == [group.group_id]
        assert _publish(dev, "grp/1") == 0
        assert _publish(dev, "grp/12") == NOT_AUTHORIZED               # ? is exactly one character
        assert _publish(out, "grp/1") == NOT_AUTHORIZED               # not in the group

        everyone = policies([{"effect": "ALLOW", "actions": [PUB], "resources": ["topic:all/${devices.deviceId}"]}])
        assert _bind(app_client, everyone.policy_id, "app", ["not_an_app"]).failure_targets
        assert _bind(app_client, everyone.policy_id, "app", [APP_ID]).success_targets == [APP_ID]
        assert _publish(out, f"all/{outsider['device_id']}") == 0
        app_client.delete_device_policy(DeleteDevicePolicyRequest(policy_id=everyone.policy_id))   # unbinds too
        assert _publish(out, f"all/{outsider['device_id']}") == NOT_AUTHORIZED
    finally:
        app_client.delete_device_group(DeleteDeviceGroupRequest(group_id=group.group_id))


def test_add_topic_policy_is_a_device_policy(emulator, app_client, device_record, bare):
    emulator.add_topic_policy("h20c_py/%u/#")
    found = app_client.list_device_policies(ListDevicePoliciesRequest(policy_name="emulator_topic_policies"))
    assert len(found.policies) == 1
    shown = app_client.show_device_policy(ShowDevicePolicyRequest(policy_id=found.policies[0].policy_id))
    resources = [r for s in shown.statement for r in s.resources]
    assert "topic:h20c_py/${devices.deviceId}/*" in resources and "topic:h20c_py/${devices.deviceId}" in resources
    rec = device_record()
    dev = bare(rec)
    assert _publish(dev, f"h20c_py/{rec['device_id']}/a/b") == 0
    assert dev.subscribe((f"h20c_py/{rec['device_id']}/#", 1), ("h20c_py/+/x", 1)) == [1, NOT_AUTHORIZED]


# ---- matching as a unit ---------------------------------------------------------------------------------

@pytest.fixture
def store_policies(tmp_path):
    return DevicePolicies(Store(str(tmp_path / "policies.db")))


def _check(pol, topic, action=PUB, device="d1", product="p1", groups=()):
    return pol.check(device, action, topic, app_id=APP_ID, product_of=lambda d: product,
                     groups_of=lambda d: list(groups))


@pytest.mark.parametrize("resource,topic,allowed", [
    ("topic:test/topic?/some", "test/topic1/some", True),
    ("topic:test/topic?/some", "test/topic12/some", False),
    ("topic:test/topic*/some", "test/topic1/pub/some", True),       # * spans levels
    ("topic:test/topic*/some", "test/topic/some", False),           # * is one or more characters
    ("topic:test/+/some", "test/x/some", False),                    # + is an ordinary character
    ("topic:test/+/some", "test/+/some", True),
    ("topic:test/#", "test/a", False),
    ("topic:test/#", "test/#", True),
    ("topic:/v1/${devices.deviceId}/up", "/v1/d1/up", True),
    ("topic:/v1/${devices.deviceId}/up", "/v1/d2/up", False),
    ("topic:/v1/${devices.productId}/up", "/v1/p1/up", True),
])
def test_resource_matching(store_policies, resource, topic, allowed):
    p = store_policies.create_policy("m", [{"effect": "ALLOW", "actions": [PUB], "resources": [resource]}])
    store_policies.bind(p["policy_id"], "device", ["d1"])
    assert (_check(store_policies, topic) is None) is allowed


def test_decisions_follow_changes_and_generation(store_policies):
    pol = store_policies
    assert _check(pol, "a/b") == "no device policy grants this topic"
    gen = pol.generation
    p = pol.create_policy("g", [{"effect": "ALLOW", "actions": [SUB], "resources": ["topic:a/*"]}])
    pol.bind(p["policy_id"], "group", ["g1"])
    assert pol.generation > gen
    assert _check(pol, "a/b", SUB, groups=["g1"]) is None
    assert _check(pol, "a/b", PUB, groups=["g1"]) is not None           # the action must be granted
    assert _check(pol, "a/b", SUB, groups=[]) is not None
    pol.update_policy(p["policy_id"], statements=[{"effect": "DENY", "actions": [SUB], "resources": ["topic:a/*"]}])
    assert _check(pol, "a/b", SUB, groups=["g1"]) == "a device policy denies this topic"
    pol.forget_target("group", "g1")
    assert pol.targets(p["policy_id"]) == []


def test_mqtt_patterns_refuse_policy_wildcards(store_policies):
    with pytest.raises(PolicyError):
        store_policies.add_mqtt_pattern("a/*/b", APP_ID)
    store_policies.add_mqtt_pattern("x/%u/+", APP_ID)
    assert _check(store_policies, "x/d1/y") is None and _check(store_policies, "x/d2/y") is not None
    assert store_policies.device_of("x/d7/y") == "d7"
