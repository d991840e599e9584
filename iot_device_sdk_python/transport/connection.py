"""The transport interface DeviceClient talks to (upstream ``transport.connection``)."""
from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import Optional, TYPE_CHECKING

if TYPE_CHECKING:
    from iot_device_sdk_python.transport.action_listener import ActionListener
    from iot_device_sdk_python.transport.connect_action_listener import ConnectActionListener
    from iot_device_sdk_python.transport.connect_listener import ConnectListener
    from iot_device_sdk_python.transport.publish_handle import PublishHandle
    from iot_device_sdk_python.transport.raw_message import RawMessage


class Connection(metaclass=ABCMeta):
    """A connection to the platform."""

    @abstractmethod
    def connect(self) -> int:
        """Connect; return 0 on success or an error code."""

    @abstractmethod
    def publish_message(self, message: "RawMessage",
                        listener: Optional["ActionListener"] = None) -> "PublishHandle":
        """Publish (or buffer) a message; return a handle resolved when it is delivered or dropped."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection for good (no reconnect)."""

    @abstractmethod
    def is_connected(self) -> bool:
        """True while the connection is established and usable."""

    @abstractmethod
    def add_connect_listener(self, connect_listener: "ConnectListener") -> None:
        """Add a listener for connection state changes."""

    @abstractmethod
    def set_connect_action_listener(self, connect_action_listener: "ConnectActionListener") -> None:
        """Set the listener told about each connection attempt."""

    @abstractmethod
    def subscribe_topic(self, topic: str, qos: int = 1) -> bool:
        """Subscribe to ``topic`` now (if connected) and after every reconnect; False on an immediate error."""
