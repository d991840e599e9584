"""The console's pages in headless Chromium, each feature checked by what it does (screenshots in the artefacts
directory, see conftest.py): trace filters and export, property charts, products, device management (create,
freeze, reset secret, delete), OTA upload and tasks, bootstrap, auto-refresh and the 420 px layout."""
from __future__ import annotations

import json
import os
import re
import tempfile

import pytest
import requests

from tests.console.conftest import script_errors
from tests.console._page import (WAIT, base, by, click, connack, connect, fill, message_up, open_console, report,
                                 texts, unique, wait)
from tests.waiting import wait_until

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def no_script_errors(browser):
    """Every page test also fails on an uncaught JavaScript error."""
    script_errors(browser)            # forget what earlier tests left
    yield
    assert script_errors(browser) == []

SERVICES = [{"service_id": "meter", "service_type": "Meter",
             "properties": [{"property_name": "temp", "data_type": "decimal", "method": "RW", "unit": "C",
                             "min": "0", "max": "100"},
                            {"property_name": "mode", "data_type": "string", "method": "R",
                             "enum_list": ["eco", "boost"]}],
             "commands": [{"command_name": "RESET", "paras": [{"para_name": "delay", "data_type": "int"}]}],
             "events": [{"event_type": "overheat", "paras": [{"para_name": "temp", "data_type": "decimal"}]}]}]


def _rows(browser, css: str = "#trace-body tr"):
    return browser.find_elements(*by(css))


def test_trace_filters_dates_and_export(emulator, browser, shot):
    a, b = emulator.create_device(), emulator.create_device()
    token = unique("tk")
    dev_a, dev_b = connect(emulator, a), connect(emulator, b)
    try:
        for i in range(3):
            message_up(dev_a, f"{token} a{i}")
        message_up(dev_b, f"{token} b0")
        report(dev_a, "meter", {"temp": 5})
        wait_until(lambda: len(emulator.trace(b["device_id"], "up", "messages_up")) == 1, WAIT, what="b's message")
        wait_until(lambda: len(emulator.trace(a["device_id"], "up")) == 4, WAIT, what="a's uplinks")
    finally:
        dev_a.close()
        dev_b.close()
    open_console(browser, emulator)

    # free text: the four messages of both devices, each row dated
    fill(browser, "trace-text", token)
    wait(browser, lambda d: len(_rows(d)) == 4, "the 4 rows matching the text")
    dates = texts(browser, "#trace-body td.when")
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", t) for t in dates), dates

    # device: the other device's entries disappear
    fill(browser, "trace-device", a["device_id"])
    wait(browser, lambda d: len(_rows(d)) == 3, "only a's 3 rows")
    assert {r.get_attribute("data-device-id") for r in _rows(browser)} == {a["device_id"]}
    assert f"{token} b0" not in browser.find_element(*by("#trace-body")).text   # the token itself may hold "b0"
    shot(browser, "filtered")

    # kind and direction, without the text
    from selenium.webdriver.support.ui import Select
    fill(browser, "trace-text", "")
    Select(browser.find_element(*by("#trace-kind"))).select_by_value("properties_report")
    wait(browser, lambda d: len(_rows(d)) == 1 and _rows(d)[0].get_attribute("data-kind") == "properties_report",
         "only the property report")
    Select(browser.find_element(*by("#trace-kind"))).select_by_value("")
    Select(browser.find_element(*by("#trace-direction"))).select_by_value("down")
    wait(browser, lambda d: all(r.get_attribute("data-direction") == "down" for r in _rows(d)), "only downlinks")
    assert not any(r.get_attribute("data-direction") == "up" for r in _rows(browser))

    # export: the links carry the filters; fetched in the page, they hold exactly the filtered entries
    Select(browser.find_element(*by("#trace-direction"))).select_by_value("")
    fill(browser, "trace-text", token)
    wait(browser, lambda d: len(_rows(d)) == 3, "a's 3 rows again")
    fetch = ("var done = arguments[arguments.length - 1];"
             "fetch(document.getElementById(arguments[0]).href, {credentials: 'same-origin'})"
             ".then(function (r) { return r.text(); }).then(done, function (e) { done('ERR ' + e); });")
    exported = json.loads(browser.execute_async_script(fetch, "export-json"))
    assert sorted(json.loads(e["payload"])["content"] for e in exported["entries"]) == [f"{token} a{i}" for i in range(3)]
    assert {e["device_id"] for e in exported["entries"]} == {a["device_id"]}
    as_csv = browser.execute_async_script(fetch, "export-csv").splitlines()
    assert as_csv[0].startswith("seq,time_iso,device_id") and len(as_csv) == 4
    assert all(a["device_id"] in line for line in as_csv[1:])
    for rec in (a, b):
        emulator.delete_device(rec["device_id"])


