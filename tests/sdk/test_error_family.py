"""One error family (issue 17): every SDK error is an ``IotDeviceError``; ``connect(raise_on_failure=True)``.

Real sockets and the emulator throughout: refusals come from the emulator's access front, the timeout
from a listener that accepts and never answers CONNACK.
"""
from __future__ import annotations

import socket
import threading

import pytest

import iot_device_sdk_python as sdk
from iot_device_sdk_python import errors
from iot_device_sdk_python.bootstrap import bootstrap_client
from iot_device_sdk_python.client.client_conf import ClientConf
from iot_device_sdk_python.client.connect_auth_info import ConnectAuthInfo
from iot_device_sdk_python.filemanager import file_manager_service
from iot_device_sdk_python.iot_device import IotDevice
from iot_device_sdk_python.ota import ota_service
from iot_device_sdk_python.protocol import topics
from iot_device_sdk_python.rule import rule_parser
from iot_device_sdk_python.transfer import http_transfer
from iot_device_sdk_python.transport import publish_handle

# (class at its upstream-style module, what else it must stay for code written before the family)
OLD_HOMES = [
    (publish_handle.PublishError, Exception),
    (http_transfer.TransferError, Exception),
    (file_manager_service.FileTransferError, Exception),
    (ota_service.OTADownloadError, Exception),
    (bootstrap_client.BootstrapError, Exception),
    (rule_parser.RuleParseError, ValueError),
]


@pytest.mark.parametrize("cls, still", OLD_HOMES, ids=lambda c: getattr(c, "__name__", ""))
def test_existing_errors_join_the_family_and_keep_their_module(cls, still):
    assert issubclass(cls, sdk.IotDeviceError) and issubclass(cls, still)
    assert getattr(sdk, cls.__name__) is cls  # one class, exported at the top level too


def test_family_members_keep_their_fields():
    assert publish_handle.PublishError("offline", "x").reason == "offline"
    assert http_transfer.TransferError("http", "x", 403).status_code == 403
    assert file_manager_service.FileTransferError("x", 404, "http").kind == "http"
    assert ota_service.OTADownloadError(3, "x").result_code == 3
    err = bootstrap_client.BootstrapError("100414", "unknown device")
    assert (err.code, err.message) == ("100414", "unknown device")
    with pytest.raises(ValueError):
        rule_parser.parse_simple_timer_start(42)


def test_timeouts_stay_builtin_timeouts():
    assert issubclass(errors.IotTimeoutError, TimeoutError)
    assert issubclass(errors.ConnectTimeoutError, errors.ConnectError)
    assert issubclass(errors.ConnectTimeoutError, TimeoutError)
    assert not issubclass(errors.ConnectRefusedError, ConnectionRefusedError)  # no clash with the builtin


@pytest.mark.parametrize("code, cause, cls", [
    (4, None, errors.ConnectRefusedError),
    (5, None, errors.ConnectRefusedError),
    (-1, TimeoutError("no CONNACK"), errors.ConnectTimeoutError),
    (-1, ConnectionRefusedError(111, "Connection refused"), errors.ConnectError),
    (-2, FileNotFoundError(2, "No such file"), errors.ConnectError),
])
def test_connect_error_maps_codes(code, cause, cls):
    err = errors.connect_error(code, cause)
    assert type(err) is cls and err.code == code and str(code) in str(err)
    assert err.reason


def test_pending_publish_times_out_as_iot_timeout(make_device):
    device = make_device(connect=False, max_buffer_message=10, reconnect_on_failure=False)
    handle = device.get_client().report_properties([sdk.ServiceProperty("s", {"p": 1})])
    with pytest.raises(errors.IotTimeoutError):
        handle.result(timeout=0.05)
    with pytest.raises(TimeoutError):  # code written as `except TimeoutError` keeps working
        handle.exception(timeout=0.05)


def test_connect_keeps_returning_int_and_raises_on_opt_in(emulator, make_device):
    rec = emulator.create_device()
    device = make_device(record=dict(rec, secret="wrong-secret"), connect=False)
    assert device.connect() == 4  # upstream behaviour unchanged
    with pytest.raises(errors.ConnectRefusedError) as info:
        device.connect(raise_on_failure=True)
    assert info.value.code == 4 and "password" in info.value.reason
    assert "wrong-secret" not in str(info.value)


