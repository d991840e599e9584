"""``ScanSubDeviceNotify``: a ``start_scan`` request (IoTEdge only; IoTDA does not send it)."""
from __future__ import annotations

from typing import Any, Dict, Optional

from iot_device_sdk_python.gateway.requests._model import as_text, rw
from iot_device_sdk_python.utils._props import Field


class ScanSubDeviceNotify:
    """Where the gateway should look for new sub-devices: ``protocol``, ``channel``, ``parent``, ``settings``."""

    protocol: Field[str] = rw("protocol")
    channel: Field[str] = rw("channel")
    parent: Field[str] = rw("parent")
    settings: Field[Optional[Dict[str, Any]]] = rw("settings")

    def __init__(self, protocol: str = "", channel: str = "", parent: str = "",
                 settings: Optional[Dict[str, Any]] = None) -> None:
        self._protocol = protocol
        self._channel = channel
        self._parent = parent
        self._settings = settings

    def to_dict(self) -> Dict[str, Any]:
        return {"protocol": self._protocol, "channel": self._channel, "parent": self._parent,
                "settings": self._settings}

    def convert_from_dict(self, json_dict: Optional[Dict[str, Any]]) -> "ScanSubDeviceNotify":
        if isinstance(json_dict, dict):
            for f in ("protocol", "channel", "parent"):
                if f in json_dict:
                    setattr(self, f, as_text(json_dict[f], getattr(self, f)))
            if "settings" in json_dict:
                self._settings = json_dict["settings"]
        return self
