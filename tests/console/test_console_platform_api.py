"""The console's JSON API for remote configuration, broadcast, tunnels, asynchronous commands and groups/tags:
the same-origin rule, refusals as clear 4xx answers, and tunnel tokens shown once and never listed or logged.
Real emulator, real sockets, bare devices."""
from __future__ import annotations

import logging

import requests

from tests.console._page import WAIT, api, connect, unique
from tests.waiting import wait_until


def _post(emu, path: str, body: dict, **headers: str) -> requests.Response:
    return requests.post(api(emu, path), json=body, headers=headers or None, timeout=WAIT)


def test_state_changes_from_another_site_are_refused_on_every_new_endpoint(emulator):
    rec = emulator.create_device()
    did = rec["device_id"]
    group = emulator.core.groups.create_group(unique("xs"))
    calls = [("/config-tasks", {"config_content": {"a": 1}, "device_ids": [did]}),
             ("/broadcasts", {"topic_full_name": "$oc/broadcast/xs", "payload": "x"}),
             ("/tunnels", {"device_id": did}),
             (f"/devices/{did}/async-commands", {"command_name": "X"}),
             ("/groups", {"name": unique("xs")}),
             (f"/groups/{group['group_id']}/devices", {"device_id": did}),
             (f"/devices/{did}/tags", {"tag_key": "k"})]
    before_configs = len(emulator.service("$device_config").tasks())
    before_broadcasts = len(emulator.service("$broadcast").messages())
    for path, body in calls:
        for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "http://evil.example"}):
            assert _post(emulator, path, body, **headers).status_code == 403, (path, headers)
        form = requests.post(api(emulator, path), data="a=1", timeout=WAIT,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert form.status_code == 415, path
    assert len(emulator.service("$device_config").tasks()) == before_configs
    assert len(emulator.service("$broadcast").messages()) == before_broadcasts
    assert emulator.service("$tunnel_manager").tunnels(did) == []
    assert emulator.service("$async_commands").queue(did) == []
    assert emulator.core.groups.tags_of(did) == [] and emulator.core.groups.static_groups_of(did) == []
    emulator.core.groups.delete_group(group["group_id"])
    emulator.delete_device(did)


def test_tunnel_token_is_in_the_creation_answer_only_and_never_logged(emulator, caplog):
    rec = emulator.create_device()
    did = rec["device_id"]
    caplog.set_level(logging.DEBUG)
    created = _post(emulator, "/tunnels", {"device_id": did})
    assert created.status_code == 201, created.text
    answer = created.json()
    token, tunnel_id = answer["tunnel_access_token"], answer["tunnel"]["tunnel_id"]
    svc = emulator.service("$tunnel_manager")
    assert svc.authorize(tunnel_id, "source", token) is None
    assert f"--tunnel-uri {answer['tunnel']['tunnel_uri']}" in answer["connect"] and token in answer["connect"]

    listing = requests.get(api(emulator, "/tunnels"), timeout=WAIT)
    assert token not in listing.text
    row = [t for t in listing.json()["tunnels"] if t["tunnel_id"] == tunnel_id][0]
    assert row["status"] == "OPEN" and row["device_id"] == did and "<source token" in row["connect"]

    again = _post(emulator, "/tunnels", {"device_id": did})            # IoTDA: one tunnel per device
    assert again.status_code == 400 and "already has a tunnel" in again.json()["message"]
    closed = _post(emulator, f"/tunnels/{tunnel_id}/close", {})
    assert closed.status_code == 200 and closed.json()["tunnel"]["status"] == "CLOSED"
    assert requests.delete(api(emulator, f"/tunnels/{tunnel_id}"), timeout=WAIT).status_code == 200
    assert svc.tunnel(tunnel_id) is None
    assert requests.delete(api(emulator, f"/tunnels/{tunnel_id}"), timeout=WAIT).status_code == 404
    assert _post(emulator, f"/tunnels/{tunnel_id}/close", {}).status_code == 404
    assert _post(emulator, "/tunnels", {"device_id": unique("nobody")}).status_code == 404
    assert not [r for r in caplog.records if token in r.getMessage()]
    emulator.delete_device(did)


def test_bad_requests_are_clear_refusals(emulator):
    rec = emulator.create_device()
    did = rec["device_id"]
    cases = [
        ("/config-tasks", {"config_content": [1], "device_ids": [did]}, 400, "config_content"),
        ("/config-tasks", {"config_content": {}, "device_ids": []}, 400, "device_ids"),
        ("/config-tasks", {"config_content": {}, "device_ids": [did], "timeout_days": 31}, 400, "timeout"),
        ("/config-tasks", {"config_content": {}, "device_ids": [unique("nobody")]}, 404, "not found"),
        ("/broadcasts", {"topic_full_name": "$oc/devices/x", "payload": "x"}, 400, "$oc/broadcast/"),
        ("/broadcasts", {"topic_full_name": "$oc/broadcast/t", "payload": "x", "ttl": 7}, 400, "multiple of 5"),
        ("/broadcasts", {"topic_full_name": "$oc/broadcast/t", "payload": 5}, 400, "payload"),
        (f"/devices/{did}/async-commands", {"command_name": "X", "send_strategy": "later"}, 400, "send_strategy"),
        (f"/devices/{did}/async-commands", {"command_name": "X", "expire_time": -1}, 400, "expire_time"),
        (f"/devices/{did}/async-commands", {"paras": {}}, 400, "command_name"),
        ("/groups", {"name": "x", "group_type": "DYNAMIC"}, 400, "dynamic_group_rule"),
        ("/groups", {"name": "x", "group_type": "DYNAMIC", "dynamic_group_rule": "nonsense ==="}, 400, "rule"),
        ("/groups/00000000-0000-0000-0000-000000000000/devices", {"device_id": did}, 404, "not found"),
        (f"/devices/{did}/tags", {"tag_key": "bad key!"}, 400, "tag_key"),
    ]
    for path, body, status, words in cases:
        resp = _post(emulator, path, body)
        assert resp.status_code == status, (path, body, resp.text)
        assert words in resp.json()["message"], (path, resp.json())
        assert resp.json()["error_code"].startswith("IOTDA."), resp.json()
    assert emulator.service("$async_commands").queue(did) == []
    emulator.delete_device(did)


def test_async_commands_immediately_fail_offline_and_delay_is_queued(emulator):
    rec = emulator.create_device()
    did = rec["device_id"]
    now = _post(emulator, f"/devices/{did}/async-commands", {"command_name": "NOW", "send_strategy": "immediately"})
    assert now.status_code == 201 and now.json()["command"]["status"] == "FAILED"
    later = _post(emulator, f"/devices/{did}/async-commands", {"command_name": "LATER", "paras": {"secret": "s3"},
                                                                "expire_time": 600})
    assert later.status_code == 201 and later.json()["command"]["status"] == "PENDING"
    views = requests.get(api(emulator, f"/devices/{did}/async-commands"), timeout=WAIT).json()
    assert [c["command_name"] for c in views["queue"]] == ["LATER"]
    assert views["queue"][0]["paras"] == {"secret": "***"}          # masked as the trace masks it
    assert [(c["command_name"], c["status"]) for c in views["history"]] == [("NOW", "FAILED")]
    assert views["messages"] == []
    message_id = emulator.send_message(did, "for later")             # offline: cached
    views = requests.get(api(emulator, f"/devices/{did}/async-commands"), timeout=WAIT).json()
    assert [(m["message_id"], m["status"]) for m in views["messages"]] == [(message_id, "PENDING")]
    assert "for later" not in str(views["messages"])
    dev = connect(emulator, rec)
    try:
        dev.expect(f"$oc/devices/{did}/sys/messages/down", timeout=WAIT)
        prefix = f"$oc/devices/{did}/sys/commands/request_id="
        request_id = dev.expect(prefix, timeout=WAIT).topic[len(prefix):]
        # answered, so no command is left waiting (the emulator's stop must not wait on one)
        dev.publish(f"$oc/devices/{did}/sys/commands/response/request_id={request_id}", {"result_code": 1})
        wait_until(lambda: [c["status"] for c in requests.get(api(emulator, f"/devices/{did}/async-commands"),
                                                             timeout=WAIT).json()["history"]] == ["FAILED", "FAILED"],
                   WAIT, what="the device's answer in the history")
    finally:
        dev.close()
    assert requests.get(api(emulator, f"/devices/{unique('nobody')}/async-commands"), timeout=WAIT).status_code == 404
    emulator.delete_device(did)


def test_groups_view_lists_static_and_dynamic_members_and_tags(emulator):
    a, b = emulator.create_device(), emulator.create_device()
    key = unique("k")
    static = _post(emulator, "/groups", {"name": unique("s")}).json()["group"]
    dynamic = _post(emulator, "/groups", {"name": unique("d"), "group_type": "DYNAMIC",
                                          "dynamic_group_rule": f"tag_key = '{key}'"}).json()["group"]
    assert _post(emulator, f"/groups/{static['group_id']}/devices", {"device_id": a["device_id"]}).status_code == 200
    tagged = _post(emulator, f"/devices/{b['device_id']}/tags", {"tag_key": key, "tag_value": "v1"})
    assert tagged.json()["tags"] == [{"tag_key": key, "tag_value": "v1"}]
    refused = _post(emulator, f"/groups/{dynamic['group_id']}/devices", {"device_id": a["device_id"]})
    assert refused.status_code == 400 and "dynamic" in refused.json()["message"]

    view = requests.get(api(emulator, "/groups"), timeout=WAIT).json()
    by_id = {g["group_id"]: g for g in view["groups"]}
    assert by_id[static["group_id"]]["members"] == [a["device_id"]]
    assert by_id[dynamic["group_id"]]["members"] == [b["device_id"]]
    assert view["tags"][b["device_id"]] == [{"tag_key": key, "tag_value": "v1"}]

    out = _post(emulator, f"/groups/{static['group_id']}/devices", {"device_id": a["device_id"], "remove": True})
    assert {g["group_id"]: g for g in out.json()["groups"]}[static["group_id"]]["members"] == []
    untag = requests.delete(api(emulator, f"/devices/{b['device_id']}/tags?tag_key={key}"), timeout=WAIT)
    assert untag.json()["tags"] == []
    for g in (static, dynamic):
        assert requests.delete(api(emulator, f"/groups/{g['group_id']}"), timeout=WAIT).status_code == 200
        assert emulator.core.groups.get_group(g["group_id"]) is None
    for rec in (a, b):
        emulator.delete_device(rec["device_id"])


def test_new_endpoints_need_the_login_when_app_keys_are_set():
    from iotda_emulator import Emulator

    with Emulator(app_keys={"plat-ak": "plat-sk-0123456789"}) as emu:
        rec = emu.create_device()
        for path in ("/config-tasks", "/broadcasts", "/tunnels", "/groups", f"/devices/{rec['device_id']}/tags",
                     f"/devices/{rec['device_id']}/async-commands"):
            assert requests.get(api(emu, path), timeout=WAIT).status_code == 401, path
        assert _post(emu, "/tunnels", {"device_id": rec["device_id"]}).status_code == 401
        assert emu.service("$tunnel_manager").tunnels() == []
