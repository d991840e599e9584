"""Connection state callbacks (upstream ``transport.connect_listener``)."""
from __future__ import annotations

from abc import ABCMeta, abstractmethod


class ConnectListener(metaclass=ABCMeta):
    """Told when the MQTT connection is established and when it is lost (not when the user closes it)."""

    @abstractmethod
    def connection_lost(self, cause: str) -> None:
        """The connection dropped unexpectedly; ``cause`` is a short human-readable reason."""

    @abstractmethod
    def connect_complete(self, reconnect: bool, server_uri: str) -> None:
        """A connection was accepted; ``reconnect`` is True when it replaces a lost one."""
