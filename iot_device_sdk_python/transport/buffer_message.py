"""A message waiting in the offline buffer (upstream ``transport.buffer_message``)."""
from __future__ import annotations

from typing import Optional, TYPE_CHECKING

if TYPE_CHECKING:
    from iot_device_sdk_python.transport.action_listener import ActionListener
    from iot_device_sdk_python.transport.publish_handle import PublishHandle
    from iot_device_sdk_python.transport.raw_message import RawMessage


class BufferMessage:
    """A :class:`RawMessage` with the listener (and handle) to tell when it is finally sent or dropped."""

    def __init__(self, raw_message: "RawMessage", listener: Optional["ActionListener"],
                 handle: Optional["PublishHandle"] = None) -> None:
        self._raw_message = raw_message
        self._listener = listener
        self._handle = handle

    @property
    def raw_message(self) -> "RawMessage":
        return self._raw_message

    @raw_message.setter
    def raw_message(self, value: "RawMessage") -> None:
        self._raw_message = value

    @property
    def listener(self) -> Optional["ActionListener"]:
        return self._listener

    @listener.setter
    def listener(self, value: Optional["ActionListener"]) -> None:
        self._listener = value

    @property
    def handle(self) -> Optional["PublishHandle"]:
        """The :class:`PublishHandle` returned to the caller of the publish (beyond upstream)."""
        return self._handle

    @handle.setter
    def handle(self, value: Optional["PublishHandle"]) -> None:
        self._handle = value
