"""Helper functions of the upstream SDK (``utils.iot_util``); times come from ``protocol.codec``."""
from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any, Optional, Union

from iot_device_sdk_python.protocol import codec, topics

_logger = logging.getLogger(__name__)


def get_gmt_timestamp() -> int:
    """Milliseconds since the epoch."""
    return codec.now_ms()


def get_timestamp() -> str:
    """Current UTC hour as ``YYYYMMDDHH`` (client id field and HMAC key)."""
    return codec.utc_hour_stamp()


def get_event_time() -> str:
    """Current UTC time in IoTDA's event_time format ``yyyyMMdd'T'HHmmss'Z'``."""
    return codec.event_time()


def get_client_id(device_id: Optional[str] = None, psw_sig_type: str = "0", timestamp: str = "") -> str:
    """``{device_id}_0_{psw_sig_type}_{timestamp}``; ValueError when device_id is not a str."""
    if not isinstance(device_id, str):
        raise ValueError("device_id must be a str")
    return f"{device_id}_0_{psw_sig_type}_{timestamp}"


def sha256_hash_from_file(file_path: str) -> str:
    """Hex SHA-256 of a file's content (read in chunks)."""
    digest = hashlib.sha256()
    with open(file_path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _to_bytes(value: Union[str, bytes]) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def sha256_mac(secret: Union[str, bytes], timestamp: Union[str, bytes]) -> str:
    """Lowercase hex HMAC-SHA256 with key = ``timestamp`` and message = ``secret`` (IoTDA password)."""
    return hmac.new(_to_bytes(timestamp), _to_bytes(secret), hashlib.sha256).hexdigest()


def sha256_mac_salt(secret: Union[str, bytes], salt: Union[str, bytes]) -> str:
    """Lowercase hex HMAC-SHA256 with key = ``salt`` and message = ``secret``."""
    return hmac.new(_to_bytes(salt), _to_bytes(secret), hashlib.sha256).hexdigest()


def get_request_id_from_msg(msg: Any) -> str:
    """The text after the last ``request_id=`` in ``msg.topic``; ValueError if there is none."""
    rid = topics.request_id_of(getattr(msg, "topic", "") or "")
    if rid is None:
        raise ValueError("topic has no request_id")
    return rid


def get_device_id_from_msg(msg: Any) -> Optional[str]:
    """The device id segment of an ``$oc/devices/{id}/...`` topic (None otherwise)."""
    return topics.classify(getattr(msg, "topic", "") or "").device_id


def str_is_empty(value: Any) -> bool:
    """True for None or a blank string; ValueError for other types (upstream behaviour)."""
    if value is None:
        return True
    if not isinstance(value, str):
        raise ValueError(f"expected a str, got {type(value).__name__}")
    return value.strip() == ""


def get_node_id_from_device_id(device_id: str) -> Optional[str]:
    """Text after the first ``_`` of a device id (``{product_id}_{node_id}``), or None."""
    if not isinstance(device_id, str) or "_" not in device_id:
        _logger.error("cannot derive a node id from device id %r", device_id)
        return None
    return device_id.split("_", 1)[1]
