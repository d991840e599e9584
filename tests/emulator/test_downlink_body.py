"""Wire shape of the platform's downlink bodies (key order matters: payloads are compared as bytes)."""
from iot_device_sdk_python.protocol import codec
from iotda_emulator.core import _body


def test_child_request_keeps_wire_order():
    body = _body("child", {"service_id": "s", "command_name": "c"}, paras={})
    assert codec.dumps_bytes(body) == b'{"object_device_id":"child","service_id":"s","command_name":"c","paras":{}}'


def test_only_optional_none_is_dropped():
    assert list(_body(None, {"service_id": None, "name": "n"}, id="1", content=None)) == ["name", "id", "content"]
    assert _body("", services=None) == {"services": None}
