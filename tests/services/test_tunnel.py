"""Remote login tunnels (``$tunnel_manager``, doc/protocol.md §3.9) end to end: tunnels created with the official
application SDK, announced to SDK devices, and bytes piped between a local TCP client, the emulator's relay and a
TCP service on the device's side (an echo/banner service: sshd is not assumed to be installed)."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading

import pytest
from huaweicloudsdkcore.exceptions import exceptions as sdk_exceptions
from huaweicloudsdkiotda.v5 import (AddTunnelDto, AddTunnelRequest, CloseDeviceTunnelRequest,
                                    DeleteDeviceTunnelRequest, ListDeviceTunnelsRequest, ShowDeviceTunnelRequest)

from iot_device_sdk_python.tunnel import websocket_client
from iot_device_sdk_python.tunnel.tunnel_listener import TunnelListener
from iotda_emulator.tunnel_source import TunnelSource
from tests.emulator_http.conftest import make_app_client
from tests.waiting import wait_until


class TargetService:
    """A TCP service on the device's side: sends ``banner`` to each connection, then echoes (or closes when
    ``echo`` is False). Records what it received and how many connections ended."""

    def __init__(self, banner: bytes = b"HELLO from the device\n", echo: bool = True) -> None:
        self.banner, self.echo = banner, echo
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.received = bytearray()
        self.accepted = 0
        self.ended = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            conn.sendall(self.banner)
            while self.echo:
                try:
                    data = conn.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                with self._lock:
                    self.received += data
                conn.sendall(data)
            else:
                try:
                    with self._lock:
                        self.received += conn.recv(65536)
                except OSError:
                    pass
        with self._lock:
            self.ended += 1

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def target():
    svc = TargetService()
    yield svc
    svc.close()


@pytest.fixture
def app(emulator):
    return make_app_client(f"http://{emulator.host}:{emulator.http_port}")


def _add(app, device_id):
    return app.add_tunnel(AddTunnelRequest(body=AddTunnelDto(device_id=device_id)))


def _show(app, tunnel_id):
    return app.show_device_tunnel(ShowDeviceTunnelRequest(tunnel_id=tunnel_id))


def _recv_exactly(sock: socket.socket, count: int) -> bytes:
    out = bytearray()
    while len(out) < count:
        chunk = sock.recv(count - len(out))
        if not chunk:
            break
        out += chunk
    return bytes(out)


def _open_tunnel(emulator, app, device, target):
    device.get_tunnel_service().enable_tunnel(target_port=target.port, ca_file=emulator.ca_file)
    added = _add(app, device.get_device_id())
    emulator.service("$tunnel_manager").wait_state(added.tunnel_id, "device", "CONNECTED", timeout=15)
    return added


def test_bytes_go_both_ways_and_closing_the_tunnel_closes_both_ends(emulator, make_device, app, target, caplog):
    caplog.set_level(logging.DEBUG)
    device = make_device(emulator)
    added = _open_tunnel(emulator, app, device, target)
    assert added.tunnel_uri.startswith("wss://") and added.tunnel_uri.endswith(f"/{added.tunnel_id}/source-connect")
    assert added.expires_in > 0 and added.tunnel_access_token
    assert device.get_tunnel_service().get_tunnel_id() == added.tunnel_id
    shown = _show(app, added.tunnel_id)
    assert (shown.status, shown.device_id) == ("OPEN", device.get_device_id())
    assert shown.device_connect_state.status == "CONNECTED"
    assert shown.source_connect_state.status == "DISCONNECTED"

    with TunnelSource(added.tunnel_uri, added.tunnel_access_token, ca_file=emulator.ca_file) as source:
        client = socket.create_connection(("127.0.0.1", source.port), timeout=15)
        with client:
            assert _recv_exactly(client, len(target.banner)) == target.banner     # device -> source
            payload = bytes(range(256)) * 200    # binary, several frames long
            client.sendall(payload)                                               # source -> device
            assert _recv_exactly(client, len(payload)) == payload                 # ... and echoed back
            assert bytes(target.received) == payload
            assert _show(app, added.tunnel_id).source_connect_state.status == "CONNECTED"

            app.close_device_tunnel(CloseDeviceTunnelRequest(tunnel_id=added.tunnel_id))
            client.settimeout(15)
            assert client.recv(1) == b""                       # the source's end is closed...
        wait_until(lambda: target.ended == 1, 15, what="the device's local connection closed")   # ...and the device's
        wait_until(lambda: device.get_tunnel_service().get_tunnel_id() is None, 15, what="the device's tunnel closed")
    closed = _show(app, added.tunnel_id)
    assert closed.status == "CLOSED" and closed.closed_time
    assert closed.device_connect_state.status == closed.source_connect_state.status == "DISCONNECTED"
    app.delete_device_tunnel(DeleteDeviceTunnelRequest(tunnel_id=added.tunnel_id))
    # neither token reached a log line at any level (the device's travelled in tunnel_notify)
    notify = [e.json() for e in emulator.trace(device.get_device_id(), "down") if b"tunnel_notify" in e.payload]
    device_token = notify[0]["services"][0]["paras"]["tunnel_access_token"]
    assert device_token != added.tunnel_access_token
    for token in (device_token, added.tunnel_access_token):
        assert token not in caplog.text


def test_sessions_end_with_the_local_service_and_the_tunnel_serves_the_next_one(emulator, make_device, app):
    banner = TargetService(banner=b"one-shot\n", echo=False)
    device = make_device(emulator)
    opened = []

    class Recorder(TunnelListener):
        def on_session_started(self, tunnel_id, port):
            opened.append((tunnel_id, port))

    device.get_tunnel_service().set_listener(Recorder())
    try:
        added = _open_tunnel(emulator, app, device, banner)
        with TunnelSource(added.tunnel_uri, added.tunnel_access_token, ca_file=emulator.ca_file) as source:
            for round_ in range(2):
                with socket.create_connection(("127.0.0.1", source.port), timeout=15) as client:
                    assert _recv_exactly(client, 9) == b"one-shot\n"
                    client.sendall(b"bye")
                    assert client.recv(1) == b""           # the service closed: so does the session
                wait_until(lambda: banner.ended == round_ + 1, 15, what="local connection ended")
        assert opened == [(added.tunnel_id, banner.port)] * 2
        assert _show(app, added.tunnel_id).status == "OPEN"   # a session's end is not the tunnel's
        app.delete_device_tunnel(DeleteDeviceTunnelRequest(tunnel_id=added.tunnel_id))
        wait_until(lambda: device.get_tunnel_service().get_tunnel_id() is None, 15, what="tunnel gone")
    finally:
        banner.close()


async def _ws_status(uri, token, ca_file):
    from tornado.httpclient import HTTPClientError, HTTPRequest
    from tornado.websocket import websocket_connect

    import ssl
    request = HTTPRequest(uri, headers={"tunnel_access_token": token} if token is not None else {},
                          ssl_options=ssl.create_default_context(cafile=ca_file))
    try:
        ws = await websocket_connect(request)
    except HTTPClientError as exc:
        return exc.code, json.loads(exc.response.body) if exc.response is not None and exc.response.body else None
    ws.close()
    return 101, None


def test_wrong_tokens_are_refused(emulator, make_device, app, target, caplog):
    device = make_device(emulator)
    added = _open_tunnel(emulator, app, device, target)
    run = asyncio.run
    device_uri = added.tunnel_uri.replace("/source-connect", "/device-connect")
    assert run(_ws_status(added.tunnel_uri, "not-the-token", emulator.ca_file))[0] == 401
    assert run(_ws_status(added.tunnel_uri, None, emulator.ca_file))[0] == 401
    # the device's token does not open the source side, nor the source's the device side
    assert run(_ws_status(device_uri, added.tunnel_access_token, emulator.ca_file))[0] == 401
    unknown = added.tunnel_uri.replace(added.tunnel_id, "no-such-tunnel")
    status, body = run(_ws_status(unknown, added.tunnel_access_token, emulator.ca_file))
    assert status == 404 and body["error_code"] == "IOTDA.000006"
    # the refused attempts changed nothing: the device is still connected, no source is
    shown = _show(app, added.tunnel_id)
    assert (shown.device_connect_state.status, shown.source_connect_state.status) == ("CONNECTED", "DISCONNECTED")
    assert added.tunnel_access_token not in caplog.text
    app.delete_device_tunnel(DeleteDeviceTunnelRequest(tunnel_id=added.tunnel_id))


def test_a_device_without_tunnels_enabled_refuses_and_opens_no_socket(emulator, make_device, app, monkeypatch,
                                                                      caplog):
    opened = []
    real = websocket_client.WebSocketClient.connect

    def counting(url, *args, **kwargs):   # the SDK's one way to open a tunnel's socket, counted
        opened.append(url)
        return real(url, *args, **kwargs)

    monkeypatch.setattr(websocket_client.WebSocketClient, "connect", counting)
    device = make_device(emulator)
    assert not device.get_tunnel_service().is_enabled()
    added = _add(app, device.get_device_id())
    svc = emulator.service("$tunnel_manager")
    answer = wait_until(lambda: svc.device_answer(added.tunnel_id), 15, what="the device's answer")
    assert answer["result_code"] != 0 and "not enabled" in answer["description"]
    shown = _show(app, added.tunnel_id)
    assert shown.status == "CLOSED" and shown.device_connect_state.status == "DISCONNECTED"
    assert opened == []
    assert added.tunnel_access_token not in caplog.text
    app.delete_device_tunnel(DeleteDeviceTunnelRequest(tunnel_id=added.tunnel_id))


def test_a_disallowed_port_is_refused_by_the_device(emulator, make_device, app, target):
    device = make_device(emulator)
    added = _open_tunnel(emulator, app, device, target)
    with TunnelSource(added.tunnel_uri, added.tunnel_access_token, ca_file=emulator.ca_file,
                      target_port=target.port + 1 if target.port < 65535 else 1) as source:
        with socket.create_connection(("127.0.0.1", source.port), timeout=15) as client:
            assert client.recv(1) == b""     # refused session: closed without a byte
    assert target.accepted == 0
    app.delete_device_tunnel(DeleteDeviceTunnelRequest(tunnel_id=added.tunnel_id))


def test_rest_operations_through_the_official_sdk(emulator, make_device, app):
    device = make_device(emulator, connect=False)     # offline: the notification waits for it
    other = make_device(emulator, connect=False)
    first = _add(app, device.get_device_id())
    second = _add(app, other.get_device_id())
    assert first.tunnel_id != second.tunnel_id and first.tunnel_access_token != second.tunnel_access_token
    with pytest.raises(sdk_exceptions.ClientRequestException) as exc:
        _add(app, device.get_device_id())           # one tunnel per device
    assert exc.value.status_code == 400
    with pytest.raises(sdk_exceptions.ClientRequestException) as exc:
        _add(app, "no_such_device")
    assert (exc.value.status_code, exc.value.error_code) == (404, "IOTDA.014000")

    listed = app.list_device_tunnels(ListDeviceTunnelsRequest(device_id=device.get_device_id())).tunnels
    assert [t.tunnel_id for t in listed] == [first.tunnel_id]
    assert listed[0].status == "OPEN" and listed[0].create_time.endswith("Z") and listed[0].closed_time is None
    everything = {t.tunnel_id for t in app.list_device_tunnels(ListDeviceTunnelsRequest()).tunnels}
    assert {first.tunnel_id, second.tunnel_id} <= everything

    app.close_device_tunnel(CloseDeviceTunnelRequest(tunnel_id=second.tunnel_id))
    assert _show(app, second.tunnel_id).status == "CLOSED"
    for tunnel_id in (first.tunnel_id, second.tunnel_id):
        app.delete_device_tunnel(DeleteDeviceTunnelRequest(tunnel_id=tunnel_id))
        with pytest.raises(sdk_exceptions.ClientRequestException) as exc:
            _show(app, tunnel_id)
        assert exc.value.status_code == 404
    with pytest.raises(sdk_exceptions.ClientRequestException) as exc:
        app.close_device_tunnel(CloseDeviceTunnelRequest(tunnel_id=first.tunnel_id))
    assert exc.value.status_code == 404


def test_an_offline_device_is_notified_when_it_connects(emulator, make_device, app, target):
    device = make_device(emulator, connect=False)
    device.get_tunnel_service().enable_tunnel(target_port=target.port, ca_file=emulator.ca_file)
    added = _add(app, device.get_device_id())
    assert device.connect() == 0
    emulator.service("$tunnel_manager").wait_state(added.tunnel_id, "device", "CONNECTED", timeout=15)
    app.delete_device_tunnel(DeleteDeviceTunnelRequest(tunnel_id=added.tunnel_id))


@pytest.mark.skipif(shutil.which("ssh") is None, reason="no ssh client installed")
def test_a_real_ssh_client_reaches_the_device_through_the_tunnel(emulator, make_device, app):
    """OpenSSH through the tunnel to an SSH banner (sshd is not needed): the client reads the server's
    identification and the server reads the client's, so the SSH protocol itself crosses the relay."""
    fake_sshd = TargetService(banner=b"SSH-2.0-TunnelTest_1.0\r\n", echo=False)
    device = make_device(emulator)
    try:
        added = _open_tunnel(emulator, app, device, fake_sshd)
        with TunnelSource(added.tunnel_uri, added.tunnel_access_token, ca_file=emulator.ca_file) as source:
            proc = subprocess.run(
                ["ssh", "-vvv", "-p", str(source.port), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                 "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=15", "nobody@127.0.0.1", "true"],
                capture_output=True, text=True, timeout=60, env={**os.environ, "SSH_AUTH_SOCK": ""})
        assert "remote software version TunnelTest_1.0" in proc.stderr, proc.stderr[-2000:]
        wait_until(lambda: bytes(fake_sshd.received).startswith(b"SSH-2.0-OpenSSH"), 15,
                   what="the SSH client's identification at the device")
        app.delete_device_tunnel(DeleteDeviceTunnelRequest(tunnel_id=added.tunnel_id))
    finally:
        fake_sshd.close()