def test_chart_has_one_point_per_report_and_refreshes_itself(emulator, browser, shot):
    rec = emulator.create_device()
    dev = connect(emulator, rec)
    values = [20.5, 23, 21.75, 25, 24]
    try:
        for v in values:
            report(dev, "meter", {"temp": v, "mode": "eco"})
        wait_until(lambda: len(emulator.trace(rec["device_id"], "up", "properties_report")) == len(values), WAIT,
                   what="the reports in the trace")
        open_console(browser, emulator, rec["device_id"])
        click(browser, "tab-chart")
        chart = 'figure.chart[data-service-id="meter"][data-property="temp"]'
        wait(browser, lambda d: len(d.find_elements(*by(chart + " circle.point"))) == len(values), "5 points")
        points = browser.find_elements(*by(chart + " circle.point"))
        assert [float(p.get_attribute("data-v")) for p in points] == values
        xs = [float(p.get_attribute("cx")) for p in points]
        assert xs == sorted(xs)
        # the highest value is drawn highest (smallest y)
        ys = [float(p.get_attribute("cy")) for p in points]
        assert ys.index(min(ys)) == values.index(max(values))
        assert browser.find_elements(*by('figure.chart[data-property="mode"]')) == []   # strings are not charted
        shot(browser, "chart")

        report(dev, "meter", {"temp": 30})          # no click: the chart refreshes itself
        wait(browser, lambda d: len(d.find_elements(*by(chart + " circle.point"))) == len(values) + 1,
             "the new point after auto-refresh")
    finally:
        dev.close()
    emulator.delete_device(rec["device_id"])


def test_shadow_view_refreshes_itself(emulator, browser, shot):
    rec = emulator.create_device()
    dev = connect(emulator, rec)
    try:
        open_console(browser, emulator, rec["device_id"])
        click(browser, "tab-shadow")
        report(dev, "lamp", {"brightness": 11})
        row = '#shadow-body tr[data-service-id="lamp"] td.reported'
        wait(browser, lambda d: '"brightness": 11' in " ".join(texts(d, row)), "the reported value without a click")
        report(dev, "lamp", {"brightness": 12})
        wait(browser, lambda d: '"brightness": 12' in " ".join(texts(d, row)), "the new value without a click")
        shot(browser, "shadow")
    finally:
        dev.close()
    emulator.delete_device(rec["device_id"])


def test_products_and_their_models(emulator, browser, shot):
    product = unique("pp")
    emulator.create_product(product, "Thermostat", service_capabilities=SERVICES)
    devs = [emulator.create_device(product_id=product) for _ in range(3)]
    open_console(browser, emulator)
    click(browser, "view-btn-products")
    row = f'#products-body tr[data-product-id="{product}"]'
    wait(browser, lambda d: d.find_elements(*by(row)), "the product in the list")
    cells = texts(browser, row + " td")
    assert cells == [product, "Thermostat", "1", "3"]
    browser.find_element(*by(row)).click()
    service = '#product-detail section.service[data-service-id="meter"]'
    wait(browser, lambda d: d.find_elements(*by(service)), "the product's service")
    props = texts(browser, service + " table.model-properties tbody tr")
    assert props[0].split()[:5] == ["temp", "decimal", "C", "0", ".."] and props[1].startswith("mode string")
    assert "eco|boost" in props[1]
    assert texts(browser, service + " table.model-commands tbody tr")[0].startswith("RESET delay:int")
    assert texts(browser, service + " table.model-events tbody tr")[0].startswith("overheat temp:decimal")
    shot(browser, "model")
    for rec in devs:
        emulator.delete_device(rec["device_id"])


