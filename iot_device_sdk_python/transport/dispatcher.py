"""One thread per device that runs every listener and service callback in arrival order.

Why: callbacks must never run on the paho network thread, so a slow callback (a download, a sleep)
cannot stall keep-alive or publishing. Exceptions from a callback are logged once and the thread lives on.
"""
from __future__ import annotations

import collections
import logging
import threading
from typing import Any, Callable, Deque, Optional, Tuple

_logger = logging.getLogger(__name__)

_STOP = object()


class Dispatcher:
    """A FIFO of callables run by one daemon thread, started on first use."""

    def __init__(self, name: str = "iot-dispatcher"):
        self._name = name
        self._queue: Deque[Tuple[Any, tuple, dict]] = collections.deque()
        self._cond = threading.Condition()
        self._thread: Optional[threading.Thread] = None
        self._stopped = False

    @property
    def name(self) -> str:
        return self._name

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
        """Queue ``fn(*args, **kwargs)``; return False (and drop it) when the dispatcher is stopped."""
        with self._cond:
            if self._stopped:
                _logger.debug("dispatcher %s stopped; dropping %r", self._name, fn)
                return False
            self._queue.append((fn, args, kwargs))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify()
        return True

    def in_dispatcher_thread(self) -> bool:
        """True when called from this dispatcher's own thread."""
        return self._thread is not None and threading.current_thread() is self._thread

    def pending(self) -> int:
        """Number of queued (not yet started) calls."""
        with self._cond:
            return len(self._queue)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until every call queued so far has run (test helper). False on timeout."""
        if self.in_dispatcher_thread():
            return False
        done = threading.Event()
        if not self.submit(done.set):
            return True
        return done.wait(timeout)

    def stop(self, timeout: float = 5.0, drain: bool = True) -> None:
        """Stop the thread; with ``drain`` the calls already queued still run first.

        Never joins when called from the dispatcher thread itself (a callback calling destroy()).
        """
        with self._cond:
            if self._stopped:
                thread = self._thread
            else:
                self._stopped = True
                if not drain:
                    self._queue.clear()
                self._queue.append((_STOP, (), {}))
                self._cond.notify()
                thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                _logger.warning("dispatcher %s: a callback is still running after %.1f s", self._name, timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                fn, args, kwargs = self._queue.popleft()
            if fn is _STOP:
                return
            try:
                fn(*args, **kwargs)
            except Exception:
                _logger.exception("callback %s raised; the dispatcher keeps running",
                                  getattr(fn, "__qualname__", repr(fn)))
