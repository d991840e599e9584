"""Device lifecycle over REST, driven through the official application SDK's request/response models (a shape
mismatch fails the test): AddDevice/ShowDevice keep description, extension_info and secure_access; ListDevices
lists newest first and filters by creation time; UpdateDevice; UpdateDeviceShadowDesiredData refuses a stale
version and clears with ``desired: {}``; DeleteDeviceShadow; ChangeGateway (both gateways notified);
SearchDevices; and one error shape for routes and methods that do not exist."""
from __future__ import annotations

import datetime as _dt
import json
import math
import time
import uuid

import pytest
import requests
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkiotda.v5 import (AddDevice, AddDeviceRequest, AuthInfo, AuthInfoWithoutSecret, ChangeGateway,
                                    ChangeGatewayRequest, DeleteDeviceShadowRequest, ListDevicesRequest,
                                    SearchDevicesRequest, SearchSql, ShowDeviceRequest, ShowDeviceShadowRequest,
                                    UpdateDesired, UpdateDesireds, UpdateDevice, UpdateDeviceRequest,
                                    UpdateDeviceShadowDesiredDataRequest)

from tests.emulator.bare_device import BareDevice

PRODUCT = "life_prod"


@pytest.fixture(autouse=True)
def product(emulator):
    if emulator.get_product(PRODUCT) is None:
        emulator.create_product(PRODUCT, "lifecycle tests")


@pytest.fixture
def added(emulator, app_client):
    """Factory: ``added(**AddDevice fields)`` adds a device over REST and deletes it afterwards."""
    made = []

    def add(**fields):
        fields.setdefault("node_id", "n" + uuid.uuid4().hex[:10])
        fields.setdefault("product_id", PRODUCT)
        rsp = app_client.add_device(AddDeviceRequest(body=AddDevice(**fields)))
        made.append(rsp.device_id)
        return rsp

    yield add
    for device_id in made:
        emulator.delete_device(device_id)


def test_add_and_show_keep_description_extension_info_and_secure_access(app_client, added):
    rsp = added(description="boiler room", extension_info={"floor": 2, "zone": "B"},
                auth_info=AuthInfo(auth_type="SECRET", secret="s3cret-value", secure_access=True))
    assert rsp.description == "boiler room" and rsp.extension_info == {"floor": 2, "zone": "B"}
    assert rsp.auth_info.secure_access is True
    shown = app_client.show_device(ShowDeviceRequest(device_id=rsp.device_id))
    assert shown.description == "boiler room" and shown.extension_info == {"floor": 2, "zone": "B"}
    assert shown.auth_info.secure_access is True and shown.status == "INACTIVE"

    plain = added(auth_info=AuthInfo(auth_type="SECRET", secure_access=False))
    assert app_client.show_device(ShowDeviceRequest(device_id=plain.device_id)).auth_info.secure_access is False


def test_add_refuses_a_bad_extension_info(app_client):
    with pytest.raises(ClientRequestException) as info:
        app_client.add_device(AddDeviceRequest(body=AddDevice(node_id="n-bad-ext", product_id=PRODUCT,
                                                              extension_info={"x": "y" * 2000})))
    assert info.value.status_code == 400 and info.value.error_code == "IOTDA.000006"


