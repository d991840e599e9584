"""The console's JSON API for management (devices, freeze, secrets, charts, products, OTA, bootstrap, trace
search and export) and the REST FreezeDevice/UnfreezeDevice routes: real emulator, real sockets, bare devices."""
from __future__ import annotations

import csv
import hashlib
import io
import json

import requests

from tests.console._page import WAIT, api, connack, connect, message_up, report, unique
from tests.waiting import wait_until

SERVICES = [{"service_id": "meter", "service_type": "Meter",
             "properties": [{"property_name": "temp", "data_type": "decimal", "method": "RW", "unit": "C",
                             "min": "0", "max": "100"}],
             "commands": [{"command_name": "RESET", "paras": [{"para_name": "delay", "data_type": "int"}]}]}]


def _rest(emu, path: str) -> str:
    return emu.http_url + "/v5/iot/proj" + path


def test_device_create_delete_and_secret_shown_only_on_creation(emulator):
    product = unique("cp")
    assert requests.post(api(emulator, "/devices"), json={"product_id": product}, timeout=WAIT).status_code == 404
    emulator.create_product(product, "console product", service_capabilities=SERVICES)
    dev_id = unique("cd")
    resp = requests.post(api(emulator, "/devices"), json={"product_id": product, "device_id": dev_id,
                                                          "secret": "console-secret-1"}, timeout=WAIT)
    assert resp.status_code == 201, resp.text
    assert resp.json()["secret"] == "console-secret-1" and "secret" not in resp.json()["device"]
    assert emulator.get_device(dev_id)["product_id"] == product
    assert connack(emulator, dev_id, "console-secret-1") == 0

    again = requests.post(api(emulator, "/devices"), json={"product_id": product, "device_id": dev_id}, timeout=WAIT)
    assert again.status_code == 409 and again.json()["error_code"] == "IOTDA.014001"
    bad = requests.post(api(emulator, "/devices"), json={"product_id": product, "secret": "short"}, timeout=WAIT)
    assert bad.status_code == 400 and "short" not in bad.text
    listing = requests.get(api(emulator, "/devices"), timeout=WAIT).text
    assert "console-secret-1" not in listing

    assert requests.delete(api(emulator, f"/devices/{dev_id}"), timeout=WAIT).json() == {"deleted": dev_id}
    assert emulator.get_device(dev_id) is None
    assert connack(emulator, dev_id, "console-secret-1") == 4
    assert requests.delete(api(emulator, f"/devices/{dev_id}"), timeout=WAIT).status_code == 404


def test_freeze_refuses_connections_with_connack_5_until_unfrozen(emulator):
    rec = emulator.create_device()
    dev = connect(emulator, rec)
    try:
        frozen = requests.post(api(emulator, f"/devices/{rec['device_id']}/freeze"), timeout=WAIT)
        assert frozen.status_code == 200 and frozen.json()["frozen"] is True
        assert dev.wait_disconnected(WAIT), "a frozen device keeps its connection"
    finally:
        dev.close()
    assert connack(emulator, rec["device_id"], rec["secret"]) == 5
    assert requests.post(api(emulator, f"/devices/{rec['device_id']}/unfreeze"), timeout=WAIT).json()["frozen"] is False
    assert connack(emulator, rec["device_id"], rec["secret"]) == 0
    again = requests.post(api(emulator, f"/devices/{rec['device_id']}/unfreeze"), timeout=WAIT)
    assert again.status_code == 403 and again.json()["error_code"] == "IOTDA.014040"
    assert requests.post(api(emulator, "/devices/no_such_dev_x/freeze"), timeout=WAIT).status_code == 404
    emulator.delete_device(rec["device_id"])


