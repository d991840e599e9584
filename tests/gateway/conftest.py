"""Fixtures of the gateway tests: gateways connected to the session emulator over plain MQTT."""
from __future__ import annotations

import threading
from typing import List, Optional

import pytest

from iot_device_sdk_python.client.client_conf import ClientConf
from iot_device_sdk_python.client.connect_auth_info import ConnectAuthInfo
from iot_device_sdk_python.client.mqtt_connect_conf import MqttConnectConf
from iot_device_sdk_python.gateway.abstract_gateway import AbstractGateway
from iot_device_sdk_python.gateway.gtw_operate_sub_device_listener import GtwOperateSubDeviceListener
from iot_device_sdk_python.gateway.sub_devices_persistence import MemorySubDevicesPersistence
from tests.waiting import wait_until  # noqa: F401 (re-exported to the tests of this folder)


class RecordingListener(GtwOperateSubDeviceListener):
    """Keeps every add/delete response with its event id."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.add_rsps: List[tuple] = []
        self.del_rsps: List[tuple] = []

    def on_add_sub_device_rsp(self, gtw_add_sub_device_rsp, event_id):
        with self.lock:
            self.add_rsps.append((gtw_add_sub_device_rsp, event_id))

    def on_del_sub_device_rsp(self, gtw_del_sub_device_rsp, event_id):
        with self.lock:
            self.del_rsps.append((gtw_del_sub_device_rsp, event_id))


class RecordingGateway(AbstractGateway):
    """An AbstractGateway that records what reaches its sub-device hooks (default answers kept)."""

    def __init__(self, sub_devices_persistence, client_conf) -> None:
        self.calls: List[tuple] = []
        self.status_rsps: List[tuple] = []
        super().__init__(sub_devices_persistence, client_conf)
        self.listener = RecordingListener()
        self.set_gtw_operate_sub_device_listener(self.listener)

    def on_sub_dev_command(self, request_id, command):
        self.calls.append(("command", command.device_id, command.command_name))
        return super().on_sub_dev_command(request_id, command)

    def on_sub_dev_properties_set(self, request_id, props_set):
        self.calls.append(("set", props_set.device_id, [s.properties for s in props_set.services]))
        return super().on_sub_dev_properties_set(request_id, props_set)

    def on_sub_dev_properties_get(self, request_id, props_get):
        self.calls.append(("get", props_get.device_id, props_get.service_id))
        return super().on_sub_dev_properties_get(request_id, props_get)

    def on_sub_dev_message(self, message):
        self.calls.append(("message", message.device_id, message.content))

    def on_sub_dev_event(self, device_events):
        self.calls.append(("event", device_events.device_id, [e.event_type for e in device_events.services]))

    def on_sub_device_status_rsp(self, response, event_id):
        self.status_rsps.append((response, event_id))


def client_conf_for(emulator, record: dict, *, min_backoff: int = 200, max_backoff: int = 1000) -> ClientConf:
    """Plain-MQTT settings for a device registered on ``emulator``."""
    auth = ConnectAuthInfo()
    auth.id = record["device_id"]
    auth.secret = record["secret"]
    auth.server_uri = emulator.host
    auth.port = emulator.mqtt_port
    auth.tls = False
    auth.min_backoff = min_backoff
    auth.max_backoff = max_backoff
    return ClientConf(auth, MqttConnectConf())


class GatewayFactory:
    """Builds connected gateways; destroys them and deletes their devices at teardown."""

    def __init__(self, emulator) -> None:
        self.emulator = emulator
        self.gateways: list = []
        self.records: list = []

    def record(self) -> dict:
        rec = self.emulator.create_device(product_id="gw_product")
        self.records.append(rec)
        return rec

    def make(self, cls=RecordingGateway, persistence=None, record: Optional[dict] = None, connect: bool = True,
             **kwargs):
        record = record or self.record()
        conf = client_conf_for(self.emulator, record, **{k: kwargs.pop(k) for k in ("min_backoff", "max_backoff")
                                                          if k in kwargs})
        gateway = cls(persistence if persistence is not None else MemorySubDevicesPersistence(), conf, **kwargs)
        self.gateways.append(gateway)
        if connect:
            assert gateway.connect() == 0
            assert self.emulator.wait_online(record["device_id"], 10)
        return gateway

    def close(self) -> None:
        for gw in self.gateways:
            try:
                gw.destroy()
            except Exception:
                pass
        for rec in self.records:
            for child in self.emulator.core.children(rec["device_id"]):
                self.emulator.delete_device(child["device_id"])
            self.emulator.delete_device(rec["device_id"])


@pytest.fixture
def gateways(emulator):
    factory = GatewayFactory(emulator)
    try:
        yield factory
    finally:
        factory.close()