async def _close_code_after(uri, token, ca_file, message):
    import ssl

    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    ws = await websocket_connect(HTTPRequest(uri, headers={"tunnel_access_token": token},
                                             ssl_options=ssl.create_default_context(cafile=ca_file)))
    await ws.write_message(message, binary=isinstance(message, bytes))
    while await asyncio.wait_for(ws.read_message(), 15) is not None:
        pass        # connect_tunnel etc. may come first
    return ws.close_code


def test_the_relay_closes_a_link_that_sends_bad_frames(emulator, make_device, app, target):
    device = make_device(emulator)
    added = _open_tunnel(emulator, app, device, target)
    uri, token, ca = added.tunnel_uri, added.tunnel_access_token, emulator.ca_file
    assert asyncio.run(_close_code_after(uri, token, ca, "not json")) == 1003
    assert asyncio.run(_close_code_after(uri, token, ca, b"\x00binary")) == 1003
    big = json.dumps({"operation_type": "command", "data": "A" * 11 * 1024})
    assert asyncio.run(_close_code_after(uri, token, ca, big)) == 1009
    # the device side was never disturbed
    assert _show(app, added.tunnel_id).device_connect_state.status == "CONNECTED"
    assert target.accepted == 0
    app.delete_device_tunnel(DeleteDeviceTunnelRequest(tunnel_id=added.tunnel_id))


