"""Device provisioning (bootstrap) through Huawei IoTDP (``doc/protocol.md`` §5, ``doc/migration.md``).

:func:`bootstrap` connects to the provisioning server named in ``ConnectAuthInfo`` (``server_uri``/``port``,
CA ``bs_cert_path``), publishes ``bs_message`` on ``bootstrap/up`` and waits (bounded, no polling) for the
answer on ``bootstrap/down``. It returns a NEW ``ConnectAuthInfo`` for the IoTDA connection and never
touches the caller's object.

Modes (``bs_mode``):

* 1 — standard: the device is pre-registered in IoTDP (secret or X.509), client id
  ``{device_id}_0_{check_timestamp}_{YYYYMMDDHH}``;
* 2 — registration group ``scope_id``: with a group secret the device secret is derived
  (HMAC-SHA256 keyed by the device id over the base64-decoded group secret) and the client id is
  ``{device_id}_0_{scope_id}_{check_timestamp}_{YYYYMMDDHH}``; with X.509 the client id is
  ``{device_id}_0_{scope_id}`` and there is no password.

Differences from upstream, on purpose: the answer is validated (host name or IP, port 1..65535, nothing
else; a string secret) and anything else is refused as a tampered answer; TLS verifies the chain and the
host name; the server info is cached per device in a per-user cache directory (``bs_cache_path`` to choose
another file; ``bs_force`` or :func:`clear_bootstrap_cache` to provision again), written atomically with
mode 0600; the cache is tied to the provisioning server and the device id. ``DeviceClient.connect()`` drops
the cache and provisions again once when IoTDA refuses the cached credentials (CONNACK 4 or 5).
"""
from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import logging
import os
import re
import ssl
import sys
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Dict, Optional, TYPE_CHECKING, Tuple, Union

from iot_device_sdk_python.protocol import codec, topics
from iot_device_sdk_python.errors import IotDeviceError
from iot_device_sdk_python.utils import iot_util

if TYPE_CHECKING:
    from iot_device_sdk_python.client.connect_auth_info import ConnectAuthInfo
    from iot_device_sdk_python.client.mqtt_connect_conf import MqttConnectConf

_logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
CACHE_FORMAT = 1

# error codes of BootstrapError raised by the SDK itself (the platform's are numeric strings like "100414")
ERR_CONFIG = "INVALID_CONFIG"
ERR_CONNECT = "CONNECT_FAILED"
ERR_REFUSED = "CONNECT_REFUSED"
ERR_LOST = "CONNECTION_LOST"
ERR_TIMEOUT = "TIMEOUT"
ERR_ANSWER = "INVALID_ANSWER"

_HOST_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_SECRET_RE = re.compile(r"^[\x21-\x7e]{1,256}$")


class BootstrapError(IotDeviceError):
    """Provisioning failed. ``code`` is the platform's ``errorCode`` (e.g. ``"100414"``) or one of the
    SDK's codes (``TIMEOUT``, ``CONNECT_FAILED``, ``CONNECT_REFUSED``, ``CONNECTION_LOST``,
    ``INVALID_ANSWER``, ``INVALID_CONFIG``); ``message`` says why (never contains secrets)."""

    def __init__(self, code: Any, message: str) -> None:
        super().__init__(f"bootstrap failed ({code}): {message}")
        self.code = code
        self.message = message


@dataclass
class BootstrapResult:
    """What :func:`bootstrap_with_result` learned."""

    connect_auth_info: "ConnectAuthInfo"  #: new ConnectAuthInfo for IoTDA (bs_mode 0)
    init_config: Optional[str]      #: the policy's ``initConfig`` (None when absent or from the cache)
    from_cache: bool                #: True when no provisioning round trip was made


# ---- validation of the platform's answer -----------------------------------------------------------

