"""Plumbing shared by every demo: settings, the local emulator, the device, the platform side, shutdown.

Every demo runs in one of two modes:

* **local** (the default when no server address is given, or with ``--local``): an in-process
  :class:`iotda_emulator.Emulator` is started, a device is registered on it (secret, or an X.509
  certificate issued by the emulator's CA), the demo connects over TLS to ``localhost`` trusting
  ``emu.ca_file``, and a "platform side" thread drives the emulator so traffic flows both ways
  (commands, property requests, OTA tasks, ...). At exit the emulator's message trace is summarised
  (and written as JSON with ``--trace-out FILE``).
* **cloud**: ``--server-uri/--port/--device-id/--secret/--ca-file/--cert/--key`` (or the environment
  variables ``IOTDA_SERVER_URI``, ``IOTDA_PORT``, ``IOTDA_DEVICE_ID``, ``IOTDA_SECRET``, ``IOTDA_CA_FILE``,
  ``IOTDA_CERT_FILE``, ``IOTDA_KEY_FILE``, ``IOTDA_KEY_PASSWORD``) name a real IoTDA instance. The
  platform side is then your console or application, not the demo.

TLS is always verified (chain and host name); nothing here turns verification off.
Every demo stops cleanly on Ctrl-C (or SIGTERM), and after ``--duration SECONDS`` when given.
"""
from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from typing import Any, Callable, Dict, List, Optional

from iot_device_sdk_python.client.client_conf import ClientConf
from iot_device_sdk_python.client.connect_auth_info import ConnectAuthInfo
from iot_device_sdk_python.client.mqtt_connect_conf import MqttConnectConf

_log = logging.getLogger(__name__)

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
PLATFORM_TIMEOUT = 10.0   # seconds the platform side waits for a device's answer (keeps Ctrl-C prompt)

# Environment variables read for cloud mode (flags win over the environment).
ENV_SERVER_URI = "IOTDA_SERVER_URI"
ENV_PORT = "IOTDA_PORT"
ENV_DEVICE_ID = "IOTDA_DEVICE_ID"
ENV_SECRET = "IOTDA_SECRET"
ENV_CA_FILE = "IOTDA_CA_FILE"
ENV_CERT_FILE = "IOTDA_CERT_FILE"
ENV_KEY_FILE = "IOTDA_KEY_FILE"
ENV_KEY_PASSWORD = "IOTDA_KEY_PASSWORD"
ENV_HTTP_CA_FILE = "IOTDA_HTTP_CA_FILE"
ENV_DURATION = "IOTDA_DEMO_DURATION"
# bootstrap (provisioning) demos
ENV_BS_SERVER_URI = "IOTDA_BS_SERVER_URI"
ENV_BS_PORT = "IOTDA_BS_PORT"
ENV_BS_CA_FILE = "IOTDA_BS_CA_FILE"
ENV_BS_MESSAGE = "IOTDA_BS_MESSAGE"
ENV_SCOPE_ID = "IOTDA_SCOPE_ID"


def _env(name: str) -> Optional[str]:
    value = os.environ.get(name)
    return value if value else None


def _env_number(name: str, kind: type) -> Any:
    value = _env(name)
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        raise SystemExit(f"environment variable {name}={value!r} is not a {kind.__name__}") from None


