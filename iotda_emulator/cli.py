"""``iotda-emulator``: run the local IoTDA emulator, and manage its device registry.

    iotda-emulator start [--host H] [--advertise-host NAME] [--mqtt-port P] [--mqtts-port P] [--http-port P]
                         [--https-port P] [--wss-port P] [--bootstrap-host H] [--bootstrap-port P]
                         [--data-dir DIR] [--command-timeout S] [--app-key AK:SK ...]
    iotda-emulator device add [--device-id ID] [--secret S] [--product-id P] [--node-id N]
                              [--gateway-id G] [--name NAME] [--fingerprint HEX] [--data-dir DIR] [--json]
    iotda-emulator device list [--data-dir DIR] [--json]
    iotda-emulator device delete DEVICE_ID [--data-dir DIR]
    iotda-emulator tunnel-connect (--device-id ID [--endpoint URL] | --tunnel-uri URI) [--listen 2222] [--ca-file F]
    iotda-emulator ota-package --file FW.bin --version 2.0 [--type firmwarePackage|softwarePackage]
                               [--product-id P] [--url http://127.0.0.1:8080] [--app-key AK:SK] ...

The registry lives in sqlite under the data directory, so ``device`` commands work whether or not an
emulator is running on that directory. The default data directory is ``$IOTDA_EMULATOR_DATA_DIR`` or
``~/.iotda-emulator``; one emulator at a time may run on a data directory (``start`` refuses a second one).

The provisioning (IoTDP bootstrap) endpoint is a listener of its own. As on the cloud, where IoTDP and IoTDA
are both on port 8883 under different host names, it listens by default on ``127.0.0.2`` with the MQTTS
port when ``--host`` is ``127.0.0.1`` and the system lets us bind 127.0.0.2 (Linux does); otherwise on
``--host`` with a port of its own (``DEFAULT_BOOTSTRAP_PORT`` when free).
"""
from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
from typing import Any, List, Optional, Sequence

from iotda_emulator import __version__

log = logging.getLogger(__name__)

#: Ports ``start`` prefers when they are free (IoTDA's own MQTT/MQTTS ports, usual HTTP ones).
DEFAULT_PORTS = {"mqtt_port": 1883, "mqtts_port": 8883, "http_port": 8080, "https_port": 8443,
                 # MQTT over WebSocket with TLS: IoTDA uses 443, which needs privileges; 8084 is the usual local one
                 "wss_port": 8084}
#: Bootstrap port preferred when the bootstrap endpoint shares the IoTDA host (IoTDP itself uses 8883 on a
#: host of its own; this is only a stable local choice next to it).
DEFAULT_BOOTSTRAP_PORT = 8884
#: The loopback address the bootstrap endpoint takes next to 127.0.0.1 (a second "host", same port).
BOOTSTRAP_LOOPBACK = "127.0.0.2"


def default_data_dir() -> str:
    """``$IOTDA_EMULATOR_DATA_DIR`` or ``~/.iotda-emulator``."""
    return os.environ.get("IOTDA_EMULATOR_DATA_DIR") or os.path.join(os.path.expanduser("~"), ".iotda-emulator")


