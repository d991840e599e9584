"""One action of a device rule (upstream ``rule.model.actions``)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Optional

if TYPE_CHECKING:
    from iot_device_sdk_python.client.request.command import Command


#: An action's ``status`` as the platform sends it (a rule's own status is active/inactive instead).
ACTION_ENABLE = "enable"
ACTION_DISABLE = "disable"


class Action:
    """An action of a rule: ``type`` (e.g. ``DEVICE_CMD``), ``status`` (``enable``/``disable``), target
    ``device_id`` and the :class:`~iot_device_sdk_python.client.request.command.Command` to run (None when
    the action has none)."""

    def __init__(self) -> None:
        self.type: str = ""
        self.status: str = ""
        self.device_id: str = ""
        self.command: Optional[Command] = None

    def is_enabled(self) -> bool:
        """True when the action may run: status ``enable``, or no status at all (older rules omit it).

        ``disable`` and any other value keep it from running, as Huawei's C SDK does."""
        return not self.status or self.status == ACTION_ENABLE

    def to_dict(self) -> Dict[str, Any]:
        """The platform's JSON shape of this action."""
        cmd: Optional[Dict[str, Any]] = None
        if self.command is not None:
            cmd = {"serviceId": self.command.service_id, "commandName": self.command.command_name,
                   "commandBody": self.command.paras}
        return {"type": self.type, "status": self.status, "deviceId": self.device_id, "command": cmd}

    def __repr__(self) -> str:
        return f"Action({self.to_dict()!r})"
