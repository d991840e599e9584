"""The console's views of remote configuration, broadcast, tunnels, asynchronous commands and groups/tags in
headless Chromium, each checked by what a device sees and what the page then shows (screenshots in the
artefacts directory, see conftest.py), and the 420 px layout of these views."""
from __future__ import annotations

import json
import ssl

import pytest
import requests

from tests.console.conftest import script_errors
from tests.console._page import WAIT, api, by, click, connect, fill, open_console, texts, unique, wait

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def no_script_errors(browser):
    """Every page test also fails on an uncaught JavaScript error."""
    script_errors(browser)
    yield
    assert script_errors(browser) == []


def _cell(browser, row_css: str, col: str) -> str:
    return " ".join(texts(browser, f'{row_css} td[data-col="{col}"]'))


def _event(msg) -> dict:
    return msg.json()["services"][0]


def test_config_task_reaches_the_device_and_the_page_shows_its_answer(emulator, browser, shot):
    rec = emulator.create_device()
    did = rec["device_id"]
    dev = connect(emulator, rec)
    try:
        open_console(browser, emulator, did)
        click(browser, "view-btn-config")
        assert browser.find_element(*by("#cfg-devices")).get_attribute("value") == did   # the selected device
        fill(browser, "cfg-content", '{"sample_rate": 5, "mode": "eco"}')
        click(browser, "cfg-send")
        wait(browser, lambda d: "created for 1 device(s)" in d.find_element(*by("#cfg-result")).text, "the task")
        update = _event(dev.expect_event("$device_config", "config_update", timeout=WAIT))
        assert update["paras"]["config_content"] == {"sample_rate": 5, "mode": "eco"}
        task_id = emulator.service("$device_config").tasks()[-1]["task_id"]
        row = f'#cfg-body tr[data-task-id="{task_id}"][data-device-id="{did}"]'
        wait(browser, lambda d: _cell(d, row, "status") == "PROCESSING", "the device's status PROCESSING")

        dev.event_up("$device_config", "config_update_response", {"result_code": 0, "description": "applied v5"},
                     event_id=update["event_id"])
        # no click: the view refreshes itself
        wait(browser, lambda d: _cell(d, row, "status") == "SUCCESS", "the device's answer")
        assert _cell(browser, row, "result_code") == "0"
        assert _cell(browser, row, "description") == "applied v5"
        assert _cell(browser, row, "task_status").startswith("Success")
        shot(browser, "config")
    finally:
        dev.close()
    emulator.delete_device(did)


def test_broadcast_from_the_page_reaches_a_subscribed_device(emulator, browser, shot):
    rec = emulator.create_device()
    topic = "$oc/broadcast/" + unique("floor")
    dev = connect(emulator, rec)
    try:
        assert dev.subscribe(topic) == [1]
        open_console(browser, emulator)
        click(browser, "view-btn-broadcast")
        fill(browser, "bc-topic", topic)
        fill(browser, "bc-payload", "fire drill at 10:00")
        click(browser, "bc-send")
        got = dev.expect(topic, timeout=WAIT)
        assert got.payload == b"fire drill at 10:00"
        wait(browser, lambda d: "to 1 subscribed device(s)" in d.find_element(*by("#bc-result")).text,
             "the broadcast sent to one device")
        sent = [m for m in emulator.service("$broadcast").messages(topic)]
        assert len(sent) == 1 and sent[0]["subscribers"] == [rec["device_id"]]
        row = f'#bc-body tr[data-key="{sent[0]["message_id"]}"]'
        wait(browser, lambda d: d.find_elements(*by(row)), "the broadcast in the list")
        assert _cell(browser, row, "subscribers") == rec["device_id"]
        assert _cell(browser, row, "topic_full_name") == topic

        fill(browser, "bc-topic", "$oc/broadcast/")  # no topic after the prefix: the page shows the refusal
        click(browser, "bc-send")
        wait(browser, lambda d: "name a topic after it" in d.find_element(*by("#bc-result")).text, "the refusal")
        assert len(emulator.service("$broadcast").messages(topic)) == 1
        shot(browser, "broadcast")
    finally:
        dev.close()
    emulator.delete_device(rec["device_id"])