def test_rest_freeze_and_unfreeze_in_iotda_shape(emulator):
    gw = emulator.create_device()
    child = emulator.create_device(gateway_id=gw["device_id"])
    resp = requests.post(_rest(emulator, f"/devices/{gw['device_id']}/freeze"), timeout=WAIT)
    assert resp.status_code == 204 and resp.content == b""
    assert requests.get(_rest(emulator, f"/devices/{gw['device_id']}"), timeout=WAIT).json()["status"] == "FROZEN"
    assert connack(emulator, gw["device_id"], gw["secret"]) == 5
    assert requests.post(_rest(emulator, f"/devices/{gw['device_id']}/unfreeze"), timeout=WAIT).status_code == 204
    assert connack(emulator, gw["device_id"], gw["secret"]) == 0
    not_frozen = requests.post(_rest(emulator, f"/devices/{gw['device_id']}/unfreeze"), timeout=WAIT)
    assert not_frozen.status_code == 403 and not_frozen.json()["error_code"] == "IOTDA.014040"
    sub = requests.post(_rest(emulator, f"/devices/{child['device_id']}/freeze"), timeout=WAIT)
    assert sub.status_code == 403 and sub.json()["error_code"] == "IOTDA.014038"
    assert emulator.get_device(child["device_id"])["frozen"] is False
    missing = requests.post(_rest(emulator, "/devices/no_such_device_q/freeze"), timeout=WAIT)
    assert missing.status_code == 404 and missing.json()["error_code"] == "IOTDA.014000"
    for rec in (child, gw):
        emulator.delete_device(rec["device_id"])


def test_reset_secret_switches_the_accepted_secret(emulator):
    rec = emulator.create_device()
    resp = requests.post(api(emulator, f"/devices/{rec['device_id']}/reset-secret"), json={}, timeout=WAIT)
    assert resp.status_code == 200, resp.text
    new_secret = resp.json()["secret"]
    assert new_secret != rec["secret"]
    assert connack(emulator, rec["device_id"], rec["secret"]) == 4
    assert connack(emulator, rec["device_id"], new_secret) == 0
    chosen = requests.post(api(emulator, f"/devices/{rec['device_id']}/reset-secret"),
                           json={"secret": "chosen_secret_9"}, timeout=WAIT)
    assert chosen.json()["secret"] == "chosen_secret_9"
    assert connack(emulator, rec["device_id"], "chosen_secret_9") == 0
    emulator.delete_device(rec["device_id"])


