"""``BroadcastListener``: receives the platform's broadcast messages (``$oc/broadcast/...``)."""
from __future__ import annotations

from abc import ABCMeta, abstractmethod


class BroadcastListener(metaclass=ABCMeta):
    """Callback of :meth:`DeviceClient.subscribe_broadcast`, run on the device's dispatcher thread."""

    @abstractmethod
    def on_broadcast_message(self, topic: str, payload: bytes) -> None:
        """One broadcast: its full topic and the raw bytes the application sent (IoTDA base64-decodes them)."""
