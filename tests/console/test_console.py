"""The emulator's web console (``/console``), end to end: real emulator, real SDK devices, real HTTP.

The JSON API is exercised with ``requests``; the page itself with headless Chromium driven by selenium
(tests marked ``browser``; skipped, with the reason, when Chromium or chromedriver is not installed).
"""
from __future__ import annotations

import queue
import threading
import time
import uuid

import pytest
import requests

from iot_device_sdk_python.client.listener.command_listener import CommandListener
from iot_device_sdk_python.client.listener.property_listener import PropertyListener
from iot_device_sdk_python.client.listener.raw_device_message_listener import RawDeviceMessageListener
from iot_device_sdk_python.client.iot_result import IotResult
from iot_device_sdk_python.client.request.command_response import CommandRsp
from iot_device_sdk_python.client.request.device_message import DeviceMessage
from iot_device_sdk_python.client.request.service_property import ServiceProperty
from tests.waiting import wait_until

WAIT = 20.0          # generous: the machine may be loaded; every wait returns as soon as it holds


# ---- SDK-side helpers ----------------------------------------------------------------------------

class EchoCommands(CommandListener):
    """Answers every command with its paras echoed back (or never answers, when ``silent``)."""

    def __init__(self, device, silent: bool = False) -> None:
        self.device = device
        self.silent = silent
        self.received: "queue.Queue[tuple]" = queue.Queue()

    def on_command(self, request_id, service_id, command_name, paras):
        self.received.put((service_id, command_name, paras))
        if self.silent:
            return
        rsp = CommandRsp()
        rsp.result_code = 0
        rsp.response_name = command_name + "_rsp"
        rsp.paras = {"echo": paras}
        self.device.get_client().respond_command(request_id, rsp)


class Messages(RawDeviceMessageListener):
    def __init__(self) -> None:
        self.received: "queue.Queue[bytes]" = queue.Queue()

    def on_raw_device_message(self, message):
        self.received.put(bytes(message.payload))


class Properties(PropertyListener):
    """Keeps the properties the platform sets and reports them back on get."""

    def __init__(self, device) -> None:
        self.device = device
        self.values: dict = {}

    def on_property_set(self, request_id, services):
        for svc in services:
            self.values.setdefault(svc.service_id, {}).update(svc.properties or {})
        self.device.get_client().respond_properties_set(request_id, IotResult(0, "Success"))

    def on_property_get(self, request_id, service_id):
        sids = [service_id] if service_id else list(self.values)
        self.device.get_client().respond_properties_get(
            request_id, [ServiceProperty(service_id=s, properties=dict(self.values.get(s, {}))) for s in sids])


def _get(q: "queue.Queue", what: str, predicate=lambda item: True):
    """The first item of ``q`` that satisfies ``predicate`` (waits up to WAIT seconds)."""
    deadline = time.monotonic() + WAIT
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"the device did not receive {what}")
        try:
            item = q.get(timeout=remaining)
        except queue.Empty:
            continue
        if predicate(item):
            return item


def _message(content: str) -> DeviceMessage:
    msg = DeviceMessage()
    msg.content = content
    return msg