def test_state_changes_from_another_site_are_refused(emulator):
    rec = emulator.create_device()
    url = api(emulator, f"/devices/{rec['device_id']}/freeze")
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                    {"Origin": "http://evil.example"}):
        assert requests.post(url, headers=headers, timeout=WAIT).status_code == 403, headers
    form = requests.post(api(emulator, "/devices"), data="product_id=emu_product", timeout=WAIT,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 415
    assert emulator.get_device(rec["device_id"])["frozen"] is False
    same = requests.post(url, headers={"Sec-Fetch-Site": "same-origin"}, timeout=WAIT)
    assert same.status_code == 200 and emulator.get_device(rec["device_id"])["frozen"] is True
    emulator.delete_device(rec["device_id"])


def test_series_has_one_point_per_numeric_report(emulator):
    rec = emulator.create_device()
    dev = connect(emulator, rec)
    values = [21.5, 22, 19.25, 30]
    try:
        for v in values:
            report(dev, "meter", {"temp": v, "label": "x", "on": True})
        report(dev, "light", {"lux": 7})
        wait_until(lambda: len(emulator.trace(rec["device_id"], "up", "properties_report")) == 5, WAIT,
                   what="the reports in the trace")
    finally:
        dev.close()
    body = requests.get(api(emulator, f"/devices/{rec['device_id']}/series"), timeout=WAIT).json()
    assert body["reports"] == 5
    by_name = {(s["service_id"], s["property"]): s["points"] for s in body["series"]}
    assert set(by_name) == {("meter", "temp"), ("light", "lux")}       # strings and booleans are not charted
    assert [p[1] for p in by_name[("meter", "temp")]] == values
    times = [p[0] for p in by_name[("meter", "temp")]]
    assert times == sorted(times)
    emulator.delete_device(rec["device_id"])


def test_trace_filters_search_and_export(emulator):
    a, b = emulator.create_device(), emulator.create_device()
    token = unique("tok")
    dev_a, dev_b = connect(emulator, a), connect(emulator, b)
    try:
        message_up(dev_a, f"{token} from a")
        dev_a.publish(f"$oc/devices/{a['device_id']}/sys/messages/up", "=HYPERLINK(1) " + token)   # raw text
        message_up(dev_b, f"{token} from b")
        report(dev_a, "meter", {"temp": 1})
        wait_until(lambda: len(emulator.trace(b["device_id"], "up", "messages_up")) == 1, WAIT, what="b's message")
        wait_until(lambda: len(emulator.trace(a["device_id"], "up")) >= 3, WAIT, what="a's messages")
    finally:
        dev_a.close()
        dev_b.close()
    got = requests.get(api(emulator, "/trace"), params={"q": token.upper()}, timeout=WAIT).json()["entries"]
    assert {e["device_id"] for e in got} == {a["device_id"], b["device_id"]} and len(got) == 3
    only_a = requests.get(api(emulator, "/trace"), params={"q": token, "device_id": a["device_id"]},
                          timeout=WAIT).json()["entries"]
    assert len(only_a) == 2 and all(e["device_id"] == a["device_id"] for e in only_a)
    reports = requests.get(api(emulator, "/trace"), params={"device_id": a["device_id"], "kind": "properties_report"},
                           timeout=WAIT).json()["entries"]
    assert len(reports) == 1 and reports[0]["kind"] == "properties_report"
    downs = requests.get(api(emulator, "/trace"), params={"device_id": a["device_id"], "direction": "down"},
                         timeout=WAIT).json()["entries"]
    assert all(e["direction"] == "down" for e in downs)
    assert all(e["time_iso"].endswith("Z") and e["time_iso"][:4].isdigit() for e in got)

    exported = requests.get(api(emulator, "/trace/export"), params={"format": "json", "q": token}, timeout=WAIT)
    assert "attachment" in exported.headers["Content-Disposition"]
    doc = exported.json()
    assert doc["filters"] == {"text": token} and len(doc["entries"]) == 3
    as_csv = requests.get(api(emulator, "/trace/export"), params={"format": "csv", "q": token,
                                                                  "device_id": a["device_id"]}, timeout=WAIT)
    assert as_csv.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert len(rows) == 2 and {r["device_id"] for r in rows} == {a["device_id"]}
    assert json.loads(rows[0]["payload"])["content"] == f"{token} from a"
    assert rows[1]["payload"] == "'=HYPERLINK(1) " + token      # a spreadsheet shows it, never evaluates it
    assert requests.get(api(emulator, "/trace/export"), params={"format": "xml"}, timeout=WAIT).status_code == 400
    for rec in (a, b):
        emulator.delete_device(rec["device_id"])


def test_products_list_and_model(emulator):
    product = unique("mp")
    emulator.create_product(product, "model product", service_capabilities=SERVICES)
    devs = [emulator.create_device(product_id=product) for _ in range(2)]
    listed = {p["product_id"]: p for p in requests.get(api(emulator, "/products"), timeout=WAIT).json()["products"]}
    assert listed[product]["devices"] == 2 and listed[product]["services"] == 1
    model = requests.get(api(emulator, f"/products/{product}"), timeout=WAIT).json()["product"]
    assert model["service_capabilities"][0]["properties"][0]["property_name"] == "temp"
    assert model["service_capabilities"][0]["commands"][0]["command_name"] == "RESET"
    assert requests.get(api(emulator, "/products/no_such_product"), timeout=WAIT).status_code == 404
    for rec in devs:
        emulator.delete_device(rec["device_id"])


def test_ota_upload_and_task(fresh_emulator):
    emu = fresh_emulator
    rec = emu.create_device()
    data = b"\x00firmware\xff" * 100
    up = requests.post(api(emu, "/ota/packages"), params={"version": "2.0", "file_name": "fw.bin"}, data=data,
                       headers={"Content-Type": "application/octet-stream"}, timeout=WAIT)
    assert up.status_code == 201, up.text
    pkg = up.json()["package"]
    assert pkg["sign"] == hashlib.sha256(data).hexdigest() and pkg["file_size"] == len(data)
    assert requests.post(api(emu, "/ota/packages"), params={"version": "2.0"}, data=b"x", timeout=WAIT,
                         headers={"Content-Type": "text/plain"}).status_code == 415
    tasks = requests.post(api(emu, "/ota/tasks"), json={"package_id": pkg["package_id"],
                                                        "device_ids": [rec["device_id"], "nobody_here"]},
                          timeout=WAIT).json()["tasks"]
    assert tasks[1] == {"device_id": "nobody_here", "error": "no such device"}
    task = emu.service("$ota").task(tasks[0]["task_id"])
    assert task["device_id"] == rec["device_id"] and task["target_version"] == "2.0"
    listed = requests.get(api(emu, "/ota"), timeout=WAIT).json()
    assert [t["task_id"] for t in listed["tasks"]] == [tasks[0]["task_id"]]
    assert requests.delete(api(emu, f"/ota/packages/{pkg['package_id']}"), timeout=WAIT).status_code == 200
    assert emu.service("$ota").package(pkg["package_id"]) is None


def test_bootstrap_view_and_group_creation_never_list_secrets(fresh_emulator):
    emu = fresh_emulator
    bs = emu.service("$bootstrap")
    existing = bs.add_registration_group("grp-a", name="line-a")
    bs.add_policy("line", keyword_source="device_name", priority=2, name="by-line")
    view = requests.get(api(emu, "/bootstrap"), timeout=WAIT).json()
    assert view["available"] and view["address"] == bs.address
    assert [g["scope_id"] for g in view["groups"]] == ["grp-a"]
    assert [p["name"] for p in view["policies"]] == ["by-line"]
    resp = requests.post(api(emu, "/bootstrap/groups"), json={"name": "line-b"}, timeout=WAIT)
    assert resp.status_code == 201
    scope = resp.json()["group"]["scope_id"]
    assert bs.get_group(scope)["secret"] == resp.json()["secret"]
    listing = requests.get(api(emu, "/bootstrap"), timeout=WAIT).text
    assert existing["secret"] not in listing and resp.json()["secret"] not in listing


def test_login_session_cookie_and_no_secret_in_logs(caplog):
    """With app keys: the session cookie is HttpOnly, SameSite=Strict and Secure over HTTPS; neither the secret
    key nor device secrets made through the console reach a log line at any level."""
    import logging

    from iotda_emulator import Emulator

    caplog.set_level(logging.DEBUG)
    ak, sk = "console-ak", "console-sk-very-secret-42"
    with Emulator(app_keys={ak: sk}) as emu:
        assert requests.get(api(emu, "/devices"), timeout=WAIT).status_code == 401
        wrong = requests.post(api(emu, "/login"), json={"access_key": ak, "secret_key": sk + "x"}, timeout=WAIT)
        assert wrong.status_code == 401 and "Set-Cookie" not in wrong.headers
        resp = requests.post(emu.https_url + "/console/api/login", json={"access_key": ak, "secret_key": sk},
                             verify=emu.ca_file, timeout=WAIT)
        assert resp.status_code == 200, resp.text
        cookie = resp.headers["Set-Cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie
        assert sk not in resp.headers["Set-Cookie"]
        plain = requests.Session()
        plain_login = plain.post(api(emu, "/login"), json={"access_key": ak, "secret_key": sk}, timeout=WAIT)
        assert "secure" not in plain_login.headers["Set-Cookie"].lower()    # a plain-HTTP browser would drop it
        assert plain.get(api(emu, "/devices"), timeout=WAIT).status_code == 200

        product = unique("lp")
        emu.create_product(product, "logged", service_capabilities=SERVICES)
        made = plain.post(api(emu, "/devices"), json={"product_id": product, "secret": "made-in-console-1"},
                          timeout=WAIT).json()
        reset = plain.post(api(emu, f"/devices/{made['device']['device_id']}/reset-secret"), json={},
                           timeout=WAIT).json()["secret"]
        assert plain.post(api(emu, f"/devices/{made['device']['device_id']}/reset-secret"),
                          json={"secret": "bad secret!"}, timeout=WAIT).status_code == 400
        group = plain.post(api(emu, "/bootstrap/groups"), json={"name": "g"}, timeout=WAIT).json()["secret"]
        assert plain.post(api(emu, "/logout"), json={}, timeout=WAIT).status_code == 200
        assert plain.get(api(emu, "/devices"), timeout=WAIT).status_code == 401
    logged = caplog.text
    assert logged, "nothing was logged: the check below would prove nothing"
    for secret in (sk, "made-in-console-1", reset, "bad secret!", group):
        assert secret not in logged


def test_deleting_a_sub_device_tells_its_gateway(emulator):
    gw = emulator.create_device()
    child = emulator.create_device(gateway_id=gw["device_id"], node_id=unique("n"))
    emulator.service("$sub_device_manager").registry_changed(gw["device_id"])   # the child is known
    gateway = connect(emulator, gw)
    try:
        resp = requests.delete(api(emulator, f"/devices/{child['device_id']}"), timeout=WAIT)
        assert resp.status_code == 200, resp.text
        notify = gateway.expect_event("$sub_device_manager", "delete_sub_device_notify", timeout=WAIT)
        paras = json.loads(notify.payload)["services"][0]["paras"]
        assert [d["device_id"] for d in paras["devices"]] == [child["device_id"]]
    finally:
        gateway.close()
    emulator.delete_device(gw["device_id"])


def test_official_application_sdk_freezes_and_unfreezes(emulator):
    """huaweicloudsdkiotda's FreezeDevice / UnfreezeDevice work against the emulator unchanged."""
    from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
    from huaweicloudsdkiotda.v5 import FreezeDeviceRequest, UnfreezeDeviceRequest

    from tests.emulator_http.conftest import make_app_client

    client = make_app_client(emulator.http_url)
    rec = emulator.create_device()
    client.freeze_device(FreezeDeviceRequest(device_id=rec["device_id"]))
    assert emulator.get_device(rec["device_id"])["frozen"] is True
    assert connack(emulator, rec["device_id"], rec["secret"]) == 5
    client.unfreeze_device(UnfreezeDeviceRequest(device_id=rec["device_id"]))
    assert connack(emulator, rec["device_id"], rec["secret"]) == 0
    try:
        client.unfreeze_device(UnfreezeDeviceRequest(device_id=rec["device_id"]))
    except ClientRequestException as exc:
        assert exc.status_code == 403 and exc.error_code == "IOTDA.014040"
    else:
        raise AssertionError("unfreezing a device that is not frozen was accepted")
    emulator.delete_device(rec["device_id"])


def test_trace_limit_reports_what_it_left_out(emulator):
    rec = emulator.create_device()
    token = unique("lim")
    dev = connect(emulator, rec)
    try:
        for i in range(3):
            message_up(dev, f"{token} {i}")
        wait_until(lambda: len(emulator.trace(rec["device_id"], "up", "messages_up")) == 3, WAIT, what="3 messages")
    finally:
        dev.close()
    for extra in ({}, {"q": token}):
        params = dict(extra, device_id=rec["device_id"], kind="messages_up")
        two = requests.get(api(emulator, "/trace"), params=dict(params, limit=2), timeout=WAIT).json()
        assert two["truncated"] is True, extra
        assert [json.loads(e["payload"])["content"] for e in two["entries"]] == [f"{token} 1", f"{token} 2"]
        three = requests.get(api(emulator, "/trace"), params=dict(params, limit=3), timeout=WAIT).json()
        assert three["truncated"] is False and len(three["entries"]) == 3, extra
    emulator.delete_device(rec["device_id"])