def test_create_freeze_reset_and_delete_a_device(emulator, browser, shot):
    from selenium.webdriver.support.ui import Select

    product = unique("fp")
    emulator.create_product(product, "freezable", service_capabilities=SERVICES)
    dev_id = unique("fd")
    open_console(browser, emulator)
    browser.find_element(*by("#add-device summary")).click()
    wait(browser, lambda d: product in [o.get_attribute("value") for o in d.find_elements(*by("#add-product option"))],
         "the product in the form")
    Select(browser.find_element(*by("#add-product"))).select_by_value(product)
    fill(browser, "add-id", dev_id)
    click(browser, "add-send")
    secret = wait(browser, lambda d: d.find_element(*by("#add-new-secret")).text, "the new device's secret")
    assert emulator.get_device(dev_id)["product_id"] == product
    shot(browser, "created")
    assert connack(emulator, dev_id, secret) == 0             # the secret shown works

    item = f'li.device[data-device-id="{dev_id}"]'
    wait(browser, lambda d: d.find_elements(*by(item + ".selected")), "the new device selected")
    click(browser, "tab-manage")
    click(browser, "freeze-btn")
    wait(browser, lambda d: d.find_elements(*by(item + '[data-frozen="true"]')), "the device frozen")
    assert browser.find_element(*by('[data-fact="status"]')).text == "frozen"
    assert connack(emulator, dev_id, secret) == 5              # refused: frozen
    shot(browser, "frozen")
    click(browser, "unfreeze-btn")
    wait(browser, lambda d: d.find_elements(*by(item + '[data-frozen="false"]')), "the device unfrozen")
    assert connack(emulator, dev_id, secret) == 0

    click(browser, "reset-send")
    new_secret = wait(browser, lambda d: d.find_element(*by("#reset-new-secret")).text, "the new secret")
    assert new_secret != secret
    assert connack(emulator, dev_id, secret) == 4              # the old secret no longer works
    assert connack(emulator, dev_id, new_secret) == 0

    click(browser, "delete-btn")                               # arms the button
    assert emulator.get_device(dev_id) is not None
    assert "Click again" in browser.find_element(*by("#delete-btn")).text
    click(browser, "delete-btn")
    wait(browser, lambda d: not d.find_elements(*by(item)), "the device gone from the list")
    assert emulator.get_device(dev_id) is None
    assert connack(emulator, dev_id, new_secret) == 4


def test_ota_upload_task_and_auto_refresh(fresh_emulator, browser, shot):
    emu = fresh_emulator
    rec = emu.create_device()
    dev = connect(emu, rec)
    content = os.urandom(3000)
    folder = tempfile.mkdtemp(prefix="console-ota-")
    path = os.path.join(folder, "fw-2.0.bin")
    with open(path, "wb") as fh:
        fh.write(content)
    try:
        open_console(browser, emu, rec["device_id"])
        click(browser, "view-btn-ota")
        browser.find_element(*by("#ota-file")).send_keys(path)
        fill(browser, "ota-version", "2.0")
        click(browser, "ota-upload")
        wait(browser, lambda d: "uploaded" in d.find_element(*by("#ota-upload-result")).text, "the upload")
        pkg = emu.service("$ota").list_packages()[0]
        assert pkg["file_name"] == "fw-2.0.bin" and pkg["file_size"] == len(content)
        wait(browser, lambda d: d.find_elements(*by(f'#ota-pkg-body tr[data-key="{pkg["package_id"]}"]')),
             "the package row")
        wait(browser, lambda d: d.find_element(*by("#ota-task-package")).get_attribute("value") == pkg["package_id"],
             "the package chosen for a task")
        assert browser.find_element(*by("#ota-task-devices")).get_attribute("value") == rec["device_id"]
        click(browser, "ota-task-send")
        wait(browser, lambda d: "1 of 1 task(s) started" in d.find_element(*by("#ota-task-result")).text,
             "the task created")

        # the device runs the upgrade; the page follows without a click
        dev.expect_event("$ota", "version_query", timeout=WAIT)
        dev.event_up("$ota", "version_report", {"fw_version": "1.0"})
        upgrade = dev.expect_event("$ota", "firmware_upgrade", timeout=WAIT)
        assert json.loads(upgrade.payload)["services"][0]["paras"]["sign"] == pkg["sign"]
        task_id = emu.service("$ota").list_tasks(rec["device_id"])[0]["task_id"]
        status = f'#ota-body tr[data-key="{task_id}"] td[data-col="status"]'
        wait(browser, lambda d: " ".join(texts(d, status)) == "upgrading", "the task upgrading")
        dev.event_up("$ota", "upgrade_progress_report", {"result_code": 0, "progress": 100, "version": "2.0"})
        wait(browser, lambda d: " ".join(texts(d, status)) == "success", "the task's success without a click")
        shot(browser, "ota")
    finally:
        dev.close()
        os.remove(path)
        os.rmdir(folder)