def test_async_command_pending_then_sent_then_successful(emulator, browser, shot):
    rec = emulator.create_device()
    did = rec["device_id"]
    open_console(browser, emulator, did)
    click(browser, "tab-async")
    fill(browser, "async-name", "REBOOT")
    fill(browser, "async-paras", '{"delay": 3}')
    click(browser, "async-send")                       # the device is offline: cached (delay)
    wait(browser, lambda d: "PENDING" in d.find_element(*by("#async-result")).text, "the command cached")
    command_id = emulator.service("$async_commands").queue(did)[0]["command_id"]
    row = f'#async-queue tr[data-key="{command_id}"]'
    wait(browser, lambda d: _cell(d, row, "status") == "PENDING", "PENDING in the queue")
    shot(browser, "pending")

    dev = connect(emulator, rec)
    try:
        prefix = f"$oc/devices/{did}/sys/commands/request_id="
        msg = dev.expect(prefix, timeout=WAIT)
        assert msg.topic[len(prefix):] == command_id
        assert msg.json()["command_name"] == "REBOOT" and msg.json()["paras"] == {"delay": 3}
        wait(browser, lambda d: _cell(d, row, "status") == "SENT", "SENT after the device connected")
        dev.publish(f"$oc/devices/{did}/sys/commands/response/request_id={command_id}",
                    {"result_code": 0, "paras": {"rebooted": True}})
        done = f'#async-history tr[data-key="{command_id}"]'
        wait(browser, lambda d: _cell(d, done, "status") == "SUCCESSFUL", "SUCCESSFUL in the history")
        assert not browser.find_elements(*by(row))
        assert json.loads(_cell(browser, done, "result"))["paras"] == {"rebooted": True}

        # message statuses of the device, as the platform keeps them
        message_id = emulator.send_message(did, "status check")
        msg_row = f'#async-messages tr[data-key="{message_id}"]'
        wait(browser, lambda d: _cell(d, msg_row, "status") ==
             emulator.core.messages.get(did, message_id)["status"], "the message's status")
        shot(browser, "successful")
    finally:
        dev.close()
    emulator.delete_device(did)


def test_tunnel_opened_connected_closed_and_deleted_from_the_page(emulator, browser, shot):
    from iot_device_sdk_python.tunnel.websocket_client import WebSocketClient, WebSocketClosed

    rec = emulator.create_device()
    did = rec["device_id"]
    svc = emulator.service("$tunnel_manager")
    dev = connect(emulator, rec)
    link = None
    try:
        open_console(browser, emulator, did)
        click(browser, "view-btn-tunnels")
        assert browser.find_element(*by("#tun-device")).get_attribute("value") == did
        click(browser, "tun-send")
        source_token = wait(browser, lambda d: d.find_element(*by("#tun-new-token")).text, "the source token")
        tunnel_id = svc.tunnels(did)[0]["tunnel_id"]
        assert svc.authorize(tunnel_id, "source", source_token) is None        # the token shown opens the source
        command = browser.find_element(*by("#tun-connect")).text
        assert "python -m iotda_emulator tunnel-connect --tunnel-uri" in command and source_token in command
        shot(browser, "opened")

        notify = _event(dev.expect_event("$tunnel_manager", "tunnel_notify", timeout=WAIT))["paras"]
        device_token = notify["tunnel_access_token"]
        ctx = ssl.create_default_context(cafile=emulator.ca_file) if notify["tunnel_uri"].startswith("wss") else None
        link = WebSocketClient.connect(notify["tunnel_uri"], {"tunnel_access_token": device_token}, timeout=WAIT,
                                       ssl_context=ctx)
        row = f'#tun-body tr[data-tunnel-id="{tunnel_id}"]'
        wait(browser, lambda d: _cell(d, row, "device_side") == "CONNECTED", "the device side connected")
        assert _cell(browser, row, "status") == "OPEN"
        listed = browser.find_element(*by("#tun-body")).get_attribute("textContent")
        listed += browser.find_element(*by(row + " td")).get_attribute("title")
        assert source_token not in listed and device_token not in listed
        served = requests.get(api(emulator, f"/trace?device_id={did}"), timeout=WAIT).text
        assert "tunnel_notify" in served and device_token not in served     # the trace masks the device token
        assert source_token not in requests.get(api(emulator, "/tunnels"), timeout=WAIT).text

        browser.find_element(*by(row + ' button[data-action="close"]')).click()
        wait(browser, lambda d: _cell(d, row, "status") == "CLOSED", "the tunnel CLOSED")
        wait(browser, lambda d: _cell(d, row, "device_side") == "DISCONNECTED", "the device side disconnected")
        assert svc.tunnel(tunnel_id)["status"] == "CLOSED"
        with pytest.raises(WebSocketClosed):          # the relay hangs up the device side
            while True:
                assert link.recv_text(timeout=WAIT) is not None, "the relay kept the device side open"
        shot(browser, "closed")

        browser.find_element(*by(row + ' button[data-action="delete"]')).click()
        wait(browser, lambda d: not d.find_elements(*by(row)), "the tunnel gone from the list")
        assert svc.tunnel(tunnel_id) is None and svc.authorize(tunnel_id, "source", source_token) is not None
    finally:
        if link is not None:
            link.close()
        dev.close()
    for t in svc.tunnels(did):
        svc.delete_tunnel(t["tunnel_id"])
    emulator.delete_device(did)