def port_is_free(host: str, port: int) -> bool:
    """True when a listening socket could bind ``host:port`` now."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return False
    for family, socktype, proto, _, addr in infos:
        sock = socket.socket(family, socktype, proto)
        try:
            # as the real listeners will: a port in TIME_WAIT is usable
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(addr)
        except OSError:
            return False
        finally:
            sock.close()
    return True


def _port_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``iotda-emulator`` (sub-commands ``start`` and ``device``)."""
    parser = argparse.ArgumentParser(prog="iotda-emulator", description="Local Huawei Cloud IoTDA emulator.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for DEBUG)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command")

    start = sub.add_parser("start", help="run the emulator until Ctrl-C")
    start.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1; 0.0.0.0 = every interface)")
    start.add_argument("--advertise-host", default=None, metavar="NAME",
                       help="name put in URLs, bootstrap answers and the server certificate (default: --host; "
                            "for 0.0.0.0 the machine's host name, or 127.0.0.1 when it does not resolve)")
    for name, port in DEFAULT_PORTS.items():
        start.add_argument("--" + name.replace("_", "-"), dest=name, type=_port_arg, default=None,
                           help=f"default {port} when free, otherwise a free port; 0 = any free port")
    start.add_argument("--bootstrap-host", default=None, metavar="H",
                       help=f"address of the provisioning (IoTDP) endpoint (default {BOOTSTRAP_LOOPBACK} with the "
                            "MQTTS port when --host is 127.0.0.1 and the system allows it, otherwise --host)")
    start.add_argument("--bootstrap-port", dest="bootstrap_port", type=_port_arg, default=None,
                       help="port of the provisioning endpoint (default: the MQTTS port on a host of its own, "
                            f"else {DEFAULT_BOOTSTRAP_PORT} when free); 0 = any free port")
    start.add_argument("--data-dir", default=None, help="registry, shadow, trace, certificates "
                                                        "(default $IOTDA_EMULATOR_DATA_DIR or ~/.iotda-emulator)")
    start.add_argument("--command-timeout", type=_positive_float, default=20.0,
                       help="seconds to wait for a device's command/property response (default 20, as IoTDA)")
    start.add_argument("--app-key", action="append", default=[], metavar="AK:SK",
                       help="require SDK-HMAC-SHA256 signatures by this application key (repeatable)")
    start.set_defaults(func=cmd_start)

    device = sub.add_parser("device", help="manage the device registry")
    dsub = device.add_subparsers(dest="device_command")
    add = dsub.add_parser("add", help="register a device (prints its id and secret)")
    add.add_argument("--device-id", default=None, help="default {product_id}_{node_id}")
    add.add_argument("--secret", default=None, help="default: a random secret")
    add.add_argument("--product-id", default="emu_product")
    add.add_argument("--node-id", default=None, help="default: a random node id")
    add.add_argument("--gateway-id", default=None, help="register a child device of this gateway")
    add.add_argument("--name", default=None, help="device name")
    add.add_argument("--fingerprint", default=None, help="X.509 certificate fingerprint (SHA-1 or SHA-256 hex)")
    lst = dsub.add_parser("list", help="list registered devices")
    dele = dsub.add_parser("delete", help="delete a device")
    dele.add_argument("device_id")
    for p in (add, lst, dele):
        p.add_argument("--data-dir", default=None, help="default $IOTDA_EMULATOR_DATA_DIR or ~/.iotda-emulator")
    for p in (add, lst):
        p.add_argument("--json", action="store_true", help="print JSON")
    add.set_defaults(func=cmd_device_add)
    lst.set_defaults(func=cmd_device_list)
    dele.set_defaults(func=cmd_device_delete)
    device.set_defaults(func=lambda args: _usage(device))
    from iotda_emulator import tunnel_source  # the source side of device tunnels (remote login)

    tunnel = sub.add_parser("tunnel-connect", help="relay a local TCP port into a device tunnel (remote login)")
    tunnel_source.add_arguments(tunnel)
    tunnel.set_defaults(func=tunnel_source.cmd_tunnel_connect)
    from iotda_emulator import ota_upload  # upload to the object store + CreateOtaPackage

    ota = sub.add_parser("ota-package", help="upload a package file and create the OTA package (running emulator)")
    ota_upload.add_arguments(ota)
    ota.set_defaults(func=ota_upload.cmd_ota_package)
    return parser


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


# ---- start ----------------------------------------------------------------------------------------

def _choose_ports(args: argparse.Namespace) -> dict:
    ports = {}
    for name, preferred in DEFAULT_PORTS.items():
        given = getattr(args, name)
        if given is not None:
            ports[name] = given
        else:
            ports[name] = preferred if port_is_free(args.host, preferred) else 0
    return ports


def address_is_local(host: str) -> bool:
    """True when a socket can bind ``host`` here (e.g. 127.0.0.2: yes on Linux, no on stock macOS)."""
    return port_is_free(host, 0)


def _choose_bootstrap(args: argparse.Namespace) -> dict:
    """``bootstrap_host``/``bootstrap_port`` for the Emulator (see the module docstring)."""
    host = args.bootstrap_host
    if host is None:
        host = BOOTSTRAP_LOOPBACK if args.host == "127.0.0.1" and address_is_local(BOOTSTRAP_LOOPBACK) else args.host
    port = args.bootstrap_port
    if port is None and host == args.host:
        port = DEFAULT_BOOTSTRAP_PORT if port_is_free(host, DEFAULT_BOOTSTRAP_PORT) else 0
    # port None on a host of its own: the bootstrap service takes IoTDA's MQTTS port
    return {"bootstrap_host": host, "bootstrap_port": port}


def _make_emulator(data_dir: str, host: str, ports: dict, command_timeout: float, app_keys: dict,
                   **addresses: Any) -> Any:
    from iotda_emulator import Emulator

    # the HTTP API reads ``emulator.app_keys`` at every request
    return Emulator(data_dir=data_dir, host=host, command_timeout=command_timeout, app_keys=dict(app_keys or {}),
                    **ports, **addresses)


