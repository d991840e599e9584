"""Unit tests: data classes, configuration, helpers, dispatcher, publish handles, service model."""
from __future__ import annotations

import hashlib
import hmac
import threading

import pytest

from iot_device_sdk_python import (AbstractService, ClientConf, Command, CommandRsp, ConnectAuthInfo, DeviceEvents,
                                   MqttConnectConf, Property, PublishError, PublishHandle,
                                   RawDeviceMessage, ServiceProperty, ShadowData, command)
from iot_device_sdk_python.client import iot_result
from iot_device_sdk_python.client.request.device_message import DeviceMessage
from iot_device_sdk_python.client.request.props_get import PropsGet
from iot_device_sdk_python.protocol import codec
from iot_device_sdk_python.transport.dispatcher import Dispatcher
from iot_device_sdk_python.transport.mqtt.mqtt_connection import MqttConnection
from iot_device_sdk_python.utils import iot_util
from iot_device_sdk_python.utils.redact import redact_payload


def test_connect_auth_info_defaults_and_constants():
    a = ConnectAuthInfo()
    assert (a.SECRET_AUTH, a.X509_AUTH, a.PROTOCOL_MQTT) == (0, 1, "MQTT")
    assert (a.BS_MODE_DIRECT_CONNECT, a.BS_MODE_STANDARD_BOOTSTRAP, a.BS_MODE_BOOTSTRAP_WITH_SCOPEID) == (0, 1, 2)
    assert a.auth_type == 0 and a.check_timestamp == "1" and a.reconnect_on_failure is True
    assert (a.min_backoff, a.max_backoff, a.max_buffer_message, a.inflight_messages) == (1000, 30000, 0, 20)
    assert a.enable_rule_manage is False and a.auto_report_device_info is False and a.bs_mode == 0
    assert a.id is None and a.iot_cert_path is None and a.tls is None and a.key_password is None
    a.port = 1883
    assert a.use_tls() is False
    a.port = 8883
    assert a.use_tls() is True
    a.tls = False
    assert a.use_tls() is False
    c = MqttConnectConf()
    assert (c.keep_alive_time, c.qos) == (120, 1)
    assert ClientConf(a).mqtt_connect_conf.keep_alive_time == 120


def test_iot_result_constants():
    assert iot_result.SUCCESS.to_dict() == {"result_code": 0, "result_desc": "Success"}
    assert (iot_result.FAIL.result_code, iot_result.TIMEOUT.result_code) == (1, 2)


def test_command_and_events_tolerate_bad_input():
    c = Command()
    c.convert_from_dict({"service_id": "s", "command_name": 5, "paras": "x", "object_device_id": "child"})
    assert (c.service_id, c.command_name, c.paras, c.device_id) == ("s", "5", {}, "child")
    c.convert_from_dict(None)  # not a dict: unchanged, no exception
    assert c.service_id == "s"
    ev = DeviceEvents()
    ev.convert_from_dict({"object_device_id": "d", "services": [{"service_id": "$ota", "event_type": "x",
                                                                 "paras": {"a": 1}}, 7, None]})
    assert ev.device_id == "d" and len(ev.services) == 1 and ev.services[0].paras == {"a": 1}
    assert ev.to_dict()["services"][0]["service_id"] == "$ota"
    sd = ShadowData()
    sd.convert_from_dict({"service_id": "s", "desired": {"properties": {"a": 1}, "event_time": "t"},
                          "reported": "bad", "version": "3"})
    assert sd.desired.properties == {"a": 1} and sd.reported is None and sd.version == 3
    pg = PropsGet()
    pg.convert_from_dict({"object_device_id": "x"})
    assert (pg.device_id, pg.service_id) == ("x", "")
    rsp = CommandRsp()
    assert rsp.to_dict() == {"result_code": 0, "response_name": "", "paras": {}}
    assert (CommandRsp.success_code(), CommandRsp.fail_code()) == (0, -1)
    sp = ServiceProperty("s", {"a": 1})
    assert sp.to_dict() == {"service_id": "s", "properties": {"a": 1}, "event_time": None}
    m = DeviceMessage()
    assert m.to_dict() == {"object_device_id": "", "id": "", "name": "", "content": ""}


@pytest.mark.parametrize("payload, system", [
    (b'{"content": "c", "name": null}', True), (b"{}", True), (b'{"content": 1}', False),
    (b'{"other": "x"}', False), (b"[1]", False), (b"123", False), (b"null", False), (b"\xff\xfe", False),
    (b"", False),
])
def test_raw_device_message_system_format(payload, system):
    raw = RawDeviceMessage(payload)
    assert (raw.to_device_message() is not None) is system


def test_iot_util_functions():
    assert iot_util.sha256_mac("12345678", "2025041401") == \
        "c75150e6cb841417396819e4d2ee4358a416344a03a083e3a8567074ddec820a"
    assert iot_util.sha256_mac_salt(b"\x01\x02", "dev") == hmac.new(b"dev", b"\x01\x02", hashlib.sha256).hexdigest()
    assert iot_util.get_client_id("d", "1", "2025010100") == "d_0_1_2025010100"
    with pytest.raises(ValueError):
        iot_util.get_client_id(None)
    codec.parse_event_time(iot_util.get_event_time())
    assert len(iot_util.get_timestamp()) == 10
    assert iot_util.get_node_id_from_device_id("prod_node_1") == "node_1"
    assert iot_util.get_node_id_from_device_id("nounderscore") is None
    assert iot_util.str_is_empty(" ") and iot_util.str_is_empty(None) and not iot_util.str_is_empty("a")

    class M:
        topic = "$oc/devices/d1/sys/commands/request_id=abc"
    assert iot_util.get_request_id_from_msg(M()) == "abc"
    assert iot_util.get_device_id_from_msg(M()) == "d1"


