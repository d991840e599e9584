"""The reconnect delay policy: exponential backoff with jitter over *consecutive failed attempts*.

Why a connection that succeeded resets the count: a broker that restarts every few seconds must not push a
device's reconnects toward the cap. Only attempts that failed one after another make the next wait longer;
the first retry after a link that had been up always comes after about ``min_backoff`` (plus jitter).
"""
from __future__ import annotations

import random
import threading
from typing import Callable, List, Optional, Tuple

#: the first window is ``[min, min * FIRST_SPREAD]``: enough jitter that devices cut off together do not all
#: come back at the same instant, still "within about a second" with the default ``min_backoff`` of 1000 ms
FIRST_SPREAD = 1.5


class ReconnectBackoff:
    """Delays (seconds) between reconnect attempts.

    After ``n`` consecutive failed attempts the next delay is uniform in ``[min, min(max, min * 1.5 * 2**n)]``
    (milliseconds in, seconds out); :meth:`succeeded` sets ``n`` back to 0. With the defaults (1000/30000 ms):
    1-1.5 s, 1-3 s, 1-6 s, 1-12 s, 1-24 s, then 1-30 s. Thread-safe. ``history`` keeps the last delays
    handed out (diagnostics and tests).
    """

    HISTORY = 64

    def __init__(self, min_backoff_ms: Optional[float], max_backoff_ms: Optional[float],
                 rand: Optional[Callable[[float, float], float]] = None) -> None:
        self._lo = max(1.0, float(min_backoff_ms or 1000))
        self._hi = max(self._lo, float(max_backoff_ms or self._lo))
        self._uniform = rand or random.uniform
        self._lock = threading.Lock()
        self._failures = 0
        self.history: List[float] = []

    @property
    def consecutive_failures(self) -> int:
        """Failed attempts since the last successful connection."""
        return self._failures

    def window(self) -> Tuple[float, float]:
        """(low, high) of the next delay, in seconds."""
        with self._lock:
            return self._window_locked()

    def _window_locked(self) -> Tuple[float, float]:
        cap = min(self._hi, self._lo * FIRST_SPREAD * (2 ** min(self._failures, 30)))
        return self._lo / 1000.0, cap / 1000.0

    def next_delay(self) -> float:
        """The wait before the next attempt, in seconds (does not change the failure count)."""
        with self._lock:
            lo, hi = self._window_locked()
            delay = self._uniform(lo, hi)
            self.history.append(delay)
            del self.history[:-self.HISTORY]
        return delay

    def failed(self) -> None:
        """An attempt failed: the next window doubles (up to ``max_backoff``)."""
        with self._lock:
            self._failures += 1

    def succeeded(self) -> None:
        """A connection was established: the next loss is retried after about ``min_backoff`` again."""
        with self._lock:
            self._failures = 0