def describe_listeners(emulator: Any) -> List[str]:
    """Human-readable lines saying where a started emulator listens (with the name clients should use)."""
    host = getattr(emulator, "advertise_host", None) or emulator.host
    lines = [
        f"MQTT       mqtt://{host}:{emulator.mqtt_port}",
        f"MQTTS      mqtts://{host}:{emulator.mqtts_port}",
        f"HTTP       http://{host}:{emulator.http_port}",
        f"HTTPS      https://{host}:{emulator.https_port}",
    ]
    if getattr(emulator, "wss_port", None):
        lines.insert(2, f"MQTT/WSS   wss://{host}:{emulator.wss_port}/mqtt")
    try:
        bootstrap = emulator.service("$bootstrap")
        bs_port = bootstrap.port
    except (KeyError, AttributeError):
        bootstrap, bs_port = None, None
    if bs_port:
        lines.append(f"Bootstrap  mqtts://{bootstrap.host}:{bs_port} (IoTDP provisioning; answers "
                     f"{bootstrap.iotda_address()})")
    else:
        lines.append("Bootstrap  not running (see the log)")
    if host != emulator.host:
        lines.append(f"Listening  on {emulator.host}, advertised as {host}")
    lines += [
        f"CA file    {emulator.ca_file}",
        f"Data dir   {emulator.data_dir}",
        f"Console    http://{host}:{emulator.http_port}/console",
    ]
    return lines


#: the cyclic garbage collector's first threshold in a process that runs only the emulator (Python's default: 700)
SERVER_GC_THRESHOLD0 = 50_000


def tune_collector() -> None:
    """Run young collections less often in a process that runs only the emulator (``iotda-emulator start``).

    Each device link holds about 100 objects the collector tracks, so 10,000 devices make ~1 M. Under a burst of
    messages the default young threshold (700) collected every few hundred in-flight objects and promoted them;
    the promoted count then triggered full collections over the whole heap, 0.6 - 1.3 s of stall each at 10,000
    devices, once or twice per 10 s (doc/performance.md, "The emulator"). With 50,000 transient objects
    die young instead. An emulator inside another program (tests) leaves the collector alone: it is process-wide.
    """
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, SERVER_GC_THRESHOLD0), middle, old)


def cmd_start(args: argparse.Namespace) -> int:
    """Start the emulator, print its listeners, run until SIGINT/SIGTERM, stop cleanly."""
    from iotda_emulator.http.auth import parse_app_keys

    try:
        app_keys = parse_app_keys(args.app_key)
    except ValueError as exc:
        print(f"iotda-emulator: {exc}", file=sys.stderr)
        return 2
    data_dir = os.path.abspath(args.data_dir or default_data_dir())
    os.makedirs(data_dir, exist_ok=True)
    ports = _choose_ports(args)
    addresses = dict(_choose_bootstrap(args), advertise_host=args.advertise_host)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    tune_collector()
    emulator = None
    try:
        try:
            emulator = _make_emulator(data_dir, args.host, ports, args.command_timeout, app_keys, **addresses)
            emulator.start()
        except Exception as exc:
            log.debug("start failed", exc_info=True)
            if emulator is not None:
                _safe_stop(emulator)
            if isinstance(exc, ImportError) and _missing_dependency(exc) is not None:
                raise   # main() names the missing dependency and how to install it
            print(f"iotda-emulator: could not start: {exc}", file=sys.stderr)
            return 1
        print("IoTDA emulator running", flush=True)
        for line in describe_listeners(emulator):
            print("  " + line)
        if app_keys:
            print(f"  App keys   {', '.join(sorted(app_keys))} (SDK-HMAC-SHA256 signatures required)")
        print("Press Ctrl-C to stop.", flush=True)
        while not stop.wait(0.5):
            pass
        print("Stopping...", flush=True)
        _safe_stop(emulator)
        print("Stopped.", flush=True)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _safe_stop(emulator: Any) -> None:
    try:
        emulator.stop()
    except Exception:
        log.exception("error while stopping the emulator")


# ---- device registry ------------------------------------------------------------------------------

REGISTRY_FILE = "emulator.sqlite3"   # the Emulator's store file inside its data dir


