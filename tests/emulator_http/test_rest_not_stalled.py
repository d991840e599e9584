"""Synchronous commands waiting on a silent device hold no request thread: with more commands outstanding than
the REST server has worker threads, the rest of the API still answers while every command is still waiting,
and each command then gets its own device answer. (Before, each waiting command held one of 32 workers, so
40 of them froze the whole API until IoTDA's command timeout.)"""
from __future__ import annotations

import json
import threading

from huaweicloudsdkiotda.v5 import CreateCommandRequest, DeviceCommandRequest, ListDevicesRequest

from tests.emulator.bare_device import BareDevice
from tests.emulator_http.conftest import make_app_client

OUTSTANDING = 40   # more than the server's 32 worker threads


def test_waiting_commands_do_not_stall_the_api(emulator, base_url, app_client):
    assert OUTSTANDING > emulator.http_server.max_workers
    rec = emulator.create_device()
    device_id = rec["device_id"]
    dev = BareDevice(emulator.host, emulator.mqtt_port, device_id, rec["secret"]).connect()
    answers: dict = {}
    errors: list = []

    def command(n: int) -> None:
        try:
            client = make_app_client(base_url)
            body = DeviceCommandRequest(service_id="svc", command_name="cmd", paras={"n": n})
            answers[n] = client.create_command(CreateCommandRequest(device_id=device_id, body=body))
        except Exception as exc:  # noqa: BLE001 (reported by the assertion below)
            errors.append(exc)

    threads = [threading.Thread(target=command, args=(n,), daemon=True) for n in range(OUTSTANDING)]
    try:
        assert emulator.wait_online(device_id, timeout=10)
        for t in threads:
            t.start()
        commands = []
        while len(commands) < OUTSTANDING:   # every command reached the device, none answered yet
            msg = dev.wait(lambda m: "/sys/commands/request_id=" in m.topic, timeout=10)
            commands.append(msg)

        listed = app_client.list_devices(ListDevicesRequest(limit=50))
        assert any(d.device_id == device_id for d in listed.devices)
        assert not answers and not errors and all(t.is_alive() for t in threads), \
            "the API answered only after the waiting commands ended"

        for msg in commands:   # now the device answers each command with its own number
            request_id = msg.topic.rsplit("request_id=", 1)[1]
            n = json.loads(msg.payload)["paras"]["n"]
            dev.publish(f"$oc/devices/{device_id}/sys/commands/response/request_id={request_id}",
                        {"result_code": 0, "paras": {"echo": n}})
        for t in threads:
            t.join(15)
        assert not errors, errors
        assert sorted(answers) == list(range(OUTSTANDING))
        assert all(a.response["paras"]["echo"] == n for n, a in answers.items())
    finally:
        dev.close()
        emulator.delete_device(device_id)


def test_a_timed_out_command_frees_its_request_and_ignores_a_late_answer(emulator, app_client):
    rec = emulator.create_device()
    device_id = rec["device_id"]
    dev = BareDevice(emulator.host, emulator.mqtt_port, device_id, rec["secret"]).connect()
    try:
        assert emulator.wait_online(device_id, timeout=10)
        body = DeviceCommandRequest(service_id="svc", command_name="silent", paras={})
        late = app_client.create_command(CreateCommandRequest(device_id=device_id, body=body))
        assert late.error_code == "IOTDA.014111"
        assert late.command_id not in emulator.core._pending, "a timed-out request stayed pending"
        dev.publish(f"$oc/devices/{device_id}/sys/commands/response/request_id={late.command_id}", {"result_code": 0})
        answered = threading.Thread(target=lambda: dev.publish(
            f"$oc/devices/{device_id}/sys/commands/response/request_id="
            + dev.wait(lambda m: "/sys/commands/request_id=" in m.topic and b"again" in m.payload)
            .topic.rsplit("=", 1)[1], {"result_code": 0, "paras": {"ok": True}}), daemon=True)
        answered.start()
        body = DeviceCommandRequest(service_id="svc", command_name="again", paras={})
        answer = app_client.create_command(CreateCommandRequest(device_id=device_id, body=body))
        answered.join(10)
        assert answer.command_id != late.command_id and answer.response["paras"] == {"ok": True}
    finally:
        dev.close()
        emulator.delete_device(device_id)
