"""``TimeSyncListener``: receives the platform's time-sync response."""
from __future__ import annotations

from abc import ABCMeta, abstractmethod


class TimeSyncListener(metaclass=ABCMeta):
    """Callback of :class:`TimeSyncService`, run on the device's dispatcher thread."""

    @abstractmethod
    def on_time_sync_response(self, device_send_time: int, server_recv_time: int, server_send_time: int) -> None:
        """Times in ms since the epoch. The accurate device time is
        ``(server_recv_time + server_send_time + device_recv_time - device_send_time) / 2``
        (see ``TimeSyncService.compute_time``)."""
