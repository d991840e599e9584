"""MQTT over WebSocket (TLS) and proxies, end to end (issue 19 item 3).

SDK devices reach the emulator over ``wss://host:{wss_port}/mqtt``, and through a local HTTP CONNECT proxy and a
SOCKS5 proxy that the test runs (``_proxies.py``): each proxy counts the tunnels it opened, so the assertions
prove that the traffic really went through it. The emulator's WSS listener applies the same rules as MQTT(S).
"""
from __future__ import annotations

import base64
import os
import socket
import ssl

import pytest

from iot_device_sdk_python import ConnectRefusedError, MqttConnectConf
from iot_device_sdk_python.client.listener.command_listener import CommandListener
from iot_device_sdk_python.client.request.command_response import CommandRsp
from iot_device_sdk_python.client.request.service_property import ServiceProperty
from iot_device_sdk_python.iot_device import IotDevice
from tests.beyond._proxies import HttpConnectProxy, Socks5Proxy
from tests.fixtures_sdk import build_client_conf
from tests.waiting import wait_until


def _wss(emulator, **settings):
    """Settings for a device that connects over wss to ``emulator``."""
    return dict(tls=True, port=emulator.wss_port, transport="websockets", **settings)


def _round_trip(emulator, device) -> None:
    did = device.get_device_id()
    client = device.get_client()

    class Echo(CommandListener):
        def on_command(self, request_id, service_id, command_name, paras):
            client.respond_command(request_id, CommandRsp(0, "ok", {"echo": paras}))

    client.set_command_listener(Echo())
    client.report_properties([ServiceProperty("net", {"via": "ok"})]).result(5)
    assert wait_until(lambda: any(s["service_id"] == "net" for s in emulator.shadow(did)))
    assert emulator.send_command(did, "net", "ping", {"n": 7})["paras"] == {"echo": {"n": 7}}


def test_a_device_works_over_wss(emulator, make_device):
    assert emulator.wss_port
    device = make_device(**_wss(emulator))
    _round_trip(emulator, device)


def test_mqtt5_over_wss(emulator, make_device):
    device = make_device(**_wss(emulator, protocol_version=MqttConnectConf.MQTT_V5))
    _round_trip(emulator, device)


def test_wss_applies_iotda_authentication(emulator, make_device, device_record):
    record = dict(device_record, secret="wrong-secret-123")
    device = make_device(record=record, connect=False, reconnect_on_failure=False, **_wss(emulator))
    with pytest.raises(ConnectRefusedError) as info:
        device.connect(raise_on_failure=True)
    assert info.value.code == 4


def test_x509_device_over_wss(emulator, make_device):
    record = emulator.create_device(auth_type="CERTIFICATES")
    cert, key, _ = emulator.issue_device_cert(record["device_id"])
    device = make_device(record=record, auth_type=1, cert_path=cert, key_path=key, secret=None, **_wss(emulator))
    assert device.get_client().is_connected()
    assert emulator.is_online(record["device_id"])


