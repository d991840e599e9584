"""One action of a device rule (upstream ``rule.model.actions``)."""
from __future__ import annotations

from typing import Optional


class Action:
    """An action of a rule: ``type`` (e.g. ``DEVICE_CMD``), ``status``, target ``device_id`` and the
    :class:`~iot_device_sdk_python.client.request.command.Command` to run (None when the action has none)."""

    def __init__(self) -> None:
        self.type: str = ""
        self.status: str = ""
        self.device_id: str = ""
        self.command = None  # Optional[Command]

    def to_dict(self) -> dict:
        """The platform's JSON shape of this action."""
        cmd: Optional[dict] = None
        if self.command is not None:
            cmd = {"serviceId": self.command.service_id, "commandName": self.command.command_name,
                   "commandBody": self.command.paras}
        return {"type": self.type, "status": self.status, "deviceId": self.device_id, "command": cmd}

    def __repr__(self) -> str:
        return f"Action({self.to_dict()!r})"
