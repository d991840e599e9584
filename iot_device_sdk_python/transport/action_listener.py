"""Callback for the outcome of one publish (upstream ``transport.action_listener``)."""
from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import Optional


class ActionListener(metaclass=ABCMeta):
    """Told whether a report/respond/publish reached the broker.

    The SDK calls ``on_success(message=...)`` by keyword and ``on_failure(message, e)`` positionally,
    always on the device's dispatcher thread, in the order the outcomes arrive. While more
    publishes are in flight, their ``on_success`` calls are handed to that thread in batches, each at
    most ``Dispatcher.BATCH_DELAY`` (5 ms) late; the outcome of the last message in flight is not delayed.
    """

    @abstractmethod
    def on_success(self, message: str) -> None:
        """The message was acknowledged (PUBACK for QoS 1) or written to the socket (QoS 0)."""

    @abstractmethod
    def on_failure(self, message: str, e: Optional[Exception]) -> None:
        """The message was not delivered: offline without buffer, dropped from a full buffer, closed..."""
