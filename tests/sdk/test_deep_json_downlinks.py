"""Downlinks the JSON parser cannot decode (100,000 levels of nesting raise RecursionError, not ValueError)
are still answered with an error response, and logged once (issue 14, item 2)."""
from __future__ import annotations

import logging

import pytest

from iot_device_sdk_python.protocol import codec, topics

DEPTH = 100_000


def _poison(key: str) -> bytes:
    return b'{"' + key.encode() + b'": ' + b"[" * DEPTH + b"]" * DEPTH + b"}"


def test_codec_turns_deep_nesting_into_value_error():
    with pytest.raises(ValueError, match="nested too deeply"):
        codec.loads_object(_poison("paras"))


@pytest.mark.parametrize("kind", ["command", "set", "get"])
def test_deeply_nested_downlink_gets_an_error_response_and_one_log_line(emulator, make_device, caplog, kind):
    device = make_device()
    did = device.get_device_id()
    rid = f"deep-{kind}"
    topic, key, answer = {
        "command": (topics.command(did, rid), "paras", topics.COMMAND_RESPONSE),
        "set": (topics.properties_set(did, rid), "services", topics.PROPERTIES_SET_RESPONSE),
        "get": (topics.properties_get(did, rid), "service_id", topics.PROPERTIES_GET_RESPONSE),
    }[kind]
    with caplog.at_level(logging.DEBUG, logger="iot_device_sdk_python"):
        emulator.core.publish(topic, _poison(key), 1)
        entry = emulator.wait_for_trace(lambda e: e.device_id == did and e.kind == answer
                                        and e.topic.endswith(rid), 10)
        device.get_client().get_dispatcher().wait_idle(5)
    body = entry.json()
    if kind == "get":
        assert body == {"services": []}  # IoTDA's property-get answer has no result code: empty = error
    else:
        assert body["result_code"] != 0
    about = [r for r in caplog.records if r.name.startswith("iot_device_sdk_python")
             and r.levelno >= logging.INFO and rid in r.getMessage()]
    assert len(about) == 1, [r.getMessage() for r in about]
    assert "RecursionError" not in caplog.text
