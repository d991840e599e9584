"""``TransferFuture``: the future of an OTA download or a file transfer, which ``cancel()`` really stops.

A plain ``concurrent.futures.Future`` can be cancelled only before it runs, and the SDK's transfers start at
once. This one stays *pending* while its worker thread transfers (``running()`` still says whether the
worker has started), so ``cancel()`` succeeds until the transfer's point of no return: a download whose
file is complete and verified, just before it replaces the destination file; an upload the server has
accepted. The worker asks :meth:`TransferFuture.cancelled` between chunks, stops, removes its partial file
and then tells the ``concurrent.futures.wait`` / ``as_completed`` waiters; :meth:`TransferFuture.wait_finished`
waits for that end (a transfer cancelled before any worker took it is finished at once). A cancelled
transfer never reports success to the platform and never removes a file it did not write.
``asyncio.wrap_future(future)`` turns it into an awaitable whose cancellation cancels the transfer.
"""
from __future__ import annotations

import threading
from concurrent.futures import Future, InvalidStateError
from typing import Optional, TypeVar

T = TypeVar("T")


class TransferFuture(Future[T]):
    """A future whose ``cancel()`` stops the transfer mid-stream (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._started = threading.Event()
        self._finished = threading.Event()
        # guards the one-time calls of set_running_or_notify_cancel (a second call raises RuntimeError)
        self._notify_lock = threading.Lock()
        self._notified = False
        self._committed = False

    def running(self) -> bool:
        """True while the worker transfers (not done, not cancelled)."""
        return self._started.is_set() and not self.done()

    def wait_finished(self, timeout: Optional[float] = None) -> bool:
        """Wait until the worker has ended (after a cancel: stopped and cleaned up); False on timeout."""
        return self._finished.wait(timeout)

    # ---- the worker's side (SDK internal) -------------------------------------------------------------

    def _start(self) -> None:
        self._started.set()

    def _commit(self) -> bool:
        """The transfer's point of no return: from here on ``cancel()`` returns False. False when
        ``cancel()`` won (the waiters are then notified; the worker must undo and ``_finish``)."""
        with self._notify_lock:
            if self._committed:
                return True
            if self.done():  # cancelled (or, never in the SDK, already resolved)
                return False
            # atomic against cancel(): PENDING -> RUNNING, or CANCELLED -> CANCELLED_AND_NOTIFIED
            if self.set_running_or_notify_cancel():
                self._committed = True
                return True
            self._notified = True
            return False

    def _notify_cancelled(self) -> None:
        # what an executor does with set_running_or_notify_cancel when it picks up a cancelled item; once
        with self._notify_lock:
            if self.cancelled() and not self._notified:
                self._notified = True
                self.set_running_or_notify_cancel()

    def _abandon(self) -> None:
        """A cancelled transfer that no worker will ever run (cancelled while waiting for its URL):
        finish it for every waiter now."""
        self._notify_cancelled()
        self._finished.set()

    def _finish(self, result: Optional[T] = None, exc: Optional[BaseException] = None) -> bool:
        """Set the outcome unless ``cancel()`` won; True when the outcome was set. Always marks the worker
        finished and, after a cancel, notifies the ``wait``/``as_completed`` waiters."""
        try:
            if self.cancelled():
                return False
            try:
                if exc is not None:
                    self.set_exception(exc)
                else:
                    self.set_result(result)  # type: ignore[arg-type]
                return True
            except InvalidStateError:  # cancel() came between the check and the set
                return False
        finally:
            self._notify_cancelled()
            self._finished.set()
