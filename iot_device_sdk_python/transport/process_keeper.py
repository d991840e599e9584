"""Keeps the Python process alive while a device is connected (upstream behaviour).

Why: every SDK thread is a daemon thread (so that ``destroy()`` is never needed just to let a process end),
but upstream's network thread was not, and programs written for upstream return from ``main`` right after
``connect()`` and expect to go on receiving commands. One non-daemon thread for the whole process, which
only waits while at least one device holds it, does the same, until the last ``close()``/``destroy()``. Opt out per device with
``ConnectAuthInfo.keep_process_alive = False``, or for the whole process with :func:`release_all` (test
runners, applications that manage their own lifetime).
"""
from __future__ import annotations

import threading

THREAD_NAME = "iot-keep-process"

_cond = threading.Condition()
_holders: "set[ProcessKeeper]" = set()
_thread: "threading.Thread | None" = None


def _wait_for_last_release() -> None:
    global _thread
    with _cond:
        while _holders:
            _cond.wait()
        _thread = None


class ProcessKeeper:
    """One device's claim on the process-wide keeper thread, from :meth:`hold` to :meth:`release`
    (both idempotent). The thread is started by the first holder and ends with the last release."""

    def __init__(self, name: str) -> None:
        self._name = name

    def hold(self) -> None:
        """Start keeping the process alive (no-op when already holding)."""
        global _thread
        with _cond:
            _holders.add(self)
            if _thread is None:
                # a plain wait: no work, no polling; it only counts as a non-daemon thread at interpreter exit
                _thread = threading.Thread(target=_wait_for_last_release, name=THREAD_NAME, daemon=False)
                _thread.start()

    def release(self) -> None:
        """Let the process end again once no other device holds it (the last release joins the thread)."""
        with _cond:
            _holders.discard(self)
            _cond.notify_all()
            last = _thread if not _holders else None
        if last is not None and last is not threading.current_thread():
            last.join(5)

    @property
    def holding(self) -> bool:
        """True while this device keeps the process alive."""
        with _cond:
            return self in _holders


def release_all() -> None:
    """Release every device: the process may end although devices are still connected (their threads are
    daemons and die with it, without a clean disconnect)."""
    with _cond:
        _holders.clear()
        _cond.notify_all()