def test_tunnel_connect_command_line(emulator, make_device, target):
    device = make_device(emulator)
    device.get_tunnel_service().enable_tunnel(target_port=target.port, ca_file=emulator.ca_file)
    proc = subprocess.Popen(
        [sys.executable, "-m", "iotda_emulator", "tunnel-connect", "--device-id", device.get_device_id(),
         "--endpoint", f"http://{emulator.host}:{emulator.http_port}", "--listen", "0", "--ca-file",
         emulator.ca_file], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        lines = []
        while True:
            line = proc.stdout.readline()
            assert line, "tunnel-connect ended early:\n" + "".join(lines)
            lines.append(line)
            if line.startswith("listening on "):
                break
        port = int(line.split()[2].rsplit(":", 1)[1].rstrip(";"))
        assert lines[0].startswith("tunnel ") and device.get_device_id() in lines[0]
        with socket.create_connection(("127.0.0.1", port), timeout=15) as client:
            assert _recv_exactly(client, len(target.banner)) == target.banner
            client.sendall(b"over the command line\n")
            assert _recv_exactly(client, 22) == b"over the command line\n"
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    svc = emulator.service("$tunnel_manager")
    for view in svc.tunnels(device.get_device_id()):
        svc.delete_tunnel(view["tunnel_id"])


SSHD = "/usr/sbin/sshd"


@pytest.mark.skipif(not os.path.exists(SSHD) or shutil.which("ssh-keygen") is None or shutil.which("ssh") is None,
                    reason="needs /usr/sbin/sshd, ssh and ssh-keygen (the banner test above covers SSH without sshd)")
def test_ssh_into_a_real_sshd_through_the_tunnel(emulator, make_device, app, tmp_path):  # pragma: no cover
    import getpass
    import time

    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / name)], check=True)
    (tmp_path / "authorized_keys").write_text((tmp_path / "client_key.pub").read_text())
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    (tmp_path / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {tmp_path / 'host_key'}\n"
        f"AuthorizedKeysFile {tmp_path / 'authorized_keys'}\nPidFile {tmp_path / 'sshd.pid'}\n"
        "StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n")
    sshd = subprocess.Popen([SSHD, "-D", "-e", "-f", str(tmp_path / "sshd_config")], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            if sshd.poll() is not None:
                pytest.skip(f"sshd could not start here: {sshd.stderr.read()[-300:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.skip("sshd did not listen within 10 s")
                time.sleep(0.1)
        device = make_device(emulator)
        target = type("Target", (), {"port": port})()
        added = _open_tunnel(emulator, app, device, target)
        with TunnelSource(added.tunnel_uri, added.tunnel_access_token, ca_file=emulator.ca_file) as source:
            proc = subprocess.run(
                ["ssh", "-i", str(tmp_path / "client_key"), "-p", str(source.port), "-o", "BatchMode=yes",
                 "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes",
                 f"{getpass.getuser()}@127.0.0.1", "echo", "tunnel-ok"],
                capture_output=True, text=True, timeout=60)
        assert proc.stdout.strip() == "tunnel-ok", proc.stderr[-2000:]
        app.delete_device_tunnel(DeleteDeviceTunnelRequest(tunnel_id=added.tunnel_id))
    finally:
        sshd.terminate()
        sshd.wait(timeout=10)
