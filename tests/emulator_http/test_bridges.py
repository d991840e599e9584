"""Bridges through the official application SDK's models: add (given or generated id), list with paging,
reset the secret, delete; refusals; a bridge's CONNECT (its device side: test_bridge_protocol.py)."""
from __future__ import annotations

import threading
import uuid

import paho.mqtt.client as mqtt
import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkiotda.v5 import (AddBridge, AddBridgeRequest, DeleteBridgeRequest, ListBridgesRequest,
                                    ResetBridgeSecret, ResetBridgeSecretRequest)
from paho.mqtt.enums import CallbackAPIVersion

from iotda_emulator.access_front import hmac_password
from iotda_emulator.bridges import MAX_BRIDGES
from tests.emulator.bare_device import hour_stamp


@pytest.fixture
def bridges(app_client):
    made = []

    def add(name=None, bridge_id=None):
        created = app_client.add_bridge(AddBridgeRequest(body=AddBridge(
            bridge_name=name or "bridge " + uuid.uuid4().hex[:6], bridge_id=bridge_id)))
        made.append(created.bridge_id)
        return created

    yield add
    for bid in made:
        try:
            app_client.delete_bridge(DeleteBridgeRequest(bridge_id=bid))
        except ClientRequestException:
            pass   # deleted by the test itself


def _error(call):
    with pytest.raises(ClientRequestException) as err:
        call()
    return err.value.status_code, err.value.error_code


def test_add_list_reset_delete(emulator, app_client, bridges):
    given = "br_" + uuid.uuid4().hex[:10]
    first = bridges("plant (north)", given)
    assert first.bridge_id == given and first.bridge_name == "plant (north)"
    assert first.auth_info.auth_type == "SECRET" and len(first.auth_info.secret) == 32
    assert first.create_time.endswith("Z")
    second = bridges()
    assert len(second.bridge_id) == 36 and second.auth_info.secret != first.auth_info.secret   # generated

    listed = app_client.list_bridges(ListBridgesRequest(limit=50))
    ids = [b.bridge_id for b in listed.bridges]
    assert ids.index(second.bridge_id) < ids.index(first.bridge_id)   # newest first
    assert {b.status for b in listed.bridges} == {"OFFLINE"}
    mine = next(b for b in listed.bridges if b.bridge_id == given)
    assert mine.bridge_name == "plant (north)"
    assert first.auth_info.secret.encode() not in listed.raw_content   # only AddBridge shows the secret
    page1 = app_client.list_bridges(ListBridgesRequest(limit=1))
    page2 = app_client.list_bridges(ListBridgesRequest(limit=1, marker=page1.page.marker))
    assert page1.bridges[0].bridge_id != page2.bridges[0].bridge_id and page2.page.count == page1.page.count - 1

    reset = app_client.reset_bridge_secret(ResetBridgeSecretRequest(
        bridge_id=given, body=ResetBridgeSecret(force_disconnect=True)))
    assert reset.bridge_id == given and len(reset.secret) == 32 and reset.secret != first.auth_info.secret
    assert emulator.core.bridges.get_bridge(given)["secret"] == reset.secret

    app_client.delete_bridge(DeleteBridgeRequest(bridge_id=given))
    assert given not in [b.bridge_id for b in app_client.list_bridges(ListBridgesRequest(limit=50)).bridges]
    assert _error(lambda: app_client.delete_bridge(DeleteBridgeRequest(bridge_id=given)))[0] == 404
    assert _error(lambda: app_client.reset_bridge_secret(ResetBridgeSecretRequest(
        bridge_id=given, body=ResetBridgeSecret())))[0] == 404


@pytest.mark.parametrize("name,bridge_id", [
    ("bad/name", None), ("x" * 65, None), ("ok", "bad id"), ("ok", "i" * 37),
])
def test_invalid_bridges_are_refused(app_client, name, bridge_id):
    assert _error(lambda: app_client.add_bridge(AddBridgeRequest(body=AddBridge(
        bridge_name=name, bridge_id=bridge_id)))) == (400, "IOTDA.000006")


def test_a_taken_id_and_a_21st_bridge_are_refused(app_client, bridges):
    first = bridges()
    assert _error(lambda: bridges(bridge_id=first.bridge_id)) == (400, "IOTDA.000006")
    have = app_client.list_bridges(ListBridgesRequest(limit=50)).page.count
    for _ in range(MAX_BRIDGES - have):
        bridges()
    assert _error(lambda: bridges()) == (400, "IOTDA.000006")


@pytest.mark.parametrize("case,expected", [
    ("wrong secret", "Bad user name or password"),        # CONNACK 4
    ("unknown bridge", "Bad user name or password"),
    ("username differs", "Bad user name or password"),
    ("bad client id", "Client identifier not valid"),     # CONNACK 2
])
def test_a_bridge_connect_is_checked_like_a_device_connect(emulator, bridges, case, expected):
    """A bridge connects as ``{bridge_id}_3_{sign_type}_{YYYYMMDDHH}`` with its secret (doc/protocol.md §4.6)."""
    bridge = bridges()
    stamp = hour_stamp()
    bid, secret, user = bridge.bridge_id, bridge.auth_info.secret, bridge.bridge_id
    client_id = f"{bid}_3_0_{stamp}"
    if case == "wrong secret":
        secret = "0" * 32
    elif case == "unknown bridge":
        bid = user = "no_such_bridge"
        client_id = f"{bid}_3_0_{stamp}"
    elif case == "username differs":
        user = "someone_else"
    else:
        client_id = f"{bid}_3_0_notastamp"
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv311, reconnect_on_failure=False)
    client.username_pw_set(user, hmac_password(secret, stamp))
    answered, codes = threading.Event(), []
    client.on_connect = lambda c, u, f, rc, p: (codes.append(rc), answered.set())
    client.connect(emulator.host, emulator.mqtt_port, 60)
    client.loop_start()
    try:
        assert answered.wait(10)
        assert codes[0].getName() == expected
    finally:
        client.disconnect()
        client.loop_stop()