class OfflineRegistry:
    """The device registry of a data directory, used without broker or listeners.

    The registry rules (default ids, generated secrets, validation) live in ``store.DeviceRegistry``,
    which the running emulator's core uses too; it needs no broker and leaves the online flags of an
    emulator running on the same directory alone. sqlite (WAL) lets this process and a running emulator
    share the file. (A device deleted here while connected to a running emulator keeps its current
    connection until it reconnects, when it is refused.)
    """

    def __init__(self, data_dir: str) -> None:
        from iotda_emulator.store import DeviceRegistry, Store

        os.makedirs(data_dir, exist_ok=True)
        self.store = Store(os.path.join(data_dir, REGISTRY_FILE))
        self._registry = DeviceRegistry(self.store)   # (changed by the emulator-core helper: no PlatformCore hack)

    def create_device(self, device_id: Optional[str] = None, secret: Optional[str] = None, **kwargs: Any) -> dict:
        """Register a device; returns its record (with the secret)."""
        return self._registry.create_device(device_id, secret, **kwargs)

    def get_device(self, device_id: str) -> Optional[dict]:
        """The record of ``device_id`` or None."""
        return self._registry.get_device(device_id)

    def list_devices(self) -> List[dict]:
        """Every registered device, oldest first."""
        return self._registry.list_devices()

    def delete_device(self, device_id: str) -> bool:
        """Remove a device and its shadow; True when it existed."""
        return self._registry.delete_device(device_id)

    def close(self) -> None:
        """Close the sqlite connection."""
        self.store.close()


def open_registry(data_dir: str) -> OfflineRegistry:
    """The registry in ``data_dir`` (see :class:`OfflineRegistry`)."""
    return OfflineRegistry(data_dir)


_SHOWN = ("device_id", "secret", "product_id", "node_id", "gateway_id", "name", "fingerprint")


def _public(record: dict) -> dict:
    return {k: record.get(k) for k in _SHOWN if record.get(k) is not None}


def cmd_device_add(args: argparse.Namespace) -> int:
    """Register a device and print its id and secret."""
    from iotda_emulator.errors import EmulatorError

    registry = open_registry(os.path.abspath(args.data_dir or default_data_dir()))
    try:
        if args.device_id and registry.get_device(args.device_id):
            print(f"iotda-emulator: device {args.device_id} already exists", file=sys.stderr)
            return 1
        try:
            record = registry.create_device(args.device_id, args.secret, product_id=args.product_id,
                                            node_id=args.node_id, fingerprint=args.fingerprint,
                                            gateway_id=args.gateway_id, name=args.name)
        except (ValueError, KeyError, EmulatorError) as exc:
            print(f"iotda-emulator: {exc}", file=sys.stderr)
            return 1
    finally:
        registry.close()
    shown = _public(record)
    if args.json:
        print(json.dumps(shown))
    else:
        for key, value in shown.items():
            print(f"{key}: {value}")
    return 0


def cmd_device_list(args: argparse.Namespace) -> int:
    """Print every registered device (one line each, or a JSON list)."""
    registry = open_registry(os.path.abspath(args.data_dir or default_data_dir()))
    try:
        records = [_public(r) for r in registry.list_devices()]
    finally:
        registry.close()
    if args.json:
        print(json.dumps(records))
        return 0
    if not records:
        print("(no devices)")
    for r in records:
        extra = f" gateway={r['gateway_id']}" if r.get("gateway_id") else ""
        print(f"{r['device_id']} product={r.get('product_id')} node={r.get('node_id')}{extra}")
    return 0


def cmd_device_delete(args: argparse.Namespace) -> int:
    """Delete one device from the registry."""
    registry = open_registry(os.path.abspath(args.data_dir or default_data_dir()))
    try:
        if not registry.get_device(args.device_id):
            print(f"iotda-emulator: no device {args.device_id}", file=sys.stderr)
            return 1
        registry.delete_device(args.device_id)
    finally:
        registry.close()
    print(f"deleted {args.device_id}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``iotda-emulator`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING if args.verbose == 0 else (logging.INFO if args.verbose == 1 else logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except ImportError as exc:
        missing = _missing_dependency(exc)
        if missing is None:
            raise
        print(f"iotda-emulator: missing or too old dependency {missing} ({exc}); install it: "
              f"pip install '{_requirement_of(missing)}'", file=sys.stderr)
        return 1


#: Import names of the emulator's third-party dependencies (iotda_emulator/requirements.txt) -> distributions.
_DEPENDENCIES = {"cryptography": "cryptography", "tornado": "tornado", "paho": "paho-mqtt"}


def _missing_dependency(exc: ImportError) -> Optional[str]:
    """The distribution behind a failed import when it is one of the emulator's dependencies, else None."""
    root = (exc.name or "").split(".")[0]
    return _DEPENDENCIES.get(root)


def _requirement_of(dist: str) -> str:
    """``dist`` with the version range the installed emulator declares for it (just ``dist`` in a checkout)."""
    from importlib import metadata

    try:
        declared = metadata.requires("iotda-emulator") or []
    except metadata.PackageNotFoundError:
        return dist
    for req in declared:
        spec = req.split(";")[0].strip()
        name = re.match(r"[A-Za-z0-9._-]*", spec)
        if name and name.group(0).lower() == dist:
            return spec
    return dist


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