def test_groups_created_filled_and_tags_bound_from_the_page(emulator, browser, shot):
    from selenium.webdriver.support.ui import Select

    a, b = emulator.create_device(), emulator.create_device()
    groups = emulator.core.groups
    static_name, dynamic_name, floor = unique("line"), unique("floor"), unique("f")
    open_console(browser, emulator)
    click(browser, "view-btn-groups")
    fill(browser, "grp-name", static_name)
    click(browser, "grp-send")
    row = f'#grp-body tr[data-name="{static_name}"]'
    wait(browser, lambda d: d.find_elements(*by(row)), "the static group")
    group_id = groups.list_groups(name=static_name)[0]["group_id"]
    options = "#grp-add-group option"
    wait(browser, lambda d: group_id in [o.get_attribute("value") for o in d.find_elements(*by(options))],
         "the group offered for adding devices")
    Select(browser.find_element(*by("#grp-add-group"))).select_by_value(group_id)
    fill(browser, "grp-add-device", a["device_id"])
    click(browser, "grp-add-send")
    wait(browser, lambda d: _cell(d, row, "members") == a["device_id"], "the member in the group")
    assert groups.static_groups_of(a["device_id"]) == [group_id]

    fill(browser, "tag-device", b["device_id"])
    fill(browser, "tag-key", floor)
    fill(browser, "tag-value", "3")
    click(browser, "tag-send")
    tag_row = f'#tag-body tr[data-device-id="{b["device_id"]}"]'
    wait(browser, lambda d: _cell(d, tag_row, "tags") == f"{floor}=3", "the device's tag")
    assert groups.tags_of(b["device_id"]) == [{"tag_key": floor, "tag_value": "3"}]

    fill(browser, "grp-name", dynamic_name)
    Select(browser.find_element(*by("#grp-type"))).select_by_value("DYNAMIC")
    fill(browser, "grp-rule", f"tag_key = '{floor}'")
    click(browser, "grp-send")
    dyn = f'#grp-body tr[data-name="{dynamic_name}"]'
    wait(browser, lambda d: _cell(d, dyn, "members") == b["device_id"], "the tagged device in the dynamic group")
    assert _cell(browser, dyn, "type") == "DYNAMIC"

    fill(browser, "grp-name", dynamic_name)          # the name is taken: the page shows why
    click(browser, "grp-send")
    wait(browser, lambda d: "already exists" in d.find_element(*by("#grp-result")).text, "the refusal")
    shot(browser, "groups")
    for rec in (a, b):
        emulator.delete_device(rec["device_id"])
    for name in (static_name, dynamic_name):
        groups.delete_group(groups.list_groups(name=name)[0]["group_id"])


def test_new_views_fit_420_px(emulator, browser, shot):
    rec = emulator.create_device(device_id=unique("narrow_platform_device_with_a_long_identifier_"))
    did = rec["device_id"]
    emulator.service("$device_config").create_task({"k": "v" * 80}, [did])
    emulator.service("$async_commands").create(did, None, "A_RATHER_LONG_COMMAND_NAME", {"x": "y" * 80})
    tunnel = emulator.service("$tunnel_manager").create_tunnel(did)
    try:
        open_console(browser, emulator, did)
        browser.set_window_size(420, 900)
        width = browser.execute_script("return window.innerWidth")
        assert width <= 420

        def fits(d):
            return d.execute_script("return document.documentElement.scrollWidth") <= width

        click(browser, "tab-async")
        wait(browser, lambda d: d.find_elements(*by("#async-queue tr")), "the queue")
        wait(browser, fits, f"the async panel within {width} px")
        shot(browser, "async-420")
        for view, filled in (("view-btn-config", "#cfg-body tr"), ("view-btn-broadcast", None),
                             ("view-btn-tunnels", "#tun-body tr"), ("view-btn-groups", None)):
            click(browser, view)
            if filled:
                wait(browser, lambda d: d.find_elements(*by(filled)), f"rows in {view}")
            wait(browser, fits, f"{view} within {width} px")
            shot(browser, view + "-420")
        for button in browser.find_elements(*by(".view-btn")):      # the view buttons wrap, all on screen
            r = button.rect
            assert r["x"] >= 0 and r["x"] + r["width"] <= width, button.text
    finally:
        browser.set_window_size(1400, 1000)
        emulator.service("$tunnel_manager").delete_tunnel(tunnel["tunnel_id"])
    emulator.delete_device(did)
