"""Device groups and tags through the official application SDK's models: static groups with members and
sub-groups, dynamic groups that follow a search rule, the groups of a device, tags bound, replaced, unbound and
queried, and tags and groups as SearchDevices conditions."""
from __future__ import annotations

import uuid

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkiotda.v5 import (AddDeviceGroupDTO, AddDeviceGroupRequest, BindTagsDTO,
                                    CreateOrDeleteDeviceInGroupRequest, DeleteDeviceGroupRequest,
                                    ListDeviceGroupsByDeviceRequest, ListDeviceGroupsRequest,
                                    ListResourcesByTagsRequest, QueryResourceByTagsDTO, SearchDevicesRequest,
                                    SearchSql, ShowDeviceGroupRequest, ShowDeviceRequest, ShowDevicesInGroupRequest,
                                    TagDeviceRequest, TagV5DTO, UnbindTagsDTO, UntagDeviceRequest,
                                    UpdateDeviceGroupDTO, UpdateDeviceGroupRequest)


@pytest.fixture
def devices(emulator):
    made = []

    def make(n, **kw):
        for _ in range(n):
            made.append(emulator.create_device(name="grp-" + uuid.uuid4().hex[:8], **kw))
        return made[-n:]

    yield make
    for rec in made:
        emulator.delete_device(rec["device_id"])


def _group(app_client, **body):
    return app_client.add_device_group(AddDeviceGroupRequest(body=AddDeviceGroupDTO(**body)))


def _members(app_client, group_id):
    return [d.device_id for d in app_client.show_devices_in_group(ShowDevicesInGroupRequest(
        group_id=group_id, limit=50)).devices]


def _move(app_client, group_id, device_id, action="addDevice"):
    app_client.create_or_delete_device_in_group(CreateOrDeleteDeviceInGroupRequest(
        group_id=group_id, action_id=action, device_id=device_id))


def test_static_groups_members_and_sub_groups(app_client, devices):
    a, b = devices(2)
    name = "floor-" + uuid.uuid4().hex[:6]
    parent = _group(app_client, name=name, description="first floor")
    assert parent.group_type == "STATIC" and parent.name == name
    child = _group(app_client, name=name + "-east", super_group_id=parent.group_id)
    assert child.super_group_id == parent.group_id
    _move(app_client, parent.group_id, a["device_id"])
    _move(app_client, parent.group_id, b["device_id"])
    _move(app_client, parent.group_id, b["device_id"])   # idempotent
    assert _members(app_client, parent.group_id) == [b["device_id"], a["device_id"]]   # newest first
    _move(app_client, parent.group_id, a["device_id"], "removeDevice")
    assert _members(app_client, parent.group_id) == [b["device_id"]]
    by_device = app_client.list_device_groups_by_device(ListDeviceGroupsByDeviceRequest(device_id=b["device_id"]))
    assert [g.group_id for g in by_device.device_groups] == [parent.group_id]

    updated = app_client.update_device_group(UpdateDeviceGroupRequest(
        group_id=parent.group_id, body=UpdateDeviceGroupDTO(name=name + "-renamed", description="renamed")))
    assert (updated.name, updated.description) == (name + "-renamed", "renamed")
    listed = app_client.list_device_groups(ListDeviceGroupsRequest(name=name + "-renamed"))
    assert [g.group_id for g in listed.device_groups] == [parent.group_id]

    with pytest.raises(ClientRequestException) as info:   # a group with sub-groups stays
        app_client.delete_device_group(DeleteDeviceGroupRequest(group_id=parent.group_id))
    assert info.value.status_code == 400
    app_client.delete_device_group(DeleteDeviceGroupRequest(group_id=child.group_id))
    app_client.delete_device_group(DeleteDeviceGroupRequest(group_id=parent.group_id))
    with pytest.raises(ClientRequestException) as info:
        app_client.show_device_group(ShowDeviceGroupRequest(group_id=parent.group_id))
    assert info.value.status_code == 404


def test_group_refusals(app_client, devices):
    (a,) = devices(1)
    name = "dup-" + uuid.uuid4().hex[:6]
    group = _group(app_client, name=name)
    for body in ({"name": name}, {"name": "x", "group_type": "MAGIC"}, {"name": "bad/name"},
                 {"name": "dyn-" + name, "group_type": "DYNAMIC"},
                 {"name": "dyn2-" + name, "group_type": "DYNAMIC", "dynamic_group_rule": "secret = 'x'"},
                 {"name": "orphan-" + name, "super_group_id": str(uuid.uuid4())}):
        with pytest.raises(ClientRequestException) as info:
            _group(app_client, **body)
        assert info.value.status_code == 400, body
    with pytest.raises(ClientRequestException) as info:
        _move(app_client, group.group_id, "no-such-device")
    assert info.value.status_code == 404
    with pytest.raises(ClientRequestException) as info:
        _move(app_client, str(uuid.uuid4()), a["device_id"])
    assert info.value.status_code == 404
    app_client.delete_device_group(DeleteDeviceGroupRequest(group_id=group.group_id))


