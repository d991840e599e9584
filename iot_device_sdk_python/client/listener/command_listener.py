"""Receives commands instead of the device's services (upstream ``client.listener.command_listener``)."""
from __future__ import annotations

from typing import Any, Dict

from abc import ABCMeta, abstractmethod


class CommandListener(metaclass=ABCMeta):
    """Set with ``DeviceClient.set_command_listener``; must answer with ``respond_command``."""

    @abstractmethod
    def on_command(self, request_id: str, service_id: str, command_name: str, paras: Dict[str, Any]) -> None:
        """A command for this device (dispatcher thread)."""