def parse_address(address: Any) -> Tuple[str, int]:
    """``"host:port"`` (or ``"[v6]:port"``) -> ``(host, port)``.

    Accepts only a DNS host name or an IP literal and a port 1..65535; a scheme, path, user info, query,
    whitespace or anything else raises ``ValueError`` (a tampered or broken answer).
    """
    if not isinstance(address, str) or not address or len(address) > 300:
        raise ValueError("address must be a non-empty string 'host:port'")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) > 0x7e for c in address):
        raise ValueError("address contains whitespace or non-ASCII characters")
    if any(mark in address for mark in ("://", "/", "\\", "@", "?", "#", "%")):
        raise ValueError("address must be 'host:port' without scheme, path or user info")
    if address.startswith("["):
        end = address.find("]")
        if end < 0 or address[end + 1:end + 2] != ":":
            raise ValueError("bracketed IPv6 address must be '[addr]:port'")
        host, port_text = address[1:end], address[end + 2:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError("invalid IPv6 address") from None
    else:
        host, sep, port_text = address.rpartition(":")
        if not sep or not host:
            raise ValueError("address must be 'host:port'")
        if not _valid_host(host):
            raise ValueError("invalid host name")
    if not port_text.isdigit() or len(port_text) > 5 or port_text.startswith("0"):
        raise ValueError("port must be an integer 1..65535")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError("port must be an integer 1..65535")
    return host, port


def _valid_host(host: str) -> bool:
    if re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
            return True
        except ValueError:
            return False
    if len(host) > 253:
        return False
    labels = host.split(".")
    return all(_HOST_LABEL.match(label) for label in labels) and not labels[-1].isdigit()


def _check_secret(secret: Any) -> str:
    if not isinstance(secret, str) or not _SECRET_RE.match(secret):
        raise ValueError("deviceSecret must be a string of 1..256 printable characters")
    return secret


# ---- credentials -----------------------------------------------------------------------------------

def derive_group_secret(device_id: str, group_secret: Union[str, bytes]) -> str:
    """The device secret of a registration-group member: lowercase hex HMAC-SHA256 with key = device id
    and message = the base64-decoded group secret. Raises ``BootstrapError(INVALID_CONFIG)`` on bad base64."""
    try:
        raw = base64.b64decode(group_secret, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise BootstrapError(ERR_CONFIG, "the registration-group secret is not valid base64") from None
    return iot_util.sha256_mac_salt(raw, device_id)


def _is_x509(info: "ConnectAuthInfo") -> bool:
    return getattr(info, "auth_type", 0) == getattr(info, "X509_AUTH", 1)


def _credentials(info: "ConnectAuthInfo", timestamp: str) -> Tuple[str, Optional[str], Union[str, bytes, None]]:
    """``(client_id, password, secret_for_iotda)`` for the bootstrap connection."""
    device_id = info.id
    if not device_id:
        raise BootstrapError(ERR_CONFIG, "id: a device id is required")
    sign = str(getattr(info, "check_timestamp", "1") or "1")
    mode = info.bs_mode
    if mode == 2:
        scope = getattr(info, "scope_id", None)
        if not isinstance(scope, str) or not scope:
            raise BootstrapError(ERR_CONFIG, "bs_mode 2 needs scope_id")
        if _is_x509(info):
            return f"{device_id}_0_{scope}", None, None
        if not info.secret:
            raise BootstrapError(ERR_CONFIG, "bs_mode 2 with secret auth needs the registration-group secret")
        derived = derive_group_secret(device_id, info.secret)
        return f"{device_id}_0_{scope}_{sign}_{timestamp}", iot_util.sha256_mac(derived, timestamp), derived
    client_id = iot_util.get_client_id(device_id, sign, timestamp)
    if _is_x509(info):
        return client_id, None, None
    if not info.secret:
        raise BootstrapError(ERR_CONFIG, "secret auth needs a secret")
    return client_id, iot_util.sha256_mac(info.secret, timestamp), info.secret


def _tls_context(info: "ConnectAuthInfo") -> ssl.SSLContext:
    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=getattr(info, "bs_cert_path", None) or None)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if _is_x509(info):
            if not info.cert_path:
                raise BootstrapError(ERR_CONFIG, "cert_path: required for X.509 authentication")
            ctx.load_cert_chain(info.cert_path, info.key_path, password=getattr(info, "key_password", None))
    except (OSError, ssl.SSLError, TypeError) as exc:
        raise BootstrapError(ERR_CONFIG, f"TLS set-up failed: {exc}") from None
    return ctx


def _use_tls(info: "ConnectAuthInfo") -> bool:
    fn = getattr(info, "use_tls", None)
    if callable(fn):
        return bool(fn())
    tls = getattr(info, "tls", None)
    return bool(tls) if tls is not None else info.port != 1883


# ---- cache -----------------------------------------------------------------------------------------

def default_cache_dir() -> str:
    """Per-user cache directory (``$XDG_CACHE_HOME`` or ``~/.cache``; ``%LOCALAPPDATA%`` on Windows)."""
    if sys.platform.startswith("win"):
        base = os.environ.get("LOCALAPPDATA") or os.path.join(os.path.expanduser("~"), "AppData", "Local")
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "iot_device_sdk_python")


