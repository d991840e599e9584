"""Security under real sockets: TLS below 1.2 refused, no secret in any DEBUG log over a full run,
downloads stay where the application said.

Already covered elsewhere (not repeated): wrong CA and wrong host name (tests/sdk/test_connection.py),
OTA file names with ``../`` (tests/services/test_ota.py), bootstrap address validation
(tests/bootstrap/test_bootstrap.py::test_address_validation_unit), garbage on the gateway TCP demo
(tests/gateway/test_tcp_demo.py).
"""
from __future__ import annotations

import json
import logging
import os
import socket
import ssl
import threading
import uuid
import warnings

import pytest

from iot_device_sdk_python.client.connect_auth_info import ConnectAuthInfo
from iot_device_sdk_python.filemanager.file_manager_service import FileTransferError
from iot_device_sdk_python.ota.ota_listener import OTAListener
from iot_device_sdk_python.protocol import codec
from iot_device_sdk_python.transport.mqtt.mqtt_connection import MqttConnection


# ---- TLS version floor ----------------------------------------------------------------------------

class _OneShotTlsServer:
    """Accepts one TCP connection and runs a server TLS handshake limited to ``max_version``."""

    def __init__(self, emulator, max_version: ssl.TLSVersion):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(emulator.certs.server_cert_file, emulator.certs.server_key_file)
        with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated: that is the point of this server
            warnings.simplefilter("ignore", DeprecationWarning)
            self.ctx.minimum_version = ssl.TLSVersion.TLSv1
            self.ctx.maximum_version = max_version
        try:
            self.ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let OpenSSL speak TLS 1.0/1.1 at all
        except ssl.SSLError:
            pass
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.result = {}
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.sock.settimeout(15)
        try:
            conn, _ = self.sock.accept()
        except OSError as exc:
            self.result["error"] = exc
            return
        conn.settimeout(10)
        try:
            with self.ctx.wrap_socket(conn, server_side=True) as tls:
                self.result["version"] = tls.version()
                self.result["first_bytes"] = tls.recv(1)  # a CONNECT would start with 0x10
        except (OSError, ssl.SSLError) as exc:
            self.result["error"] = exc
        finally:
            conn.close()
            self.sock.close()


def _connect_to(make_device, emulator, port):
    device = make_device(tls=True, connect=False, port=port, reconnect_on_failure=False, timeout=5)
    rc = device.connect()
    return device, rc


def test_sdk_context_requires_tls_1_2(emulator):
    info = ConnectAuthInfo()
    info.id, info.secret, info.server_uri, info.port, info.iot_cert_path = "d_1", "s" * 8, "localhost", 8883, emulator.ca_file
    conn = MqttConnection.__new__(MqttConnection)
    conn._auth = info
    ctx = conn._ssl_connect_config(emulator.ca_file, None, None)
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname


def test_server_offering_only_tls_1_1_is_refused(emulator, make_device):
    """A server capped at TLS 1.1 must not get a CONNECT. If the local OpenSSL cannot speak TLS 1.1 at all,
    the handshake fails on the server side too; the assertion that matters (no CONNECT, code -1, a
    protocol-version error) holds either way, and the context floor is asserted separately above."""
    control = _OneShotTlsServer(emulator, ssl.TLSVersion.TLSv1_2)  # same server, TLS 1.2 allowed: works
    _, rc = _connect_to(make_device, emulator, control.port)
    control.thread.join(15)
    assert control.result.get("version") == "TLSv1.2", control.result
    assert control.result.get("first_bytes") == b"\x10"  # the SDK sent its CONNECT over TLS 1.2

    old = _OneShotTlsServer(emulator, ssl.TLSVersion.TLSv1_1)
    device, rc = _connect_to(make_device, emulator, old.port)
    old.thread.join(15)
    assert rc == -1
    assert "version" not in old.result and "error" in old.result, old.result
    err = str(device.get_client()._get_connection().last_error).lower()
    assert any(w in err for w in ("protocol", "version", "alert")), err


# ---- secrets never in logs ------------------------------------------------------------------------

