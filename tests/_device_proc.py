"""What the device programs that tests run as subprocesses share: their arguments and their ConnectAuthInfo."""
from __future__ import annotations

import argparse

from iot_device_sdk_python.client.connect_auth_info import ConnectAuthInfo


def device_args() -> argparse.ArgumentParser:
    """A parser with ``--host --port --device-id --secret``; callers add their own options."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--host")
    ap.add_argument("--port", type=int)
    ap.add_argument("--device-id")
    ap.add_argument("--secret")
    return ap


def auth_info(args: argparse.Namespace) -> ConnectAuthInfo:
    """A plain-MQTT secret device at ``args.host``:``args.port``."""
    info = ConnectAuthInfo()
    info.id, info.secret, info.server_uri, info.port, info.tls = args.device_id, args.secret, args.host, args.port, False
    return info
