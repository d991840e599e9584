"""Asynchronous commands through the official application SDK's models: a delayed command waits (PENDING) for a
sleeping device and reaches it when it connects; the device's answer makes it SUCCESSFUL or FAILED; no answer
makes it TIMEOUT; a cache that outlives expire_time EXPIRES; ``immediately`` to an offline device FAILS; queue,
history and count agree. Devices are bare paho clients that answer commands by hand."""
from __future__ import annotations

import json

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkiotda.v5 import (AsyncDeviceCommandRequest, CountAsyncHistoryCommandsRequest,
                                    CreateAsyncCommandRequest, ListAsyncCommandsRequest,
                                    ListAsyncHistoryCommandsRequest, ShowAsyncDeviceCommandRequest)

from tests.emulator.bare_device import BareDevice
from tests.waiting import wait_until


@pytest.fixture
def commands(emulator):
    svc = emulator.service("$async_commands")
    timeout = svc.response_timeout
    yield svc
    svc.response_timeout = timeout


def _create(app_client, device_id, name, **kw):
    return app_client.create_async_command(CreateAsyncCommandRequest(device_id=device_id, body=AsyncDeviceCommandRequest(
        service_id="valve", command_name=name, paras={"n": name}, **kw)))


def _show(app_client, device_id, command_id):
    return app_client.show_async_device_command(ShowAsyncDeviceCommandRequest(device_id=device_id,
                                                                              command_id=command_id))


def _answer(dev, msg, code):
    request_id = msg.topic.rsplit("request_id=", 1)[1]
    dev.publish(f"$oc/devices/{dev.device_id}/sys/commands/response/request_id={request_id}",
                {"result_code": code, "paras": {"done": json.loads(msg.payload)["paras"]["n"]}})


def test_a_delayed_command_waits_for_the_device_then_succeeds_or_fails(emulator, app_client, offline_device, commands):
    device_id = offline_device["device_id"]
    first = _create(app_client, device_id, "open")
    second = _create(app_client, device_id, "close", send_strategy="delay", expire_time=600)
    assert (first.status, first.send_strategy, second.expire_time) == ("PENDING", "delay", 600)
    queued = app_client.list_async_commands(ListAsyncCommandsRequest(device_id=device_id))
    assert [c.command_id for c in queued.commands] == [second.command_id, first.command_id]   # newest first
    assert queued.page.count == 2

    dev = BareDevice(emulator.host, emulator.mqtt_port, device_id, offline_device["secret"]).connect()
    try:
        got = [dev.wait(lambda m: "/sys/commands/request_id=" in m.topic) for _ in range(2)]
        assert [json.loads(m.payload)["command_name"] for m in got] == ["open", "close"]   # oldest first
        assert got[0].topic.endswith(first.command_id)   # the command id is the request id
        wait_until(lambda: _show(app_client, device_id, first.command_id).status == "SENT")
        _answer(dev, got[0], 0)
        _answer(dev, got[1], 7)
        wait_until(lambda: _show(app_client, device_id, second.command_id).status == "FAILED")
        done = _show(app_client, device_id, first.command_id)
        assert done.status == "SUCCESSFUL" and done.result["paras"] == {"done": "open"}
        assert done.sent_time and done.response_time and done.created_time
    finally:
        dev.close()
    history = app_client.list_async_history_commands(ListAsyncHistoryCommandsRequest(device_id=device_id))
    assert [c.command_id for c in history.commands] == [second.command_id, first.command_id]
    assert not app_client.list_async_commands(ListAsyncCommandsRequest(device_id=device_id)).commands
    count = app_client.count_async_history_commands(CountAsyncHistoryCommandsRequest(device_id=device_id,
                                                                                     status="SUCCESSFUL"))
    assert count.count == 1


def test_no_answer_is_timeout_and_immediately_to_an_offline_device_fails(emulator, app_client, offline_device,
                                                                         commands):
    device_id = offline_device["device_id"]
    failed = _create(app_client, device_id, "now", send_strategy="immediately")
    assert _show(app_client, device_id, failed.command_id).status == "FAILED"

    commands.response_timeout = 1.0
    dev = BareDevice(emulator.host, emulator.mqtt_port, device_id, offline_device["secret"]).connect()
    try:
        assert emulator.wait_online(device_id)
        silent = _create(app_client, device_id, "ignored", send_strategy="immediately")
        assert silent.status == "SENT"
        dev.wait(lambda m: m.topic.endswith(silent.command_id))
        wait_until(lambda: _show(app_client, device_id, silent.command_id).status == "TIMEOUT")
        late = dev.client.publish(f"$oc/devices/{device_id}/sys/commands/response/request_id={silent.command_id}",
                                  b'{"result_code": 0}', qos=1)
        late.wait_for_publish(5)
        assert _show(app_client, device_id, silent.command_id).status == "TIMEOUT"   # a late answer changes nothing
    finally:
        dev.close()


def test_a_cached_command_expires(emulator, app_client, offline_device, commands):
    device_id = offline_device["device_id"]
    rec = commands.create(device_id, "valve", "stale", {}, expire_time=1)
    assert rec["status"] == "PENDING"
    wait_until(lambda: _show(app_client, device_id, rec["command_id"]).status == "EXPIRED", timeout=5)
    dev = BareDevice(emulator.host, emulator.mqtt_port, device_id, offline_device["secret"]).connect()
    try:
        with pytest.raises(AssertionError):
            dev.wait(lambda m: "/sys/commands/" in m.topic, timeout=1.0)
    finally:
        dev.close()


def test_bad_requests(app_client, offline_device):
    device_id = offline_device["device_id"]
    for kw in ({"send_strategy": "later"}, {"expire_time": 3 * 24 * 3600}, {"expire_time": -1}):
        with pytest.raises(ClientRequestException) as info:
            _create(app_client, device_id, "x", **kw)
        assert info.value.status_code == 400, kw
    with pytest.raises(ClientRequestException) as info:
        _show(app_client, device_id, "no-such-command")
    assert info.value.status_code == 404
    with pytest.raises(ClientRequestException) as info:
        _create(app_client, "no-such-device", "x")
    assert info.value.status_code == 404 and info.value.error_code == "IOTDA.014000"
    for _ in range(20):
        _create(app_client, device_id, "fill")
    with pytest.raises(ClientRequestException) as info:   # IoTDA caches at most 20 commands per device
        _create(app_client, device_id, "21st")
    assert info.value.status_code == 400