def test_frozen_device_raises_code_5(emulator, make_device):
    rec = emulator.create_device()
    emulator.freeze_device(rec["device_id"])
    device = make_device(record=rec, connect=False)
    with pytest.raises(errors.ConnectRefusedError) as info:
        device.get_client().connect(raise_on_failure=True)
    assert info.value.code == 5


def test_successful_opt_in_connect_returns_0(make_device):
    device = make_device(connect=False)
    assert device.connect(raise_on_failure=True) == 0
    assert device.get_client().is_connected()


def test_unreachable_server_raises_connect_error(make_device):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free_port = s.getsockname()[1]
    device = make_device(connect=False, port=free_port, reconnect_on_failure=False, timeout=3)
    with pytest.raises(errors.ConnectError) as info:
        device.connect(raise_on_failure=True)
    assert info.value.code == -1 and not isinstance(info.value, errors.ConnectRefusedError)


def test_missing_ca_file_raises_config_error(make_device, tmp_path):
    device = make_device(connect=False, tls=True, iot_cert_path=str(tmp_path / "missing-ca.pem"),
                         reconnect_on_failure=False)
    with pytest.raises(errors.ConnectError) as info:
        device.connect(raise_on_failure=True)
    assert info.value.code == -2


def test_silent_server_raises_connect_timeout(make_device):
    """A server that accepts TCP and never answers CONNACK: a ConnectTimeoutError (also a TimeoutError)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    accepted = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        device = make_device(connect=False, port=server.getsockname()[1], reconnect_on_failure=False, timeout=1)
        with pytest.raises(TimeoutError) as info:
            device.connect(raise_on_failure=True)
        assert isinstance(info.value, errors.ConnectTimeoutError) and info.value.code == -1
        assert accepted  # the TCP connection was made: it is the CONNACK that never came
    finally:
        stop.set()
        thread.join(5)
        for conn in accepted:
            conn.close()
        server.close()


def test_failed_bootstrap_raises_bootstrap_error(emulator, tmp_path):
    info = ConnectAuthInfo()
    info.id = "no_such_device_for_bootstrap"
    info.secret = "whatever-secret"
    info.server_uri = emulator.service("$bootstrap").host
    info.port = emulator.service("$bootstrap").port
    info.bs_mode = ConnectAuthInfo.BS_MODE_STANDARD_BOOTSTRAP
    info.bs_cert_path = emulator.ca_file
    info.iot_cert_path = emulator.ca_file
    info.bs_cache_path = str(tmp_path / "cache.json")
    info.reconnect_on_failure = False
    device = IotDevice(ClientConf(info))
    try:
        with pytest.raises(sdk.BootstrapError) as raised:
            device.connect(raise_on_failure=True)
        assert isinstance(raised.value, sdk.IotDeviceError)
        assert device.get_client().last_bootstrap_error is raised.value
    finally:
        device.destroy()


@pytest.mark.parametrize("flt, topic, expected", [
    ("$oc/devices/d1/user/#", "$oc/devices/d1/user/a/b", True),
    ("$oc/devices/+/user/up", "$oc/devices/d1/user/up", True),
    ("$oc/devices/+/user/up", "$oc/devices/d1/user/up/x", False),
    ("a/#", "a", True),                 # '#' also matches the parent level
    ("#", "$oc/devices/d1/user/x", False),  # MQTT 4.7.2: no first-level wildcard on '$' topics
    ("+/devices/d1", "$oc/devices/d1", False),
    ("policy/+/x", "policy//x", True),  # an empty level is a level
])
def test_topic_matches_is_paho_matching(flt, topic, expected):
    assert topics.topic_matches(flt, topic) is expected


def test_connect_errors_survive_copy_and_pickle():
    import copy
    import pickle

    for err in (errors.ConnectRefusedError(5), errors.connect_error(-1, TimeoutError()), errors.ConnectError(-2, "x")):
        for clone in (copy.copy(err), pickle.loads(pickle.dumps(err))):
            assert type(clone) is type(err) and (clone.code, clone.reason, str(clone)) == (err.code, err.reason, str(err))
