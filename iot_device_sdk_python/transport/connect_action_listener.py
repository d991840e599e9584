"""Outcome of each connection attempt (upstream ``transport.connect_action_listener``)."""
from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import Optional


class ConnectActionListener(metaclass=ABCMeta):
    """Called after every connection attempt, by keyword: ``on_success(token=0)`` or
    ``on_failure(token=<code>, err=<exception or None>)`` (codes: see ``MqttConnection.connect``)."""

    @abstractmethod
    def on_success(self, token: int) -> None:
        """The attempt succeeded (token is 0)."""

    @abstractmethod
    def on_failure(self, token: int, err: Optional[Exception]) -> None:
        """The attempt failed with result code ``token``."""
