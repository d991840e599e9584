"""IoTDA connection helpers that run on MicroPython and on CPython.

The secret-authentication rule (IoTDA "device connection authentication"): client id
``{device_id}_0_{sign_type}_{YYYYMMDDHH}`` (UTC hour), user name = device id, password = lowercase hex of
HMAC-SHA256 with key = that ``YYYYMMDDHH`` string and message = the device secret.
"""
import time
import binascii
import hashlib

try:
    import hmac as _hmac   # CPython, or a board with micropython-lib's hmac installed
except ImportError:
    _hmac = None

try:
    from time import ticks_ms, ticks_diff, ticks_add, sleep_ms
except ImportError:   # CPython: lets the package be imported (and its pure parts tested) there
    def ticks_ms():
        return int(time.monotonic() * 1000)

    def ticks_diff(a, b):
        return a - b

    def ticks_add(a, b):
        return a + b

    def sleep_ms(ms):
        time.sleep(ms / 1000)

_BLOCK = 64   # SHA-256 block size in bytes


def _to_bytes(value) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _hmac_sha256(key: bytes, msg: bytes) -> bytes:
    """HMAC-SHA256 (RFC 2104) on ``hashlib.sha256`` alone, for boards without an ``hmac`` module."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    inner = bytearray(_BLOCK)
    outer = bytearray(_BLOCK)
    for i in range(_BLOCK):
        k = key[i] if i < len(key) else 0
        inner[i] = k ^ 0x36
        outer[i] = k ^ 0x5C
    h = hashlib.sha256(inner)
    h.update(msg)
    digest = h.digest()
    h = hashlib.sha256(outer)
    h.update(digest)
    return h.digest()


def sha256_mac(secret, timestamp) -> str:
    """Lowercase hex HMAC-SHA256 with key = ``timestamp`` and message = ``secret`` (IoTDA's password)."""
    key = _to_bytes(timestamp)
    msg = _to_bytes(secret)
    if _hmac is not None and hasattr(_hmac, "new"):
        digest = _hmac.new(key, msg, hashlib.sha256).digest()
    else:
        digest = _hmac_sha256(key, msg)
    return binascii.hexlify(digest).decode()


def get_timestamp() -> str:
    """The current UTC hour as ``YYYYMMDDHH`` (the board's clock must be set, e.g. with ``ntptime``)."""
    gm = getattr(time, "gmtime", None) or time.localtime   # ports without gmtime keep UTC in localtime
    return "%04d%02d%02d%02d" % tuple(gm()[0:4])


def get_client_id(device_id=None, psw_sig_type=0, timestamp=None) -> str:
    """``{device_id}_0_{psw_sig_type}_{timestamp}``: sign type 0 = no timestamp check, 1 = checked."""
    if not isinstance(device_id, str) or not device_id:
        raise ValueError("device_id must be a non-empty string")
    return device_id + "_0_" + str(psw_sig_type) + "_" + (timestamp or get_timestamp())


def get_password(secret, timestamp=None) -> str:
    """IoTDA's MQTT password for ``secret`` at ``timestamp`` (default: now)."""
    return sha256_mac(secret, timestamp or get_timestamp())


def get_request_id_from_topic(topic) -> str:
    """The text after the last ``request_id=`` of a topic (str or bytes); ValueError when there is none."""
    if not isinstance(topic, str):
        topic = bytes(topic).decode()
    pos = topic.rfind("request_id=")
    if pos < 0:
        raise ValueError("no request_id in topic")
    return topic[pos + 11:]


def get_device_id_from_topic(topic):
    """The level after ``devices`` in ``$oc/devices/{device_id}/...``, or None."""
    if not isinstance(topic, str):
        topic = bytes(topic).decode()
    levels = topic.split("/")
    for i in range(len(levels) - 1):
        if levels[i] == "devices":
            return levels[i + 1]
    return None


def str_is_empty(value) -> bool:
    """True for None, '' or blanks; ValueError for anything that is not a string."""
    if value is None:
        return True
    if not isinstance(value, str):
        raise ValueError("value is not a string")
    return value.strip() == ""