def build_parser(description: str, *, bootstrap: bool = False) -> argparse.ArgumentParser:
    """The command-line options every demo shares (bootstrap demos get the provisioning ones too)."""
    p = argparse.ArgumentParser(
        description=description,
        epilog="Without --server-uri (or IOTDA_SERVER_URI) the demo runs against an in-process local emulator.")
    p.add_argument("--local", action="store_true",
                   help="run against an in-process IoTDA emulator (default when no server address is given)")
    p.add_argument("--server-uri", default=_env(ENV_SERVER_URI),
                   help=f"IoTDA access address, host name only (env {ENV_SERVER_URI})")
    p.add_argument("--port", type=int, default=_env_number(ENV_PORT, int),
                   help=f"MQTT port, default 8883 (env {ENV_PORT})")
    p.add_argument("--device-id", default=_env(ENV_DEVICE_ID), help=f"device id (env {ENV_DEVICE_ID})")
    p.add_argument("--secret", default=_env(ENV_SECRET),
                   help=f"device secret (env {ENV_SECRET}; prefer the environment: flags show in 'ps')")
    p.add_argument("--ca-file", default=_env(ENV_CA_FILE),
                   help=f"CA file that signed the platform's certificate (env {ENV_CA_FILE}); "
                        "default: the system trust store")
    p.add_argument("--cert", default=_env(ENV_CERT_FILE),
                   help=f"client certificate PEM for X.509 (env {ENV_CERT_FILE})")
    p.add_argument("--key", default=_env(ENV_KEY_FILE), help=f"client private key PEM for X.509 (env {ENV_KEY_FILE})")
    p.add_argument("--key-password", default=_env(ENV_KEY_PASSWORD), help=f"password of --key (env {ENV_KEY_PASSWORD})")
    p.add_argument("--http-ca-file", default=_env(ENV_HTTP_CA_FILE),
                   help="CA for HTTPS downloads/uploads (OTA packages, files); default: the system trust store "
                        f"(env {ENV_HTTP_CA_FILE})")
    if bootstrap:
        p.add_argument("--bs-server-uri", default=_env(ENV_BS_SERVER_URI),
                       help=f"provisioning (bootstrap) server host (env {ENV_BS_SERVER_URI}); cloud: "
                            "iot-bs.cn-north-4.myhuaweicloud.com")
        p.add_argument("--bs-port", type=int, default=_env_number(ENV_BS_PORT, int),
                       help=f"provisioning server port, default 8883 (env {ENV_BS_PORT})")
        p.add_argument("--bs-ca-file", default=_env(ENV_BS_CA_FILE),
                       help=f"CA of the provisioning server (env {ENV_BS_CA_FILE})")
        p.add_argument("--bs-message", default=_env(ENV_BS_MESSAGE),
                       help=f"payload of the bootstrap request, e.g. '{{\"baseStrategyKeyword\":\"kw\"}}' "
                            f"(env {ENV_BS_MESSAGE})")
        p.add_argument("--scope-id", default=_env(ENV_SCOPE_ID),
                       help=f"registration group scope id (env {ENV_SCOPE_ID})")
    if bootstrap:
        p.add_argument("--bs-force", action="store_true",
                       help="provision again even when the assigned address is cached")
    p.add_argument("--duration", type=float, default=_env_number(ENV_DURATION, float),
                   help="stop after this many seconds (default: run until Ctrl-C)")
    p.add_argument("--trace-out", default=None,
                   help="local mode: write the emulator's message trace as JSON to this file at exit")
    p.add_argument("-v", "--verbose", action="store_true", help="DEBUG logging (payloads are redacted)")
    return p


_SECRET_KEYS = ("deviceSecret", "secret", "access_token", "password", "url")   # url: presigned