def test_bootstrap_groups_strategies_and_devices(fresh_emulator, browser, shot):
    emu = fresh_emulator
    bs = emu.service("$bootstrap")
    bs.add_registration_group("grp-line-a", name="line-a", product_id="emu_product")
    bs.add_policy("line", keyword_source="device_name", priority=3, name="by-line")
    bs.add_bootstrap_device("bs_dev_1")
    open_console(browser, emu)
    click(browser, "view-btn-bootstrap")
    wait(browser, lambda d: d.find_elements(*by('#bs-groups tr[data-scope-id="grp-line-a"]')), "the group")
    assert bs.address in browser.find_element(*by("#bs-endpoint")).text
    assert texts(browser, "#bs-policies tr")[0].split() == ["by-line", "line", "device_name", "3", "-"]
    assert texts(browser, "#bs-devices li") == ["bs_dev_1"]

    fill(browser, "bs-group-name", "line-b")
    click(browser, "bs-group-send")
    secret = wait(browser, lambda d: d.find_element(*by("#bs-group-result pre.secret")).text, "the group secret")
    created = [g for g in bs.list_groups() if g["name"] == "line-b"]
    assert len(created) == 1 and created[0]["secret"] == secret
    wait(browser, lambda d: d.find_elements(*by(f'#bs-groups tr[data-scope-id="{created[0]["scope_id"]}"]')),
         "the new group in the table")
    assert secret not in browser.find_element(*by("#bs-groups")).text
    shot(browser, "bootstrap")


def test_layout_fits_420_px(emulator, browser, shot):
    product = unique("np")
    emulator.create_product(product, "narrow", service_capabilities=SERVICES)
    rec = emulator.create_device(device_id=unique("narrow_device_with_a_rather_long_identifier_"), product_id=product)
    dev = connect(emulator, rec)
    try:
        report(dev, "meter", {"temp": 3})
        message_up(dev, "x" * 600)                       # one long unbroken payload in the trace
        open_console(browser, emulator, rec["device_id"])
        browser.set_window_size(420, 900)
        width = browser.execute_script("return window.innerWidth")
        assert width <= 420

        def fits(d):
            return d.execute_script("return document.documentElement.scrollWidth") <= width

        fill(browser, "trace-device", rec["device_id"])
        wait(browser, lambda d: len(_rows(d)) >= 2, "the device's trace")
        for tab in ("tab-command", "tab-shadow", "tab-chart", "tab-manage"):
            click(browser, tab)
            wait(browser, fits, f"{tab} within {width} px")
        devices = browser.find_element(*by("#devices-pane")).rect
        work = browser.find_element(*by("#work-pane")).rect
        assert work["y"] >= devices["y"] + devices["height"], "the panes are not stacked at 420 px"
        assert work["x"] + work["width"] <= width
        shot(browser, "devices-420")
        for view in ("view-btn-products", "view-btn-ota", "view-btn-bootstrap"):
            click(browser, view)
            wait(browser, fits, f"{view} within {width} px")
            shot(browser, view + "-420")
        click(browser, "view-btn-debug")
        # every tab button is reachable on screen (they wrap instead of overflowing)
        for tab in browser.find_elements(*by(".tab")):
            r = tab.rect
            assert r["x"] >= 0 and r["x"] + r["width"] <= width, tab.text
    finally:
        dev.close()
        browser.set_window_size(1400, 1000)
    emulator.delete_device(rec["device_id"])


def test_management_and_export_work_behind_the_login(browser, shot):
    """With app keys, the logged-in page's session cookie carries the management calls and the export links."""
    from iotda_emulator import Emulator

    with Emulator(app_keys={"page-ak": "page-sk-0123456789"}) as emu:
        rec = emu.create_device()
        browser.set_window_size(1400, 1000)
        browser.get(base(emu) + "/console?device=" + rec["device_id"])
        wait(browser, lambda d: d.current_url.endswith("/console/login"), "the login page")
        fill(browser, "login-ak", "page-ak")
        fill(browser, "login-sk", "page-sk-0123456789")
        click(browser, "login-send")
        wait(browser, lambda d: d.find_elements(*by(f'li.device[data-device-id="{rec["device_id"]}"]')),
             "the device list after the login")
        browser.get(base(emu) + "/console?device=" + rec["device_id"])
        wait(browser, lambda d: d.find_element(*by("#selected-state")).text == "offline", "the device selected")
        click(browser, "tab-manage")
        click(browser, "freeze-btn")
        wait(browser, lambda d: d.find_element(*by('[data-fact="status"]')).text == "frozen", "the device frozen")
        assert emu.get_device(rec["device_id"])["frozen"] is True
        assert connack(emu, rec["device_id"], rec["secret"]) == 5
        fetch = ("var done = arguments[arguments.length - 1];"
                 "fetch(document.getElementById('export-json').href, {credentials: 'same-origin'})"
                 ".then(function (r) { return r.status; }).then(done, function (e) { done(String(e)); });")
        assert browser.execute_async_script(fetch) == 200
        assert requests.get(base(emu) + "/console/api/trace/export", timeout=WAIT).status_code == 401
        shot(browser, "frozen-behind-login")
