"""How the MQTT connection reaches the server: plain TCP or WebSocket, directly or through a proxy.

Settings live in ``ConnectAuthInfo`` (``transport``, ``ws_path``, ``ws_headers``, ``proxy_*``); this module checks
them and applies them to a paho client. IoTDA serves MQTT over WebSocket only with TLS (``wss://``, port 443 on
the cloud; doc/protocol.md §1.1). Proxies go through PySocks (HTTP CONNECT, SOCKS5, SOCKS4), as paho does.
"""
from __future__ import annotations

import importlib
from typing import Any, Dict, Literal, Optional

import paho.mqtt.client as mqtt

from iot_device_sdk_python.client.connect_auth_info import ConnectAuthInfo

TRANSPORT_TCP = "tcp"
TRANSPORT_WEBSOCKETS = "websockets"
PROXY_HTTP = "http"
PROXY_SOCKS5 = "socks5"
PROXY_SOCKS4 = "socks4"
#: the path IoTDA's WebSocket endpoint is assumed to serve (IoTDA does not publish one; MQTT brokers use /mqtt)
DEFAULT_WS_PATH = "/mqtt"


def check(auth: ConnectAuthInfo) -> None:
    """Raise ``ValueError`` naming the first invalid transport or proxy field of ``auth``."""
    transport = getattr(auth, "transport", TRANSPORT_TCP)
    if transport not in (TRANSPORT_TCP, TRANSPORT_WEBSOCKETS):
        raise ValueError(f"transport: must be {TRANSPORT_TCP!r} or {TRANSPORT_WEBSOCKETS!r}, got {transport!r}")
    path = getattr(auth, "ws_path", DEFAULT_WS_PATH)
    if not isinstance(path, str) or not path.startswith("/") or any(c in path for c in " \r\n"):
        raise ValueError(f"ws_path: must be an absolute URL path such as '/mqtt', got {path!r}")
    headers = getattr(auth, "ws_headers", None)
    if headers is not None and (not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and "\n" not in k + v and "\r" not in k + v
            for k, v in headers.items())):
        raise ValueError("ws_headers: must be a dict of str header names to str values (no line breaks)")
    proxy_type = getattr(auth, "proxy_type", None)
    if proxy_type is None:
        return
    if proxy_type not in (PROXY_HTTP, PROXY_SOCKS5, PROXY_SOCKS4):
        raise ValueError(f"proxy_type: must be None, {PROXY_HTTP!r}, {PROXY_SOCKS5!r} or {PROXY_SOCKS4!r}")
    host = getattr(auth, "proxy_host", None)
    if not isinstance(host, str) or not host.strip():
        raise ValueError("proxy_host: required with proxy_type")
    port = getattr(auth, "proxy_port", None)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"proxy_port: must be an int in 1..65535 with proxy_type, got {port!r}")
    for name in ("proxy_username", "proxy_password"):
        value = getattr(auth, name, None)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name}: must be a str or None")
    if _socks() is None:
        raise ValueError("proxy_type: proxies need PySocks (pip install PySocks)")


def paho_transport(auth: ConnectAuthInfo) -> Literal["tcp", "websockets"]:
    """paho's ``transport`` argument for ``auth``."""
    return "websockets" if getattr(auth, "transport", TRANSPORT_TCP) == TRANSPORT_WEBSOCKETS else "tcp"


def configure(client: mqtt.Client, auth: ConnectAuthInfo) -> None:
    """Apply the WebSocket options and the proxy of ``auth`` to a new paho client."""
    if paho_transport(auth) == TRANSPORT_WEBSOCKETS:
        client.ws_set_options(path=getattr(auth, "ws_path", None) or DEFAULT_WS_PATH,
                              headers=dict(getattr(auth, "ws_headers", None) or {}) or None)
    args = proxy_args(auth)
    if args is not None:
        client.proxy_set(**args)


def proxy_args(auth: ConnectAuthInfo) -> Optional[Dict[str, Any]]:
    """paho ``proxy_set`` keyword arguments for ``auth`` (None: no proxy configured)."""
    proxy_type = getattr(auth, "proxy_type", None)
    if proxy_type is None:
        return None
    socks = _socks()
    if socks is None:  # check() refuses this first
        raise ValueError("proxy_type: proxies need PySocks (pip install PySocks)")
    kinds = {PROXY_HTTP: socks.HTTP, PROXY_SOCKS5: socks.SOCKS5, PROXY_SOCKS4: socks.SOCKS4}
    args: Dict[str, Any] = {"proxy_type": kinds[proxy_type], "proxy_addr": auth.proxy_host,
                            "proxy_port": auth.proxy_port, "proxy_rdns": True}
    if getattr(auth, "proxy_username", None) is not None:
        args["proxy_username"] = auth.proxy_username
    if getattr(auth, "proxy_password", None) is not None:
        args["proxy_password"] = auth.proxy_password
    return args


def describe(auth: ConnectAuthInfo) -> str:
    """A log-safe summary (no credentials): e.g. ``websockets /mqtt via http proxy host:port``."""
    text: str = paho_transport(auth)
    if text == TRANSPORT_WEBSOCKETS:
        text += f" {getattr(auth, 'ws_path', None) or DEFAULT_WS_PATH}"
    proxy_type = getattr(auth, "proxy_type", None)
    if proxy_type is not None:
        text += f" via {proxy_type} proxy {auth.proxy_host}:{auth.proxy_port}"
    return text


def _socks() -> Any:
    try:  # PySocks: an optional dependency, needed only for proxies
        return importlib.import_module("socks")
    except ImportError:
        return None