def cache_path(connect_auth_info: "ConnectAuthInfo") -> str:
    """Where the server info of this device is cached: ``bs_cache_path`` if set, else
    ``{default_cache_dir()}/{device_id}.json``."""
    configured: Optional[str] = getattr(connect_auth_info, "bs_cache_path", None)
    if configured:
        return os.path.abspath(os.path.expanduser(configured))
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", str(connect_auth_info.id or "device"))
    return os.path.join(default_cache_dir(), f"{safe}.json")


def clear_bootstrap_cache(connect_auth_info: "ConnectAuthInfo") -> bool:
    """Delete the cached server info so the next connect provisions again. True when a file was removed."""
    path = cache_path(connect_auth_info)
    try:
        os.remove(path)
        return True
    except FileNotFoundError:
        return False


def _bs_server(info: "ConnectAuthInfo") -> str:
    return f"{info.server_uri}:{info.port}"


def _load_cache(info: "ConnectAuthInfo") -> Optional[Dict[str, Any]]:
    path = cache_path(info)
    try:
        with open(path, "r", encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        _logger.warning("bootstrap cache %s unreadable (%s); provisioning again", path, type(exc).__name__)
        return None
    try:
        if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
            raise ValueError("unknown format")
        if data.get("device_id") != info.id or data.get("bootstrap_server") != _bs_server(info) \
                or data.get("bs_mode") != info.bs_mode or data.get("scope_id") != getattr(info, "scope_id", None):
            _logger.info("bootstrap cache %s belongs to another device or server; provisioning again", path)
            return None
        host, port = parse_address(data.get("address"))
        secret = data.get("secret")
        if secret is not None:
            _check_secret(secret)
    except ValueError as exc:
        _logger.warning("bootstrap cache %s invalid (%s); provisioning again", path, exc)
        return None
    return {"host": host, "port": port, "secret": secret}


def _write_cache(info: "ConnectAuthInfo", host: str, port: int, device_secret: Optional[str]) -> None:
    path = cache_path(info)
    directory = os.path.dirname(path)
    data = {"format": CACHE_FORMAT, "device_id": info.id, "bootstrap_server": _bs_server(info),
            "bs_mode": info.bs_mode, "scope_id": getattr(info, "scope_id", None),
            "address": f"[{host}]:{port}" if ":" in host else f"{host}:{port}", "secret": device_secret}
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)  # atomic: readers see the old or the new file, never half of one
    except OSError as exc:
        _logger.warning("bootstrap cache %s not written: %s", path, exc)
        try:
            os.remove(tmp)
        except OSError:
            pass


# ---- the provisioning round trip ---------------------------------------------------------------------

