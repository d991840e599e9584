"""SDK fixtures: ``make_device`` and ``make_gateway`` factories connected to the emulator.

Both create the emulator device when no record is given, connect (unless ``connect=False``; connection
failures raise), and destroy every device they made at teardown.
"""
from __future__ import annotations

from typing import Any, Callable, List, Optional

import pytest

from iot_device_sdk_python.client.client_conf import ClientConf
from iot_device_sdk_python.client.connect_auth_info import ConnectAuthInfo
from iot_device_sdk_python.client.mqtt_connect_conf import MqttConnectConf
from iot_device_sdk_python.iot_device import IotDevice

_MQTT_CONF_FIELDS = {"keep_alive_time", "qos", "timeout", "compress_reports", "protocol_version",
                     "topic_alias_maximum"}


def build_client_conf(emulator, record: dict, *, tls: bool = False, **kwargs: Any) -> ClientConf:
    """ClientConf for ``record`` on ``emulator``; kwargs set ConnectAuthInfo/MqttConnectConf fields."""
    info = ConnectAuthInfo()
    info.id = record["device_id"]
    info.secret = record.get("secret")
    info.server_uri = emulator.host
    info.port = emulator.mqtts_port if tls else emulator.mqtt_port
    info.tls = bool(tls)
    if tls:
        info.iot_cert_path = emulator.ca_file
    info.min_backoff = 200
    info.max_backoff = 2000
    conf = MqttConnectConf()
    for key, value in kwargs.items():
        target = conf if key in _MQTT_CONF_FIELDS else info
        if not hasattr(target, key):
            raise TypeError(f"unknown connection setting {key!r}")
        setattr(target, key, value)
    return ClientConf(info, conf)


def _factory(request, build: Callable[[ClientConf], Any]):
    made: List[Any] = []

    def make(emulator=None, record: Optional[dict] = None, *, tls: bool = False, connect: bool = True,
             **kwargs: Any):
        emu = emulator if emulator is not None else request.getfixturevalue("emulator")
        rec = record if record is not None else emu.create_device()
        device = build(build_client_conf(emu, rec, tls=tls, **kwargs))
        made.append(device)
        device.emulator_record = rec
        if connect:
            rc = device.connect()
            if rc != 0:
                raise RuntimeError(f"device {rec['device_id']} failed to connect: code {rc}")
        return device

    return make, made


@pytest.fixture
def make_device(request):
    """``make_device(emulator=None, record=None, *, tls=False, connect=True, device_cls=IotDevice, **settings)``."""
    holder = {}

    def build(conf):
        return holder["cls"](conf)

    make, made = _factory(request, build)

    def make_device_(emulator=None, record=None, *, tls=False, connect=True, device_cls=IotDevice, **kwargs):
        holder["cls"] = device_cls
        return make(emulator, record, tls=tls, connect=connect, **kwargs)

    yield make_device_
    for device in reversed(made):
        device.destroy()


@pytest.fixture
def make_gateway(request):
    """``make_gateway(device_cls, emulator=None, record=None, *, persistence=None, tls=False, connect=True,
    **settings)``: ``device_cls(persistence, client_conf)``; ``persistence`` defaults to an in-memory one."""
    holder = {}

    def build(conf):
        return holder["cls"](holder["persistence"], conf)

    make, made = _factory(request, build)

    def make_gateway_(device_cls, emulator=None, record=None, *, persistence=None, tls=False, connect=True, **kwargs):
        holder["cls"] = device_cls
        holder["persistence"] = persistence if persistence is not None else _memory_persistence()
        return make(emulator, record, tls=tls, connect=connect, **kwargs)

    yield make_gateway_
    for device in reversed(made):
        device.destroy()


def _memory_persistence():
    """A minimal in-memory SubDevicesPersistence (imported lazily: the gateway package owns the ABC)."""
    from iot_device_sdk_python.gateway.sub_devices_persistence import SubDevicesPersistence

    class MemoryPersistence(SubDevicesPersistence):
        def __init__(self):
            self.devices = {}
            self.version = 0

        def get_sub_device(self, node_id):
            return self.devices.get(node_id)

        def add_sub_devices(self, sub_devices_info):
            for info in sub_devices_info.devices:
                self.devices[info.node_id] = info
            self.version = sub_devices_info.version or self.version
            return 0

        def delete_sub_devices(self, sub_devices_info):
            for info in sub_devices_info.devices:
                self.devices.pop(info.node_id, None)
            self.version = sub_devices_info.version or self.version
            return 0

        def get_version(self):
            return self.version

    return MemoryPersistence()
