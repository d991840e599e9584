"""A downlink message as received (upstream ``client.request.raw_device_message``)."""
from __future__ import annotations

import json
from typing import Optional, Union

from iot_device_sdk_python.client.request.device_message import DeviceMessage

_SYSTEM_KEYS = {"name", "id", "content", "object_device_id"}


class RawDeviceMessage:
    """The raw ``payload`` bytes of a ``messages/down`` message."""

    def __init__(self, payload: Union[bytes, str]) -> None:
        self._payload = payload.encode("utf-8") if isinstance(payload, str) else payload

    @property
    def payload(self) -> bytes:
        return self._payload

    @payload.setter
    def payload(self, value: Union[bytes, str]) -> None:
        self._payload = value.encode("utf-8") if isinstance(value, str) else value

    def to_utf8_string(self) -> str:
        """The payload decoded as UTF-8 (raises ``UnicodeDecodeError`` for binary payloads)."""
        return bytes(self._payload).decode("utf-8")

    def to_device_message(self) -> Optional[DeviceMessage]:
        """A :class:`DeviceMessage` when the payload is in the system format, else None (never raises).

        System format: a UTF-8 JSON object whose keys are all among name/id/content/object_device_id
        and whose values are strings or null.
        """
        try:
            obj = json.loads(self.to_utf8_string())
        except (UnicodeDecodeError, ValueError, TypeError, RecursionError):
            return None
        if not isinstance(obj, dict) or not set(obj) <= _SYSTEM_KEYS:
            return None
        if not all(v is None or isinstance(v, str) for v in obj.values()):
            return None
        msg = DeviceMessage()
        msg.convert_from_dict(obj)
        return msg