def _stamp(at: float) -> str:
    return _dt.datetime.fromtimestamp(at, _dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def test_list_is_newest_first_and_filters_by_creation_time(emulator, app_client, added):
    first = added()
    boundary = math.ceil(emulator.get_device(first.device_id)["created"])   # whole seconds: the query's unit
    while time.time() < boundary + 1:
        time.sleep(0.05)
    second = added()
    listed = app_client.list_devices(ListDevicesRequest(product_id=PRODUCT, limit=50))
    ids = [d.device_id for d in listed.devices]
    assert ids.index(second.device_id) < ids.index(first.device_id)

    since = app_client.list_devices(ListDevicesRequest(product_id=PRODUCT, limit=50,
                                                       start_time=_stamp(boundary + 1)))
    since_ids = [d.device_id for d in since.devices]
    assert second.device_id in since_ids and first.device_id not in since_ids
    until = app_client.list_devices(ListDevicesRequest(product_id=PRODUCT, limit=50, end_time=_stamp(boundary)))
    until_ids = [d.device_id for d in until.devices]
    assert first.device_id in until_ids and second.device_id not in until_ids

    with pytest.raises(ClientRequestException) as info:
        app_client.list_devices(ListDevicesRequest(start_time="yesterday"))
    assert info.value.status_code == 400


def test_update_device(app_client, added):
    rsp = added(device_name="before", description="old")
    updated = app_client.update_device(UpdateDeviceRequest(device_id=rsp.device_id, body=UpdateDevice(
        device_name="after", description="new", extension_info={"k": "v"},
        auth_info=AuthInfoWithoutSecret(secure_access=False))))
    assert (updated.device_name, updated.description, updated.extension_info) == ("after", "new", {"k": "v"})
    assert updated.auth_info.secure_access is False
    shown = app_client.show_device(ShowDeviceRequest(device_id=rsp.device_id))
    assert (shown.device_name, shown.description, shown.extension_info) == ("after", "new", {"k": "v"})
    with pytest.raises(ClientRequestException) as info:
        app_client.update_device(UpdateDeviceRequest(device_id="no-such-device", body=UpdateDevice(description="x")))
    assert info.value.status_code == 404 and info.value.error_code == "IOTDA.014000"


def _desired(app_client, device_id, service_id, desired, version=None):
    return app_client.update_device_shadow_desired_data(UpdateDeviceShadowDesiredDataRequest(
        device_id=device_id, body=UpdateDesireds(shadow=[UpdateDesired(service_id=service_id, desired=desired,
                                                                      version=version)])))


def test_shadow_version_is_an_optimistic_lock_and_empty_desired_clears(app_client, added):
    device_id = added().device_id
    first = _desired(app_client, device_id, "Thermo", {"target": 20}, version=0)
    version = first.shadow[0].version
    assert version == 1
    with pytest.raises(ClientRequestException) as info:
        _desired(app_client, device_id, "Thermo", {"target": 25}, version=0)   # stale
    assert info.value.status_code == 400
    shadow = app_client.show_device_shadow(ShowDeviceShadowRequest(device_id=device_id)).shadow
    assert shadow[0].desired.properties == {"target": 20}
    _desired(app_client, device_id, "Thermo", {"mode": "eco"}, version=version)   # current: merged
    shadow = app_client.show_device_shadow(ShowDeviceShadowRequest(device_id=device_id)).shadow
    assert shadow[0].desired.properties == {"target": 20, "mode": "eco"}
    _desired(app_client, device_id, "Thermo", {})                               # no version: accepted
    shadow = app_client.show_device_shadow(ShowDeviceShadowRequest(device_id=device_id)).shadow
    assert shadow[0].desired.properties == {}


def test_delete_device_shadow(emulator, app_client, added):
    device_id = added().device_id
    _desired(app_client, device_id, "Thermo", {"target": 20})
    app_client.delete_device_shadow(DeleteDeviceShadowRequest(device_id=device_id))
    assert app_client.show_device_shadow(ShowDeviceShadowRequest(device_id=device_id)).shadow == []
    assert emulator.shadow(device_id) == []
    with pytest.raises(ClientRequestException) as info:
        app_client.delete_device_shadow(DeleteDeviceShadowRequest(device_id="no-such-device"))
    assert info.value.status_code == 404


def test_change_gateway_moves_a_child_and_tells_both_gateways(emulator, app_client, added):
    old = emulator.create_device(product_id=PRODUCT)
    new = emulator.create_device(product_id=PRODUCT)
    gateways = []
    try:
        for rec in (old, new):
            dev = BareDevice(emulator.host, emulator.mqtt_port, rec["device_id"], rec["secret"]).connect()
            gateways.append(dev)
            assert emulator.wait_online(rec["device_id"], timeout=10)
        child = added(gateway_id=old["device_id"])
        gateways[0].wait_event("add_sub_device_notify")
        app_client.change_gateway(ChangeGatewayRequest(device_id=child.device_id,
                                                       body=ChangeGateway(gateway_id=new["device_id"])))
        shown = app_client.show_device(ShowDeviceRequest(device_id=child.device_id))
        assert shown.gateway_id == new["device_id"]
        assert [c["device_id"] for c in emulator.core.children(new["device_id"])] == [child.device_id]
        gateways[0].wait_event("delete_sub_device_notify")
        added_body = gateways[1].wait_event("add_sub_device_notify")
        assert child.device_id in json.dumps(added_body)

        for bad in (child.device_id, "no-such-gateway"):
            with pytest.raises(ClientRequestException) as info:
                app_client.change_gateway(ChangeGatewayRequest(device_id=child.device_id,
                                                               body=ChangeGateway(gateway_id=bad)))
            assert info.value.status_code == 400
    finally:
        for dev in gateways:
            dev.close()
        emulator.delete_device(old["device_id"])
        emulator.delete_device(new["device_id"])


def test_search_devices(app_client, added):
    tag = uuid.uuid4().hex[:6]
    a = added(device_name=f"s-{tag}-alpha")
    b = added(device_name=f"s-{tag}-beta")

    def search(sql):
        return app_client.search_devices(SearchDevicesRequest(body=SearchSql(sql=sql)))

    found = search(f"select * from device where device_name like 's-{tag}-%' order by marker asc")
    assert [d.device_id for d in found.devices] == [a.device_id, b.device_id] and found.count == 2
    assert all(d.marker for d in found.devices)
    found = search(f"SELECT * FROM device WHERE device_name = 's-{tag}-beta' OR device_id = '{a.device_id}' "
                   f"ORDER BY marker DESC LIMIT 0,1")
    assert [d.device_id for d in found.devices] == [b.device_id] and found.count == 2
    counted = search(f"select count(*) from device where device_name like 's-{tag}-%' and status = 'INACTIVE'")
    assert counted.count == 2 and not counted.devices
    found = search(f"select device_id from device where device_id in ('{a.device_id}', 'none')")
    assert [d.device_id for d in found.devices] == [a.device_id] and found.devices[0].device_name is None

    for bad in ("select * from devices", "select * from device where secret = 'x'",
                "select * from device limit 100", "select * from device where device_id = 'a' and " * 3 + "x",
                "drop table device"):
        with pytest.raises(ClientRequestException) as info:
            search(bad)
        assert info.value.status_code == 400 and info.value.error_code == "IOTDA.000006", bad


def test_missing_routes_and_methods_answer_in_iotda_s_shape(base_url):
    for method, path in (("GET", "/v5/iot/p/no-such-thing"), ("PATCH", "/v5/iot/p/devices"),
                         ("POST", "/v5/iot/p/devices/some-device/shadow")):
        rsp = requests.request(method, base_url + path, timeout=10)
        assert rsp.status_code == 404, (method, path, rsp.status_code)
        body = rsp.json()
        assert set(body) == {"error_code", "error_msg"} and body["error_code"] == "APIGW.0101", (method, path, body)
