"""Fixtures of the conformance suite: one emulator per module, its REST API, and bare devices.

The platform side is read through IoTDA's v5 application REST API (``requests`` against the emulator's
HTTP port); devices are :class:`tests.conformance._device.Device` (bare paho, no SDK import).
"""
from __future__ import annotations

from typing import Any, Callable, List, Optional

import pytest
import requests

from iotda_emulator import Emulator
from tests.conformance._device import Device, new_id

PROJECT = "conformance"
PRODUCT_ID = "conformance_product"
#: Short platform timeout: the tests that wait for a command timeout stay short.
COMMAND_TIMEOUT = 3.0

#: The product model the suite's devices belong to (IoTDA's CreateProduct body).
PRODUCT = {
    "product_id": PRODUCT_ID,
    "name": "conformance",
    "device_type": "Sensor",
    "protocol_type": "MQTT",
    "data_format": "json",
    "manufacturer_name": "conformance",
    "industry": "test",
    "service_capabilities": [{
        "service_id": "Sensor",
        "service_type": "Sensor",
        "option": "Optional",
        "properties": [
            {"property_name": "temperature", "data_type": "decimal", "required": False, "min": "-100",
             "max": "200", "method": "RW"},
            {"property_name": "humidity", "data_type": "int", "required": False, "min": "0", "max": "100",
             "method": "R"},
        ],
        "commands": [{
            "command_name": "set_level",
            "paras": [{"para_name": "level", "data_type": "int", "required": False, "min": "0", "max": "100"}],
            "responses": [{"response_name": "set_level_result",
                           "paras": [{"para_name": "applied", "data_type": "int", "required": False,
                                      "min": "0", "max": "100"}]}],
        }],
    }, {
        "service_id": "Other",
        "service_type": "Other",
        "option": "Optional",
        "properties": [{"property_name": "level", "data_type": "int", "required": False, "min": "0", "max": "10",
                        "method": "RW"}],
    }],
}


#: The product's custom topics: ``$oc/devices/{device_id}/user/{name}``.
CUSTOM_TOPICS = [{"name": "conformance/down", "permission": "subscribe"},
                 {"name": "conformance/up", "permission": "publish"},
                 {"name": "conformance/both", "permission": "both"}]


class Api:
    """IoTDA v5 application REST calls against the emulator (any project id is accepted)."""

    def __init__(self, emu: Emulator) -> None:
        self.root = f"http://127.0.0.1:{emu.http_port}"
        self.base = f"{self.root}/v5/iot/{PROJECT}"
        self.session = requests.Session()

    def call(self, method: str, path: str, json: Any = None, **kwargs: Any) -> requests.Response:
        url = path if path.startswith("http") else (self.root + path if path.startswith("/emulator")
                                                     else self.base + path)
        return self.session.request(method, url, json=json, timeout=kwargs.pop("timeout", 15), **kwargs)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.call("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> requests.Response:
        return self.call("POST", path, json, **kw)

    def put(self, path: str, json: Any = None, **kw: Any) -> requests.Response:
        return self.call("PUT", path, json, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self.call("DELETE", path, **kw)

    # ---- registry --------------------------------------------------------------------------------
    def ensure_product(self) -> None:
        """Create the suite's product when the emulator has the product API (IoTDA refuses AddDevice for
        an unknown product); an emulator without it answers APIGW's 404 and needs none."""
        rsp = self.post("/products", PRODUCT)
        if rsp.status_code == 404 and rsp.json().get("error_code") == "APIGW.0101":
            return
        assert rsp.status_code == 201, rsp.text
        # custom topics are console-only on IoTDA; the emulator takes them on an endpoint of its own
        rsp = self.put(f"/emulator/products/{PRODUCT_ID}/topics", {"topics": CUSTOM_TOPICS})
        assert rsp.status_code == 200, rsp.text

    def add_device(self, gateway_id: Optional[str] = None, node_id: Optional[str] = None,
                   secret: Optional[str] = None) -> dict:
        """AddDevice; returns ``{"device_id", "secret", ...}`` as the API answers it."""
        body: dict = {"node_id": node_id or new_id("n"), "product_id": PRODUCT_ID,
                      "auth_info": {"auth_type": "SECRET", "secret": secret or new_id("secret")}}
        if gateway_id:
            body["gateway_id"] = gateway_id
        rsp = self.post("/devices", body)
        assert rsp.status_code == 201, rsp.text
        out = rsp.json()
        out["secret"] = body["auth_info"]["secret"]
        return out

    def show_device(self, device_id: str) -> dict:
        rsp = self.get(f"/devices/{device_id}")
        assert rsp.status_code == 200, rsp.text
        return rsp.json()

    def shadow(self, device_id: str) -> List[dict]:
        rsp = self.get(f"/devices/{device_id}/shadow")
        assert rsp.status_code == 200, rsp.text
        return rsp.json()["shadow"]


@pytest.fixture(scope="module")
def emu():
    """One emulator per test module (short platform timeout)."""
    emulator = Emulator(command_timeout=COMMAND_TIMEOUT).start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(scope="module")
def api(emu) -> Api:
    client = Api(emu)
    client.ensure_product()
    return client


@pytest.fixture
def make_device(emu, api) -> Callable[..., Device]:
    """``make_device(connect=True, gateway_id=None, **device_kwargs)``: register a device through the REST
    API and (by default) connect it over plain MQTT; every device is closed after the test."""
    made: List[Device] = []

    def factory(connect: bool = True, gateway_id: Optional[str] = None, **kwargs: Any) -> Device:
        rec = api.add_device(gateway_id=gateway_id)
        dev = Device(emu.host, emu.mqtt_port, rec["device_id"], rec["secret"], **kwargs)
        dev.secret = rec["secret"]
        made.append(dev)
        if connect:
            assert dev.connect() == 0
            assert emu.wait_online(dev.id, 5)
        return dev

    yield factory
    for dev in made:
        try:
            dev.close()
        except Exception:  # noqa: BLE001 - already closed by the test
            pass