def test_redaction():
    out = redact_payload(b'{"deviceSecret": "s3cr3t", "url": "https://h/p?sig=1", "paras": {"access_token": "t",'
                         b' "note": "see https://obs.x/y?token=z"}, "version": "1.0"}')
    assert "s3cr3t" not in out and "sig=1" not in out and '"t"' not in out and "token=z" not in out
    assert '"version":"1.0"' in out
    assert redact_payload(b"\x00\xff") == "<2 bytes binary>"


def test_client_id_and_password_modes():
    a = ConnectAuthInfo()
    a.id, a.secret, a.server_uri, a.port = "dev_1", "secret", "h", 1883
    conn = MqttConnection(a, MqttConnectConf(), None)
    assert conn._generate_client_id("2025010100") == "dev_1_0_1_2025010100"
    assert conn._password("2025010100") == iot_util.sha256_mac("secret", "2025010100")
    a.bs_mode, a.scope_id = 2, "scope9"
    import base64
    a.secret = base64.b64encode(b"group-key").decode()
    assert conn._generate_client_id("2025010100") == "dev_1_0_scope9_1_2025010100"
    derived = hmac.new(b"dev_1", b"group-key", hashlib.sha256).hexdigest()
    assert conn._password("2025010100") == iot_util.sha256_mac(derived, "2025010100")
    a.auth_type = ConnectAuthInfo.X509_AUTH
    assert conn._generate_client_id("2025010100") == "dev_1_0_scope9"
    assert conn._password("2025010100") is None


def test_dispatcher_order_and_exceptions(caplog):
    d = Dispatcher("iot-test-dispatch")
    seen = []

    def boom():
        raise RuntimeError("callback failure")

    for i in range(50):
        d.submit(seen.append, i)
        if i == 10:
            d.submit(boom)
    assert d.wait_idle(5)
    assert seen == list(range(50))
    assert sum("callback failure" in r.getMessage() or "raised" in r.getMessage() for r in caplog.records) == 1
    d.stop()
    assert not d.submit(seen.append, 99)
    assert not any(t.name == "iot-test-dispatch" for t in threading.enumerate())


def test_publish_handle():
    h = PublishHandle("t")
    with pytest.raises(TimeoutError):
        h.result(0.01)
    calls = []
    h.add_done_callback(calls.append)
    h._set_success(7)
    assert h.result(0) == 7 and calls == [h] and h.succeeded()
    h._set_failure(PublishError("x", "late"))  # ignored: already resolved
    assert h.exception(0) is None
    f = PublishHandle("t")
    f._set_failure(PublishError(PublishError.REASON_OFFLINE, "offline"))
    with pytest.raises(PublishError):
        f.result(0)
    late = []
    f.add_done_callback(late.append)
    assert late == [f]


class Declared(AbstractService):
    level = Property(3)
    name_ = Property("x", field_name="label", prop_name="name", writeable=False)
    label = "x"

    @command("go")
    def go(self, paras):
        return {"went": paras.get("n")}


def test_service_model_without_device():
    s = Declared()
    assert s.on_read([]) == {"level": 3, "name": "x"}
    assert s.on_read(["nope"]) == {}
    assert s.on_write({"level": 9}).result_code == 0 and s.level == 9
    r = s.on_write({"name": "y"})
    assert r.result_code != 0 and "read-only" in r.result_desc
    assert s.on_write({"ghost": 1}).result_code != 0
    assert s.on_write(["bad"]).result_code != 0
    c = Command()
    c.command_name, c.paras = "go", {"n": 2}
    rsp = s.on_command(c)
    assert rsp.result_code == 0 and rsp.paras == {"went": 2}
    c.command_name = "missing"
    assert s.on_command(c).result_code == CommandRsp.fail_code()
    other = Declared()  # descriptor values are per instance
    assert other.level == 3
    with pytest.raises(RuntimeError):
        s.enable_auto_report(1)  # not attached to a device


def test_on_write_is_all_or_nothing():
    class S(AbstractService):
        a = Property(1)
        b = Property(2)

        def set_b(self, value):
            raise ValueError("b refuses")

    s = S()
    res = s.on_write({"a": 10, "b": 20})
    assert res.result_code != 0 and "b" in res.result_desc
    assert s.a == 1  # rolled back


def test_mqtt_connect_conf_accepts_int_timeout():
    from iot_device_sdk_python.client.device_client import DeviceClient
    c = MqttConnectConf()
    c.timeout = 5
    DeviceClient.check_mqtt_connect_conf(c)
    c.timeout = 0
    with pytest.raises(ValueError, match="timeout"):
        DeviceClient.check_mqtt_connect_conf(c)