def _wait_api(fetch):
    """Poll ``fetch()`` until it returns something truthy (up to WAIT seconds)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        value = fetch()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def _device_id(device) -> str:
    return device.get_device_id() if hasattr(device, "get_device_id") else device.device_id


def _base(emulator) -> str:
    return emulator.http_url.rstrip("/")


def _api(emulator, path: str) -> str:
    return _base(emulator) + "/console/api" + path


# ---- JSON API ------------------------------------------------------------------------------------

def test_devices_lists_online_state_without_secrets(emulator, make_device):
    device = make_device(emulator)
    dev_id = _device_id(device)
    offline = emulator.create_device(product_id="console_product")
    body = requests.get(_api(emulator, "/devices"), timeout=WAIT).json()
    by_id = {d["device_id"]: d for d in body["devices"]}
    assert by_id[dev_id]["online"] is True
    assert by_id[offline["device_id"]]["online"] is False
    assert all("secret" not in d for d in body["devices"])
    emulator.delete_device(offline["device_id"])


def test_command_round_trip_and_errors(emulator, make_device):
    device = make_device(emulator)
    listener = EchoCommands(device)
    device.get_client().set_command_listener(listener)
    url = _api(emulator, f"/devices/{_device_id(device)}/commands")

    resp = requests.post(url, json={"service_id": "svc", "command_name": "PING", "paras": {"n": 7}},
                         timeout=WAIT)
    assert resp.status_code == 200, resp.text
    assert resp.json()["response"]["paras"]["echo"] == {"n": 7}
    assert resp.json()["response"]["response_name"] == "PING_rsp"
    assert _get(listener.received, "the command") == ("svc", "PING", {"n": 7})

    assert requests.post(url, json={"command_name": "X", "paras": [1]}, timeout=WAIT).status_code == 400
    assert requests.post(url, json={"paras": {}}, timeout=WAIT).status_code == 400
    assert requests.post(url, data="command_name=X", timeout=WAIT,
                         headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code == 415
    foreign = requests.post(url, json={"command_name": "X"}, headers={"Origin": "http://evil.example"},
                            timeout=WAIT)
    assert foreign.status_code == 403
    assert requests.post(_api(emulator, "/devices/no_such_device_x/commands"), json={"command_name": "X"},
                         timeout=WAIT).status_code == 404
    offline = emulator.create_device()
    resp = requests.post(_api(emulator, f"/devices/{offline['device_id']}/commands"), json={"command_name": "X"},
                         timeout=WAIT)
    assert resp.status_code == 409 and resp.json()["error"] == "offline"
    emulator.delete_device(offline["device_id"])


def test_command_timeout_does_not_block_the_server(emulator, make_device):
    """While one command waits for a silent device, the console keeps answering other requests."""
    device = make_device(emulator)
    device.get_client().set_command_listener(EchoCommands(device, silent=True))
    url = _api(emulator, f"/devices/{_device_id(device)}/commands")
    outcome: dict = {}

    def slow() -> None:
        outcome["resp"] = requests.post(url, json={"command_name": "NEVER", "timeout": 3}, timeout=WAIT)

    waiter = threading.Thread(target=slow, daemon=True)
    waiter.start()
    emulator.wait_for_trace(lambda e: e.device_id == _device_id(device) and e.kind == "command", timeout=WAIT)
    listing = requests.get(_api(emulator, "/devices"), timeout=WAIT)
    assert listing.status_code == 200
    assert waiter.is_alive(), "the device list was served only after the command finished"
    waiter.join(WAIT)
    assert outcome["resp"].status_code == 504
    assert outcome["resp"].json()["error"] == "timeout"


def test_message_properties_shadow_trace(emulator, make_device):
    device = make_device(emulator)
    dev_id = _device_id(device)
    messages = Messages()
    props = Properties(device)
    device.get_client().set_raw_device_msg_listener(messages)
    device.get_client().set_properties_listener(props)

    text = "hello " + uuid.uuid4().hex
    resp = requests.post(_api(emulator, f"/devices/{dev_id}/messages"), json={"payload": text}, timeout=WAIT)
    assert resp.status_code == 200 and resp.json()["message_id"]
    assert _get(messages.received, "the message", lambda p: p == text.encode())

    resp = requests.post(_api(emulator, f"/devices/{dev_id}/properties"),
                         json={"services": [{"service_id": "meter", "properties": {"level": 3}}]}, timeout=WAIT)
    assert resp.status_code == 200, resp.text
    assert resp.json()["response"]["result_code"] == 0
    assert props.values == {"meter": {"level": 3}}
    resp = requests.get(_api(emulator, f"/devices/{dev_id}/properties"), params={"service_id": "meter"},
                        timeout=WAIT)
    assert resp.status_code == 200, resp.text
    services = resp.json()["response"]["services"]
    assert services[0]["service_id"] == "meter" and services[0]["properties"] == {"level": 3}

    resp = requests.post(_api(emulator, f"/devices/{dev_id}/shadow"),
                         json={"service_id": "meter", "properties": {"level": 5}}, timeout=WAIT)
    assert resp.status_code == 200, resp.text
    version = resp.json()["version"]
    shadow = requests.get(_api(emulator, f"/devices/{dev_id}/shadow"), timeout=WAIT).json()["shadow"]
    meter = [s for s in shadow if s["service_id"] == "meter"][0]
    assert meter["desired"]["properties"] == {"level": 5}
    assert meter["version"] == version

    # The new desired value is pushed to the online device as a property set; its answer is the last
    # upstream message of this exchange, so the trace is read only once that answer is in it.
    def traced_after_shadow_push():
        body = requests.get(_api(emulator, "/trace"), params={"device_id": dev_id}, timeout=WAIT).json()
        answers = [e for e in body["entries"] if e["kind"] == "properties_set_response"]
        return body if len(answers) >= 2 else None

    trace = wait_until(traced_after_shadow_push, timeout=WAIT, what="the shadow push answered in the trace")
    assert props.values == {"meter": {"level": 5}}
    entries = trace["entries"]
    down = [e for e in entries if e["direction"] == "down" and e["kind"] == "messages_down"]
    assert any(e["payload"] == text for e in down)
    assert all(e["device_id"] == dev_id for e in entries)
    later = requests.get(_api(emulator, "/trace"), params={"device_id": dev_id, "after": trace["cursor"]},
                         timeout=WAIT).json()
    assert later["entries"] == [] and later["cursor"] == trace["cursor"]
    device.get_client().report_device_message(_message("after the cursor"))
    def newer_message():
        got = requests.get(_api(emulator, "/trace"), timeout=WAIT,
                           params={"device_id": dev_id, "after": trace["cursor"]}).json()["entries"]
        return [e for e in got if e["kind"] == "messages_up" and "after the cursor" in e["payload"]]

    newer = _wait_api(newer_message)
    assert newer[0]["direction"] == "up" and newer[0]["seq"] > trace["cursor"]


def test_ota_endpoint_answers(emulator):
    body = requests.get(_api(emulator, "/ota"), timeout=WAIT).json()
    assert isinstance(body["available"], bool)
    if body["available"]:
        assert isinstance(body["tasks"], list)
    else:
        assert "not available" in body["message"]


# ---- the page in a real browser ------------------------------------------------------------------

def _wait(driver, condition, what: str):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait
    try:
        return WebDriverWait(driver, WAIT, poll_frequency=0.1).until(condition)
    except TimeoutException:
        raise AssertionError(f"page never showed {what}") from None


def _fill(driver, element_id: str, text: str) -> None:
    from selenium.webdriver.common.by import By
    field = driver.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(text)


@pytest.mark.browser
def test_page_drives_a_real_sdk_device(emulator, make_device, browser, shot):
    from selenium.webdriver.common.by import By

    device = make_device(emulator)
    dev_id = _device_id(device)
    commands = EchoCommands(device)
    messages = Messages()
    device.get_client().set_command_listener(commands)
    device.get_client().set_raw_device_msg_listener(messages)
    # the device says something nasty: it must show as text, never become markup or script
    nasty = '<img src=x id="xss-probe" onerror="window.__xss=1"><script>window.__xss=2</script>'
    device.get_client().report_device_message(_message(nasty))
    emulator.wait_for_trace(lambda e: e.device_id == dev_id and e.direction == "up"
                            and b"xss-probe" in e.payload, timeout=WAIT)

    browser.get(_base(emulator) + "/console?device=" + dev_id)
    selector = f'li.device[data-device-id="{dev_id}"][data-online="true"]'
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, selector), f"{dev_id} online")
    browser.find_element(By.CSS_SELECTOR, selector).click()
    assert browser.find_element(By.ID, "selected-state").text == "online"

    # a command from the page reaches the device and the device's answer comes back to the page
    token = uuid.uuid4().hex[:12]
    _fill(browser, "cmd-service", "console_svc")
    _fill(browser, "cmd-name", "BLINK")
    _fill(browser, "cmd-paras", '{"times": 3, "token": "%s"}' % token)
    browser.find_element(By.ID, "cmd-send").click()
    got = _get(commands.received, "the command from the page")
    assert got == ("console_svc", "BLINK", {"times": 3, "token": token})
    result = _wait(browser, lambda d: (lambda t: t if "BLINK_rsp" in t else None)(
        d.find_element(By.ID, "cmd-result").text), "the command response")
    assert "Response from the device" in result and token in result

    # a message from the page reaches the device
    browser.find_element(By.ID, "tab-message").click()
    text = "from the page " + token
    _fill(browser, "msg-payload", text)
    browser.find_element(By.ID, "msg-send").click()
    assert _get(messages.received, "the page's message", lambda p: p == text.encode())
    _wait(browser, lambda d: "message_id" in d.find_element(By.ID, "msg-result").text, "message sent")

    # the trace shows the traffic both ways, payloads as plain text
    def trace_has(kind: str, needle: str):
        def check(d):
            rows = d.find_elements(By.CSS_SELECTOR, f'#trace-body tr[data-device-id="{dev_id}"][data-kind="{kind}"]')
            return any(needle in r.text for r in rows)
        return check

    _wait(browser, trace_has("command", token), "the command in the trace")
    _wait(browser, trace_has("command_response", token), "the command response in the trace")
    _wait(browser, trace_has("messages_down", text), "the message in the trace")
    _wait(browser, trace_has("messages_up", "xss-probe"), "the device's message in the trace")
    assert browser.find_elements(By.ID, "xss-probe") == []
    assert browser.execute_script("return window.__xss === undefined")
    shot(browser, "trace")


@pytest.mark.browser
def test_page_shows_command_timeout_and_shadow(emulator, make_device, browser, shot):
    from selenium.webdriver.common.by import By

    device = make_device(emulator)
    dev_id = _device_id(device)
    device.get_client().set_command_listener(EchoCommands(device, silent=True))
    browser.get(_base(emulator) + "/console?device=" + dev_id)
    _wait(browser, lambda d: d.find_element(By.ID, "selected-state").text == "online", "the device online")

    _fill(browser, "cmd-name", "IGNORED")
    _fill(browser, "cmd-paras", "{}")
    _fill(browser, "cmd-timeout", "2")
    browser.find_element(By.ID, "cmd-send").click()
    _wait(browser, lambda d: "Timeout" in d.find_element(By.ID, "cmd-result").text, "the timeout")

    browser.find_element(By.ID, "tab-shadow").click()
    _fill(browser, "shadow-service", "lamp")
    _fill(browser, "shadow-values", '{"brightness": 42}')
    browser.find_element(By.ID, "shadow-set").click()
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '#shadow-body tr[data-service-id="lamp"]'),
          "the shadow row")
    row = browser.find_element(By.CSS_SELECTOR, '#shadow-body tr[data-service-id="lamp"]')
    assert '"brightness": 42' in row.text
    desired = [s for s in emulator.shadow(dev_id) if s["service_id"] == "lamp"][0]["desired"]
    assert desired["properties"] == {"brightness": 42}

    shot(browser, "shadow")
    browser.find_element(By.ID, "view-btn-ota").click()
    _wait(browser, lambda d: "OTA" in d.find_element(By.ID, "ota-result").text, "the OTA view")
    browser.find_element(By.ID, "view-btn-debug").click()


@pytest.fixture
def keyed_emulator():
    """A private emulator with one application key: its console needs a login."""
    from iotda_emulator import Emulator

    emu = Emulator(command_timeout=5.0, app_keys={"console-ak": "console-sk-0123456789"}).start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.mark.browser
def test_page_logs_in_and_out_when_app_keys_are_set(keyed_emulator, browser, shot):
    from selenium.webdriver.common.by import By

    emu = keyed_emulator
    rec = emu.create_device()
    browser.get(_base(emu) + "/console")
    _wait(browser, lambda d: d.current_url.endswith("/console/login"), "the login page")
    _fill(browser, "login-ak", "console-ak")
    _fill(browser, "login-sk", "not-the-secret")
    browser.find_element(By.ID, "login-send").click()
    _wait(browser, lambda d: "wrong" in d.find_element(By.ID, "login-result").text, "the refusal")
    shot(browser, "login-refused")
    _fill(browser, "login-sk", "console-sk-0123456789")
    browser.find_element(By.ID, "login-send").click()
    selector = f'li.device[data-device-id="{rec["device_id"]}"]'
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, selector), "the device list after the login")
    cookie = browser.get_cookie("iotda_console_session")
    assert cookie and cookie["httpOnly"] and cookie.get("sameSite") == "Strict"
    assert "iotda_console_session" not in browser.execute_script("return document.cookie")
    token = cookie["value"]
    assert token not in browser.current_url
    api = requests.Session()
    api.cookies.set("iotda_console_session", token)
    assert api.get(_api(emu, "/devices"), timeout=WAIT).status_code == 200

    # a logged-in page offers "Log out"; it ends the session on the server, not only in this browser
    _wait(browser, lambda d: d.find_element(By.ID, "logout").is_displayed(), "the log-out button")
    shot(browser, "logged-in")
    browser.find_element(By.ID, "logout").click()
    _wait(browser, lambda d: d.current_url.endswith("/console/login"), "the login page after logging out")
    assert api.get(_api(emu, "/devices"), timeout=WAIT).status_code == 401
    browser.get(_base(emu) + "/console")
    _wait(browser, lambda d: d.current_url.endswith("/console/login"), "the redirect to the login page")
