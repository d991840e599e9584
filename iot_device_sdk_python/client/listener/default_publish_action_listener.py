"""An ActionListener that prints the outcome (upstream ``client.listener.default_publish_action_listener``)."""
from __future__ import annotations

from typing import Optional

from iot_device_sdk_python.transport.action_listener import ActionListener


class DefaultPublishActionListener(ActionListener):
    """Prints success and failure messages (kept for the upstream demos)."""

    def on_success(self, message: str) -> None:
        print(message)

    def on_failure(self, message: str, e: Optional[Exception]) -> None:
        print(message if e is None else f"{message}: {e}")