class _AllRecords(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines = []

    def emit(self, record):
        try:
            self.lines.append((record.name, self.format(record)))
        except Exception:  # noqa: BLE001 - a broken record must not break the test's capture
            self.lines.append((record.name, repr(record.msg)))


class _Upgrader(OTAListener):
    def __init__(self, device, target, ca_file):
        self.ota = device.get_ota_service()
        self.target, self.ca_file = target, ca_file
        self.packages, self.done = [], threading.Event()

    def on_query_version(self, query_info):
        self.ota.report_version(fw_version="1.0", sw_version="1.0")

    def on_receive_package_info(self, pkg):
        self.packages.append(pkg)
        fut = self.ota.download_package(pkg, self.target, self.ca_file, timeout=10)
        def finished(f):
            assert f.exception() is None, f.exception()
            self.done.set()

        fut.add_done_callback(finished)


def _sensitive_values(obj, out):
    """Values of credential-like keys in a JSON payload; for URLs, their query string."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            key = str(k).lower()
            if isinstance(v, str) and v:
                if "url" in key and "?" in v:
                    out.add(v.split("?", 1)[1])
                elif any(w in key for w in ("token", "secret", "password", "sign")) and len(v) >= 8:
                    out.add(v)
            _sensitive_values(v, out)
    elif isinstance(obj, list):
        for v in obj:
            _sensitive_values(v, out)


def test_no_secret_token_password_or_presigned_url_in_debug_logs(emulator, make_device, tmp_path):
    handler = _AllRecords()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in ("paho", "urllib3", "requests", "iot_device_sdk_python"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    secrets = set()
    devices = []
    try:
        # 1. secret device over TLS, plus an OTA v1 (bearer token) and v2 (presigned URL) download
        rec = emulator.create_device()
        device = make_device(record=rec, tls=True)
        devices.append(rec["device_id"])
        conn = device.get_client()._get_connection()
        stamp = codec.utc_hour_stamp()
        secrets |= {rec["secret"], conn._password(stamp)}
        up = _Upgrader(device, str(tmp_path / "ota"), emulator.ca_file)
        device.get_ota_service().set_ota_listener(up)
        svc = emulator.service("$ota")
        for i, v2 in enumerate((False, True)):
            up.done.clear()
            pkg_id = svc.upload_package(os.urandom(5000), f"3.{i}", file_name=f"fw-3.{i}.bin")
            svc.start_task(rec["device_id"], pkg_id, "firmware", v2=v2)
            assert up.done.wait(30)
        secrets |= {p.access_token for p in up.packages if getattr(p, "access_token", None)}
        secrets |= {p.url.split("?", 1)[1] for p in up.packages if "?" in (p.url or "")}
        # 2. file upload and download (presigned URLs)
        fms = device.get_file_manager_service()
        src = tmp_path / "up.bin"
        src.write_bytes(b"upload me")
        fms.transfer_upload("up.bin", str(src), ca_file=emulator.ca_file).result(30)
        fms.transfer_download("up.bin", str(tmp_path / "down.bin"), ca_file=emulator.ca_file).result(30)
        # 3. bootstrap with a registration group: the platform issues a deviceSecret
        bs = emulator.service("$bootstrap")
        group = bs.add_registration_group(("scope-" + uuid.uuid4().hex[:8]))
        bs_id = "grp_" + uuid.uuid4().hex[:10]
        from iot_device_sdk_python.bootstrap.bootstrap_client import bootstrap
        info = ConnectAuthInfo()
        info.id, info.secret, info.server_uri, info.port = bs_id, group["secret"], "localhost", bs.port
        info.bs_mode, info.scope_id = 2, group["scope_id"]
        info.bs_cert_path = info.iot_cert_path = emulator.ca_file
        info.bs_cache_path = str(tmp_path / "bs.json")
        new = bootstrap(info)
        secrets |= {group["secret"], new.secret}
        devices.append(bs_id)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    for did in devices:
        for entry in emulator.trace(did, "down") + emulator.trace(did, "up"):
            try:
                _sensitive_values(json.loads(entry.payload), secrets)
            except ValueError:
                continue
    secrets = {s for s in secrets if s and len(s) >= 8}
    assert len(secrets) >= 8, secrets  # the run really handled secrets of every kind
    sdk_side = [(n, line) for n, line in handler.lines if not n.startswith(("iotda_emulator", "tornado"))]
    assert any(n.startswith("urllib3") for n, _ in sdk_side), "urllib3 DEBUG lines were not captured"
    assert any(n.startswith("iot_device_sdk_python") and " DEBUG " in line for n, line in sdk_side)
    leaks = [(n, line[:200]) for n, line in sdk_side for s in secrets if s in line]
    assert not leaks, leaks


# ---- downloads stay in the chosen place -----------------------------------------------------------

def test_file_download_with_traversal_name_writes_only_the_chosen_path(emulator, make_device, tmp_path):
    """The local path is always the one the application passed; a platform object name never becomes a
    path. An object name with ``..`` is refused (by the object store) and writes nothing; an unsolicited
    download URL for a traversal name writes nothing anywhere."""
    device = make_device()
    did = device.get_device_id()
    fms = device.get_file_manager_service()
    emu_fm = emulator.service("$file_manager")
    target_dir = tmp_path / "a" / "b"
    target_dir.mkdir(parents=True)
    before = set(os.listdir(tmp_path))
    emu_fm.put_file(did, "plain.txt", b"payload")
    dst = target_dir / "chosen.txt"
    fms.transfer_download("plain.txt", str(dst), ca_file=emulator.ca_file).result(30)
    assert dst.read_bytes() == b"payload" and os.listdir(target_dir) == ["chosen.txt"]
    fut = fms.transfer_download("../../escape.txt", str(target_dir / "other.txt"), ca_file=emulator.ca_file,
                                url_timeout=3)
    with pytest.raises(FileTransferError):
        fut.result(30)
    emulator.send_event(did, "$file_manager", "get_download_url_response",
                        {"object_name": "../../../evil.txt", "url": f"{emulator.https_url}/nothing", "expire": 60})
    device.get_client().get_dispatcher().wait_idle(5)
    assert os.listdir(target_dir) == ["chosen.txt"]
    assert set(os.listdir(tmp_path)) == before
    assert not (tmp_path.parent / "evil.txt").exists() and not (tmp_path.parent / "escape.txt").exists()