def test_dynamic_group_follows_its_rule(app_client, devices, emulator):
    marker = uuid.uuid4().hex[:6]
    a, b = devices(2, product_id="dyn_" + marker)
    (other,) = devices(1)
    group = _group(app_client, name="dyn-" + marker, group_type="DYNAMIC",
                   dynamic_group_rule=f"product_id = 'dyn_{marker}'")
    assert group.group_type == "DYNAMIC" and group.dynamic_group_rule == f"product_id = 'dyn_{marker}'"
    assert sorted(_members(app_client, group.group_id)) == sorted([a["device_id"], b["device_id"]])
    with pytest.raises(ClientRequestException) as info:   # membership follows the rule only
        _move(app_client, group.group_id, other["device_id"])
    assert info.value.status_code == 400
    (c,) = devices(1, product_id="dyn_" + marker)          # a new matching device joins by itself
    assert c["device_id"] in _members(app_client, group.group_id)
    by_device = app_client.list_device_groups_by_device(ListDeviceGroupsByDeviceRequest(device_id=c["device_id"]))
    assert group.group_id in [g.group_id for g in by_device.device_groups]
    app_client.delete_device_group(DeleteDeviceGroupRequest(group_id=group.group_id))


def _tag(app_client, device_id, **tags):
    app_client.tag_device(TagDeviceRequest(body=BindTagsDTO(resource_type="device", resource_id=device_id, tags=[
        TagV5DTO(tag_key=k, tag_value=v) for k, v in tags.items()])))


def test_tags_bind_replace_unbind_query_and_search(app_client, devices):
    a, b = devices(2)
    site = "site" + uuid.uuid4().hex[:6]
    _tag(app_client, a["device_id"], **{site: "north", "kind": "meter"})
    _tag(app_client, b["device_id"], **{site: "south"})
    _tag(app_client, a["device_id"], **{site: "west"})   # an existing key gets the new value
    shown = app_client.show_device(ShowDeviceRequest(device_id=a["device_id"]))
    assert sorted((t.tag_key, t.tag_value) for t in shown.tags) == sorted([(site, "west"), ("kind", "meter")])

    def tagged(**tags):
        return sorted(r.resource_id for r in app_client.list_resources_by_tags(ListResourcesByTagsRequest(
            limit=50, body=QueryResourceByTagsDTO(resource_type="device", tags=[
                TagV5DTO(tag_key=k, tag_value=v) for k, v in tags.items()]))).resources)

    assert tagged(**{site: "west"}) == [a["device_id"]]
    assert tagged(**{site: None}) == sorted([a["device_id"], b["device_id"]])

    found = app_client.search_devices(SearchDevicesRequest(body=SearchSql(
        sql=f"select * from device where tag_key = '{site}' and tag_value = 'south'")))
    assert [d.device_id for d in found.devices] == [b["device_id"]]

    app_client.untag_device(UntagDeviceRequest(body=UnbindTagsDTO(resource_type="device",
                                                                  resource_id=a["device_id"], tag_keys=[site])))
    assert tagged(**{site: None}) == [b["device_id"]]

    with pytest.raises(ClientRequestException) as info:   # at most 10 tags per device
        _tag(app_client, b["device_id"], **{f"k{n}": "v" for n in range(10)})
    assert info.value.status_code == 400
    with pytest.raises(ClientRequestException) as info:
        _tag(app_client, b["device_id"], **{"bad key!": "v"})
    assert info.value.status_code == 400


def test_search_by_group(app_client, devices):
    a, b = devices(2)
    group = _group(app_client, name="srch-" + uuid.uuid4().hex[:6])
    _move(app_client, group.group_id, a["device_id"])
    found = app_client.search_devices(SearchDevicesRequest(body=SearchSql(
        sql=f"select * from device where group_id = '{group.group_id}'")))
    assert [d.device_id for d in found.devices] == [a["device_id"]]
    app_client.delete_device_group(DeleteDeviceGroupRequest(group_id=group.group_id))