def _redact(text: str) -> str:
    """Hide secrets a payload may carry (bootstrap deviceSecret, OTA token, presigned URLs) in written traces."""
    if not any(key in text for key in _SECRET_KEYS):
        return text
    try:
        obj = json.loads(text)
    except ValueError:
        return text

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ("<redacted>" if k in _SECRET_KEYS else walk(v)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return json.dumps(walk(obj), ensure_ascii=False, separators=(",", ":"))


class DemoError(Exception):
    """A demo cannot go on (bad settings, connect refused, ...): printed without a traceback."""


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    # SIGTERM (e.g. from a test harness or `kill`) takes the same clean path as Ctrl-C.
    raise KeyboardInterrupt


class Demo:
    """One demo run: parses the settings, owns the emulator (local mode), the devices and the platform side.

    Use it as a context manager::

        with Demo("what the demo shows") as demo:
            device = demo.create_device()
            demo.connect(device)
            demo.every(3, lambda: ...)          # platform side, local mode only
            demo.run()                          # until --duration or Ctrl-C
    """

    def __init__(self, description: str, argv: Optional[List[str]] = None, *, x509: bool = False,
                 bootstrap: bool = False, name: Optional[str] = None, register: bool = True,
                 add_arguments: Optional[Callable[[argparse.ArgumentParser], None]] = None) -> None:
        parser = build_parser(description, bootstrap=bootstrap)
        if add_arguments is not None:
            add_arguments(parser)
        self.args = parser.parse_args(argv)
        self.name = name or "demo"
        self.register = register   # False: the demo registers its device itself (bootstrap demos)
        self.x509 = x509 or bool(self.args.cert and not self.args.secret)
        self.bootstrap = bootstrap
        cloud_address = self.args.server_uri or (self.args.bs_server_uri if bootstrap else None)
        self.local: bool = bool(self.args.local or not cloud_address)
        self.stop_event = threading.Event()
        self.emulator: Any = None
        self.device_record: Dict[str, Any] = {}
        self.server_uri: Optional[str] = None
        self.port: Optional[int] = None
        self.device_id: Optional[str] = None
        self.secret: Optional[str] = None
        self.ca_file: Optional[str] = None
        self.http_ca_file: Optional[str] = self.args.http_ca_file   # None: system trust store
        self.cert_file: Optional[str] = self.args.cert
        self.key_file: Optional[str] = self.args.key
        self.key_password: Optional[str] = self.args.key_password
        self.work_dir = tempfile.mkdtemp(prefix=f"iotda-{self.name}-")
        self._devices: List[Any] = []
        self._threads: List[threading.Thread] = []
        self._cleanups: List[Callable[[], None]] = []
        self._closed = False

    # ---- life cycle -------------------------------------------------------------------------

    def __enter__(self) -> "Demo":
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        self.close()
        if exc_type is KeyboardInterrupt:
            say("[demo] interrupted, stopped cleanly")
            return True
        return False

    def start(self) -> "Demo":
        """Set up logging and signals, then start the emulator (local) or check the cloud settings."""
        logging.basicConfig(
            level=logging.DEBUG if self.args.verbose else logging.WARNING,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        if self.local:
            self._start_local()
        else:
            self._check_cloud()
        return self

    def _start_local(self) -> None:
        try:
            from iotda_emulator import Emulator
        except ImportError as exc:   # the SDK alone is installed: pip install ./iotda_emulator
            raise DemoError(f"local mode needs the emulator package (pip install ./iotda_emulator): {exc}") from None
        say("[platform] starting the local IoTDA emulator ...")
        self.emulator = Emulator(data_dir=os.path.join(self.work_dir, "emulator"))
        self.emulator.start()
        emu = self.emulator
        say(f"[platform] emulator up: MQTTS localhost:{emu.mqtts_port}, HTTP {emu.http_url}, CA {emu.ca_file}")
        self.server_uri = "localhost"        # the emulator's certificate names "localhost": the host name is verified
        self.port = emu.mqtts_port
        self.ca_file = emu.ca_file
        self.http_ca_file = self.args.http_ca_file or emu.ca_file   # the object store is the emulator's HTTPS
        if not self.register:
            return
        if self.x509:
            self._register_x509_device()
        else:
            self.device_record = emu.create_device(device_id=self.args.device_id, secret=self.args.secret,
                                                   name=self.name)
        self.set_device(self.device_record["device_id"], self.device_record.get("secret"))
        say(f"[platform] registered device {self.device_id} ({'X.509' if self.x509 else 'secret'})")

    def set_device(self, device_id: str, secret: Optional[str] = None) -> None:
        """Use ``device_id`` (and ``secret``) for the device this run connects."""
        self.device_id = device_id
        if secret is not None:
            self.secret = secret

    def _register_x509_device(self) -> None:
        device_id = self.args.device_id or f"emu_product_{self.name}"
        self.cert_file, self.key_file, fingerprint = issue_device_certificate(self.emulator, device_id, self.work_dir)
        self.device_record = self.emulator.create_device(device_id=device_id, fingerprint=fingerprint, name=self.name)

    def _check_cloud(self) -> None:
        a = self.args
        address = ("--bs-server-uri", a.bs_server_uri) if self.bootstrap else ("--server-uri", a.server_uri)
        missing = [flag for flag, value in (address, ("--device-id", a.device_id)) if not value]
        if self.x509:
            missing += [flag for flag, value in (("--cert", a.cert), ("--key", a.key)) if not value]
        elif not a.secret:
            missing.append("--secret")
        if missing:
            raise DemoError("cloud mode needs " + ", ".join(missing) + " (or the IOTDA_* environment variables)")
        self.server_uri = a.server_uri
        self.port = a.port or 8883
        self.device_id = a.device_id
        self.secret = a.secret
        self.ca_file = a.ca_file
        if self.bootstrap:
            say(f"[demo] cloud mode: provisioning through {a.bs_server_uri}:{a.bs_port or 8883} as {self.device_id}")
        else:
            say(f"[demo] cloud mode: {self.server_uri}:{self.port} as {self.device_id}")

    def close(self) -> None:
        """Stop the platform side, destroy the devices, report the trace, stop the emulator. Idempotent.

        A second Ctrl-C while closing is ignored: an interrupted close could leave the emulator's broker running.
        """
        if self._closed:
            return
        self._closed = True
        self.stop_event.set()
        restore = None
        if threading.current_thread() is threading.main_thread():
            restore = (signal.signal(signal.SIGINT, signal.SIG_IGN), signal.signal(signal.SIGTERM, signal.SIG_IGN))
        try:
            self._close()
        finally:
            if restore is not None:
                signal.signal(signal.SIGINT, restore[0])
                signal.signal(signal.SIGTERM, restore[1])

    def _close(self) -> None:
        for t in self._threads:
            t.join(timeout=15)
        for device in reversed(self._devices):
            try:
                device.destroy()
            except Exception as exc:   # keep closing the rest
                say(f"[demo] destroy failed: {exc!r}")
        for fn in reversed(self._cleanups):
            try:
                fn()
            except Exception as exc:
                say(f"[demo] cleanup failed: {exc!r}")
        if self.emulator is not None:
            try:
                self._report_trace()
            finally:
                self.emulator.stop()
                say("[platform] emulator stopped")
        shutil.rmtree(self.work_dir, ignore_errors=True)   # emulator data, issued keys: nothing left behind

    def on_close(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` at close, after the devices were destroyed and before the emulator stops."""
        self._cleanups.append(fn)

    def run(self) -> None:
        """Block until ``--duration`` elapsed or Ctrl-C / SIGTERM (KeyboardInterrupt is handled by ``__exit__``)."""
        duration = self.args.duration
        if duration is None:
            say("[demo] running; press Ctrl-C to stop")
        else:
            say(f"[demo] running for {duration:g} s (Ctrl-C stops earlier)")
        deadline = None if duration is None else time.monotonic() + duration
        while not self.stop_event.is_set():
            timeout = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
            if timeout <= 0:
                break
            self.stop_event.wait(timeout)

    def sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` unless the demo is stopping; True when the demo should go on."""
        return not self.stop_event.wait(seconds)

    # ---- the device -------------------------------------------------------------------------

    def connect_auth_info(self, **overrides: Any) -> ConnectAuthInfo:
        """A ConnectAuthInfo for this run's device (override any field by keyword)."""
        auth = ConnectAuthInfo()
        auth.server_uri = self.server_uri
        auth.port = self.port
        auth.id = self.device_id
        if self.x509:
            auth.auth_type = ConnectAuthInfo.X509_AUTH
            auth.cert_path = self.cert_file
            auth.key_path = self.key_file
            if self.key_password:
                auth.key_password = self.key_password
        else:
            auth.auth_type = ConnectAuthInfo.SECRET_AUTH
            auth.secret = self.secret
        if self.ca_file:
            auth.iot_cert_path = self.ca_file
        for key, value in overrides.items():
            setattr(auth, key, value)
        return auth

    def client_conf(self, auth: Optional[ConnectAuthInfo] = None, mqtt_conf: Optional[MqttConnectConf] = None,
                    **overrides: Any) -> ClientConf:
        return ClientConf(auth if auth is not None else self.connect_auth_info(**overrides),
                          mqtt_conf if mqtt_conf is not None else MqttConnectConf())

    def create_device(self, device_cls: Any = None, *, auth: Optional[ConnectAuthInfo] = None,
                      mqtt_conf: Optional[MqttConnectConf] = None, **overrides: Any) -> Any:
        """Build (not connect) an IotDevice (or ``device_cls``) for this run; it is destroyed at close."""
        if device_cls is None:
            from iot_device_sdk_python.iot_device import IotDevice
            device_cls = IotDevice
        device = device_cls(self.client_conf(auth, mqtt_conf, **overrides))
        self._devices.append(device)
        return device

    def connect(self, device: Any) -> None:
        """Connect ``device``; raise DemoError with the documented meaning when refused."""
        say(f"[device] connecting to {self.server_uri}:{self.port} ...")
        rc = device.connect()
        if rc != 0:
            meaning = {4: "bad user name or password", 5: "not authorized", -1: "network/TLS error or no CONNACK"}
            raise DemoError(f"connect failed: rc={rc} ({meaning.get(rc, 'refused')})")
        say("[device] connected")

    # ---- the platform side (local mode) -----------------------------------------------------

    def every(self, interval: float, fn: Callable[[], Any], *, first_delay: float = 1.0,
              name: str = "platform") -> None:
        """Local mode: call ``fn()`` (the platform side) on a thread every ``interval`` s until the demo stops.

        Errors are printed once per call and never stop the loop. No-op in cloud mode.
        """
        if self.emulator is not None:
            self._periodic(interval, fn, first_delay, name)

    def device_every(self, interval: float, fn: Callable[[], Any], *, first_delay: float = 0.0,
                     name: str = "device") -> None:
        """Both modes: call ``fn()`` (device-side work such as a report) every ``interval`` s until the demo stops."""
        self._periodic(interval, fn, first_delay, name)

    def _periodic(self, interval: float, fn: Callable[[], Any], first_delay: float, name: str) -> None:
        def loop() -> None:
            if first_delay > 0 and not self.sleep(first_delay):
                return
            while not self.stop_event.is_set():
                self._call(fn, name)
                if not self.sleep(interval):
                    return

        self._spawn(loop, name)

    def later(self, delay: float, fn: Callable[[], Any], *, name: str = "platform") -> None:
        """Local mode: call ``fn()`` once after ``delay`` s (unless the demo stops first)."""
        if self.emulator is None:
            return

        def once() -> None:
            if self.sleep(delay):
                self._call(fn, name)

        self._spawn(once, name)

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        t = threading.Thread(target=target, name=f"demo-{name}", daemon=True)
        self._threads.append(t)
        t.start()

    def _call(self, fn: Callable[[], Any], name: str) -> None:
        try:
            fn()
        except Exception as exc:
            if self.stop_event.is_set():
                return   # the emulator/device is going away: errors are expected
            side = "platform" if name.startswith("platform") else "device"
            say(f"[{side}] {name} failed: {type(exc).__name__}: {exc}")
            if self.args.verbose:
                traceback.print_exc()

    # ---- the emulator's trace ---------------------------------------------------------------

    def trace_entries(self) -> List[Dict[str, Any]]:
        """The emulator's trace for this run as JSON-able dicts (payload decoded when it is UTF-8)."""
        out = []
        for e in self.emulator.trace():
            payload = bytes(e.payload or b"")
            try:
                text: Optional[str] = _redact(payload.decode("utf-8"))
                b64 = None
            except UnicodeDecodeError:
                text, b64 = None, base64.b64encode(payload).decode("ascii")
            out.append({"time": e.time, "device_id": e.device_id, "direction": e.direction, "topic": e.topic,
                        "kind": e.kind, "payload": text, "payload_b64": b64})
        return out

    def _report_trace(self) -> None:
        try:
            entries = self.trace_entries()
        except Exception as exc:
            say(f"[platform] trace unavailable: {exc!r}")
            return
        counts: Dict[str, int] = {}
        for e in entries:
            key = f"{e['direction']}:{e['kind']}"
            counts[key] = counts.get(key, 0) + 1
        if self.args.trace_out:
            with open(self.args.trace_out, "w", encoding="utf-8") as f:
                json.dump({"demo": self.name, "device_id": self.device_id, "entries": entries}, f)
        say("[platform] trace summary: " + json.dumps(counts, sort_keys=True))


def issue_device_certificate(emulator: Any, device_id: str, directory: str):
    """Issue a client certificate for ``device_id`` from the emulator's device CA.

    Returns ``(cert_path, key_path, sha256_fingerprint)``; the fingerprint is what the device registry stores.
    (The files live in the emulator's data directory, which is inside this run's work directory.)
    """
    return emulator.issue_device_cert(device_id)


_print_lock = threading.Lock()


def say(text: str) -> None:
    """Print one line in a single write: demo threads (device listeners, platform side) print concurrently."""
    with _print_lock:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def print_json(prefix: str, obj: Any) -> None:
    """Print one line ``prefix {json}`` (what the platform sent or received)."""
    try:
        text = json.dumps(obj, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(obj)
    say(f"{prefix} {text}")


def main_guard(main: Callable[[Optional[List[str]]], Optional[int]]) -> None:
    """Run a demo's ``main``: clean exit codes for Ctrl-C and DemoError, and a check for leftover threads."""
    try:
        code = main(None) or 0
    except KeyboardInterrupt:
        say("[demo] interrupted")
        code = 0
    except DemoError as exc:
        print(f"[demo] error: {exc}", file=sys.stderr)
        code = 2
    sys.stdout.flush()
    # A demo must leave nothing running; if a non-daemon thread survives, say so instead of hanging.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        alive = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t.is_alive()]
        if not alive:
            break
        time.sleep(0.1)
    else:
        print("[demo] warning: threads still running after close: " + ", ".join(t.name for t in alive),
              file=sys.stderr)
        sys.stderr.flush()
        os._exit(code or 3)
    sys.exit(code)