def _raw_handshake(emulator, request: bytes) -> bytes:
    ctx = ssl.create_default_context(cafile=emulator.ca_file)
    with socket.create_connection((emulator.host, emulator.wss_port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=emulator.host) as tls:
            tls.sendall(request)
            return tls.recv(4096)


@pytest.mark.parametrize("path, protocol, status", [
    ("/mqtt", "mqtt", b"101"),
    ("/other", "mqtt", b"404"),
    ("/mqtt", "chat", b"400"),
])
def test_the_wss_handshake(emulator, path, protocol, status):
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n")
    answer = _raw_handshake(emulator, request.encode())
    assert answer.split(b" ")[1] == status


@pytest.mark.parametrize("proxy_cls, proxy_type", [(HttpConnectProxy, "http"), (Socks5Proxy, "socks5")])
@pytest.mark.parametrize("over", ["tcp", "wss"])
def test_a_device_through_a_proxy(emulator, make_device, proxy_cls, proxy_type, over):
    with proxy_cls(username="proxyuser", password="proxy-pw") as proxy:
        settings = dict(proxy_type=proxy_type, proxy_host="127.0.0.1", proxy_port=proxy.port,
                        proxy_username="proxyuser", proxy_password="proxy-pw")
        if over == "wss":
            settings.update(_wss(emulator))
        device = make_device(**settings)
        assert proxy.connections == 1
        want_port = emulator.wss_port if over == "wss" else emulator.mqtt_port
        assert proxy.targets == [(emulator.host, want_port)]
        before = proxy.bytes_up
        _round_trip(emulator, device)
        assert proxy.bytes_up > before  # the reports and the answer went through the tunnel
        device.destroy()


def test_wrong_proxy_credentials_fail_the_connection(emulator, make_device):
    with HttpConnectProxy(username="proxyuser", password="proxy-pw") as proxy:
        device = make_device(connect=False, reconnect_on_failure=False, proxy_type="http", proxy_host="127.0.0.1",
                             proxy_port=proxy.port, proxy_username="proxyuser", proxy_password="wrong")
        assert device.connect() == -1
        assert proxy.refused == 1 and proxy.connections == 0


@pytest.mark.parametrize("settings, field", [
    (dict(transport="udp"), "transport"),
    (dict(ws_path="mqtt"), "ws_path"),
    (dict(proxy_type="ftp", proxy_host="h", proxy_port=1), "proxy_type"),
    (dict(proxy_type="http", proxy_port=8080), "proxy_host"),
    (dict(proxy_type="socks5", proxy_host="h", proxy_port=0), "proxy_port"),
])
def test_bad_transport_settings_name_the_field(emulator, device_record, settings, field):
    with pytest.raises(ValueError, match=field):
        IotDevice(build_client_conf(emulator, device_record, **settings))


def test_the_proxy_password_is_not_logged(emulator, make_device, caplog):
    with Socks5Proxy() as proxy:
        with caplog.at_level("DEBUG"):
            device = make_device(proxy_type="socks5", proxy_host="127.0.0.1", proxy_port=proxy.port,
                                 proxy_password="s3cret-proxy-pw", proxy_username="u")
        assert proxy.connections == 1
        device.destroy()
    assert "s3cret-proxy-pw" not in caplog.text


def test_the_cli_takes_and_prints_the_wss_port(emulator):
    from iotda_emulator import cli

    assert cli.build_parser().parse_args(["start", "--wss-port", "0"]).wss_port == 0
    assert f"wss://{emulator.advertise_host}:{emulator.wss_port}/mqtt" in "\n".join(cli.describe_listeners(emulator))


def test_a_large_message_crosses_the_websocket_intact(emulator, make_device):
    from iot_device_sdk_python.transport.raw_message import RawMessage

    device = make_device(**_wss(emulator))
    did = device.get_device_id()
    payload = os.urandom(600 * 1024)  # several 64 KB pieces of one WebSocket frame
    topic = f"$oc/devices/{did}/sys/messages/up"
    device.get_client().publish_raw_message(RawMessage(topic, payload, 1)).result(10)
    assert wait_until(lambda: any(e.payload == payload for e in emulator.trace(did, direction="up")
                                  if e.topic == topic))


@pytest.mark.parametrize("frame, close_code", [
    (b"\x82\x02\x10\x00", 1002),                                # unmasked binary frame
    (b"\x81\x82" + b"\x01\x02\x03\x04" + bytes([0x68 ^ 1, 0x69 ^ 2]), 1003),   # masked text frame "hi"
])
def test_a_websocket_that_breaks_the_rules_is_closed_with_its_code(emulator, frame, close_code):
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n")
    ctx = ssl.create_default_context(cafile=emulator.ca_file)
    with socket.create_connection((emulator.host, emulator.wss_port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=emulator.host) as tls:
            tls.sendall(request.encode())
            head = b""
            while b"\r\n\r\n" not in head:
                head += tls.recv(4096)
            assert head.startswith(b"HTTP/1.1 101")
            tls.sendall(frame)
            answer = head.split(b"\r\n\r\n", 1)[1]
            while len(answer) < 4:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                answer += chunk
    assert answer[0] == 0x88 and int.from_bytes(answer[2:4], "big") == close_code  # a close frame with the code