class _Session:
    """One short MQTT connection to the provisioning server (paho-mqtt 2.x, its own network thread)."""

    def __init__(self, info: "ConnectAuthInfo", keepalive: int, timeout: float) -> None:
        if not info.id or not info.server_uri or not info.port:  # checked by bootstrap_with_result already
            raise BootstrapError(ERR_CONFIG, "id, server_uri and port of the provisioning server are required")
        self.info = info
        self.device_id: str = info.id
        self.host: str = info.server_uri
        self.port: int = info.port
        self.keepalive = keepalive
        self.timeout = timeout
        self.done = threading.Event()
        self.answer: Optional[bytes] = None
        self.error: Optional[BootstrapError] = None
        self._lock = threading.Lock()

    def _finish(self, answer: Optional[bytes] = None, error: Optional[BootstrapError] = None) -> None:
        with self._lock:
            if self.done.is_set():
                return
            self.answer, self.error = answer, error
            self.done.set()

    def run(self) -> bytes:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        info = self.info
        timestamp = iot_util.get_timestamp()
        client_id, password, _ = _credentials(info, timestamp)
        client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id,
                             clean_session=True, protocol=mqtt.MQTTv311)
        client.username_pw_set(info.id, password)
        if _use_tls(info):
            client.tls_set_context(_tls_context(info))
        client.connect_timeout = max(1.0, min(self.timeout, 10.0))
        down, up = topics.bootstrap_down(self.device_id), topics.bootstrap_up(self.device_id)
        payload = _request_payload(getattr(info, "bs_message", None))

        def on_connect(c: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any = None) -> None:
            if reason_code.is_failure:
                self._finish(error=BootstrapError(ERR_REFUSED, f"provisioning server refused the connection: "
                                                               f"{reason_code}"))
                return
            c.subscribe(down, qos=1)

        def on_subscribe(c: mqtt.Client, userdata: Any, mid: int, reason_codes: Any, properties: Any = None) -> None:
            if any(rc.is_failure for rc in reason_codes):
                self._finish(error=BootstrapError(ERR_REFUSED, "subscription to bootstrap/down refused"))
                return
            c.publish(up, payload, qos=1)

        def on_message(c: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
            if msg.topic == down:
                self._finish(answer=bytes(msg.payload))

        def on_disconnect(c: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                          properties: Any = None) -> None:
            self._finish(error=BootstrapError(ERR_LOST, f"provisioning connection closed: {reason_code}"))

        client.on_connect, client.on_subscribe = on_connect, on_subscribe
        client.on_message, client.on_disconnect = on_message, on_disconnect
        try:
            try:
                client.connect(self.host, int(self.port), self.keepalive)
            except (OSError, ssl.SSLError, ValueError) as exc:
                raise BootstrapError(ERR_CONNECT, f"cannot connect to {info.server_uri}:{info.port}: "
                                                  f"{type(exc).__name__}: {exc}") from None
            client.loop_start()
            if not self.done.wait(self.timeout):
                raise BootstrapError(ERR_TIMEOUT, f"no bootstrap answer within {self.timeout:g} s")
            if self.error is not None:
                raise self.error
            return self.answer or b""
        finally:
            try:
                client.disconnect()
            except Exception:  # already closed
                pass
            client.loop_stop()


def _request_payload(message: Any) -> bytes:
    if message is None or message == "":
        return b""
    if isinstance(message, (bytes, bytearray)):
        return bytes(message)
    if isinstance(message, (dict, list)):
        return codec.dumps_bytes(message)
    return str(message).encode("utf-8")


def _parse_answer(raw: bytes) -> Tuple[str, int, Optional[str], Optional[str]]:
    try:
        obj = codec.loads_object(raw)
    except ValueError as exc:
        raise BootstrapError(ERR_ANSWER, f"bootstrap answer is not a JSON object: {exc}") from None
    if obj.get("errorCode") not in (None, ""):
        msg = obj.get("errorMsg")
        raise BootstrapError(str(obj.get("errorCode"))[:64], str(msg)[:300] if msg is not None else "")
    try:
        host, port = parse_address(obj.get("address"))
        secret = obj.get("deviceSecret")
        if secret is not None:
            secret = _check_secret(secret)
    except ValueError as exc:
        raise BootstrapError(ERR_ANSWER, f"bootstrap answer refused as tampered or broken: {exc}") from None
    init_config = obj.get("initConfig")
    if init_config is not None and not isinstance(init_config, str):
        init_config = codec.dumps(init_config)
    return host, port, secret, init_config


def bootstrap_with_result(connect_auth_info: "ConnectAuthInfo", mqtt_connect_conf: Optional["MqttConnectConf"] = None, timeout: Optional[float] = None) -> BootstrapResult:
    """Like :func:`bootstrap`, also returning the policy's ``initConfig`` and whether the cache was used."""
    info = connect_auth_info
    if info.bs_mode not in (1, 2):
        raise BootstrapError(ERR_CONFIG, f"bs_mode {info.bs_mode!r} is not a bootstrap mode")
    if not info.id or not info.server_uri or not info.port:
        raise BootstrapError(ERR_CONFIG, "id, server_uri and port of the provisioning server are required")
    # the IoTDA secret when the platform does not send one: the own secret, or the derived group secret
    _, _, own_secret = _credentials(info, "0000000000")
    if not getattr(info, "bs_force", False):
        cached = _load_cache(info)
        if cached is not None:
            _logger.info("bootstrap of %s: using cached IoTDA address %s:%s", info.id, cached["host"],
                         cached["port"])
            return BootstrapResult(_result_info(info, cached["host"], cached["port"],
                                                cached["secret"] or own_secret), None, True)
    if timeout is None:
        timeout = getattr(info, "bs_timeout", None) or DEFAULT_TIMEOUT
    keepalive = getattr(mqtt_connect_conf, "keep_alive_time", 120) if mqtt_connect_conf is not None else 120
    raw = _Session(info, int(keepalive or 120), float(timeout)).run()
    host, port, device_secret, init_config = _parse_answer(raw)
    _write_cache(info, host, port, device_secret)
    _logger.info("bootstrap of %s: provisioned to %s:%s%s", info.id, host, port,
                 " with a new device secret" if device_secret else "")
    return BootstrapResult(_result_info(info, host, port, device_secret or own_secret), init_config, False)


def bootstrap(connect_auth_info: "ConnectAuthInfo", mqtt_connect_conf: Optional["MqttConnectConf"] = None, timeout: Optional[float] = None) -> "ConnectAuthInfo":
    """Provision the device and return a NEW ``ConnectAuthInfo`` for IoTDA.

    The result has ``server_uri``/``port`` from the answer (or the cache), ``secret`` = the ``deviceSecret``
    the platform sent, else the derived group secret (bs_mode 2), else the own secret; ``iot_cert_path``
    (the IoTDA CA) and every other field copied; ``bs_mode`` 0. Raises :class:`BootstrapError`.
    """
    return bootstrap_with_result(connect_auth_info, mqtt_connect_conf, timeout).connect_auth_info


def _result_info(info: "ConnectAuthInfo", host: str, port: int, secret: Union[str, bytes, None]) -> "ConnectAuthInfo":
    copier = getattr(info, "copy", None)
    new: ConnectAuthInfo
    if callable(copier):
        new = copier()
    else:
        import copy
        new = copy.copy(info)
    new.server_uri = host
    new.port = port
    new.secret = secret
    new.bs_mode = 0
    return new


class BootstrapClient:
    """Object form of :func:`bootstrap` for one device (kept small; the function is the main API)."""

    def __init__(self, connect_auth_info: "ConnectAuthInfo", mqtt_connect_conf: Optional["MqttConnectConf"] = None) -> None:
        self._info = connect_auth_info
        self._conf = mqtt_connect_conf

    def bootstrap(self, timeout: Optional[float] = None) -> "ConnectAuthInfo":
        """Provision (or use the cache); returns the new ``ConnectAuthInfo``."""
        return bootstrap(self._info, self._conf, timeout)

    def clear_cache(self) -> bool:
        """Forget the cached server info (the next bootstrap provisions again)."""
        return clear_bootstrap_cache(self._info)
