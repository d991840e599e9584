"""A future-like handle for one publish (beyond upstream: every report/respond/publish returns one)."""
from __future__ import annotations

import logging
import threading
from typing import Callable, List, Optional

from iot_device_sdk_python.errors import IotDeviceError, IotTimeoutError

_logger = logging.getLogger(__name__)


class PublishError(IotDeviceError):
    """Why a publish did not reach the broker.

    ``reason`` is one of the ``REASON_*`` constants below.
    """

    REASON_OFFLINE = "offline"              # not connected and the offline buffer is disabled
    REASON_BUFFER_OVERFLOW = "buffer_overflow"  # dropped as the oldest message of a full offline buffer
    REASON_CLOSED = "closed"                # the connection was closed/destroyed before delivery
    REASON_PUBLISH_FAILED = "publish_failed"  # paho refused the publish
    REASON_INVALID = "invalid"              # bad message (topic/payload/qos)
    REASON_REFUSED = "refused"              # MQTT 5: the server refused it in its PUBACK (see reason_code)

    def __init__(self, reason: str, message: str, reason_code: Optional[int] = None) -> None:
        super().__init__(message)
        self.reason = reason
        #: MQTT 5 PUBACK reason code of a refusal (e.g. 0x87 not authorized), else None
        self.reason_code = reason_code


class PublishHandle:
    """Resolved when the message is acknowledged (PUBACK, QoS 1), written (QoS 0) or given up.

    Mirrors the useful part of ``concurrent.futures.Future``: :meth:`result`, :meth:`exception`,
    :meth:`done`, :meth:`add_done_callback`. Resolution never waits for the dispatcher thread, so
    waiting on a handle from inside a listener is safe.
    """

    # slots: one handle per publish, made on the caller's thread and resolved on paho's; a slotted object
    # is quicker to build and to update (subclasses such as the gateway's PublishGroup still get a __dict__)
    __slots__ = ("_topic", "_done", "_event", "_lock", "_exception", "_mid", "_callbacks", "_callback_runner")

    def __init__(self, topic: str = "", callback_runner: Optional[Callable[..., object]] = None) -> None:
        self._topic = topic
        # the Event is made only when someone waits: most handles are never waited on, and an Event
        # (a Condition and two locks) per publish is measurable on the hot path (doc/performance.md)
        self._done = False
        self._event: Optional[threading.Event] = None
        self._lock = threading.Lock()
        self._exception: Optional[BaseException] = None
        self._mid: Optional[int] = None
        self._callbacks: Optional[List[Callable[["PublishHandle"], object]]] = None  # made on first add
        # runs done-callbacks (the device's dispatcher); None = run in the resolving thread
        self._callback_runner = callback_runner

    @property
    def topic(self) -> str:
        """The topic the message was published to."""
        return self._topic

    @property
    def mid(self) -> Optional[int]:
        """The MQTT message id of the (last) attempt, once handed to the client."""
        return self._mid

    def _set_mid(self, mid: Optional[int]) -> None:
        self._mid = mid

    def done(self) -> bool:
        """True once the publish succeeded or failed."""
        return self._done

    def succeeded(self) -> bool:
        """True once the publish succeeded (False while pending or after a failure)."""
        return self._done and self._exception is None

    def result(self, timeout: Optional[float] = None) -> Optional[int]:
        """Wait up to ``timeout`` seconds (None = forever); return the MQTT message id.

        Raises :class:`PublishError` when the message was not delivered and :class:`IotTimeoutError`
        (a ``TimeoutError``) when it is still pending after ``timeout``.
        """
        if not self._wait(timeout):
            raise IotTimeoutError(f"publish to {self._topic} still pending after {timeout} s")
        if self._exception is not None:
            raise self._exception
        return self._mid

    def exception(self, timeout: Optional[float] = None) -> Optional[BaseException]:
        """Wait like :meth:`result`; return the failure (or None on success)."""
        if not self._wait(timeout):
            raise IotTimeoutError(f"publish to {self._topic} still pending after {timeout} s")
        return self._exception

    def _wait(self, timeout: Optional[float]) -> bool:
        if self._done:
            return True
        with self._lock:
            if self._done:
                return True
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        return event.wait(timeout)

    def add_done_callback(self, fn: Callable[["PublishHandle"], object]) -> None:
        """Call ``fn(handle)`` once the handle is resolved (at once if it already is)."""
        with self._lock:
            if not self._done:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(fn)
                return
        self._run_callback(fn)

    def remove_done_callback(self, fn: Callable[["PublishHandle"], object]) -> int:
        """Forget every registration of ``fn`` not yet called (as ``asyncio.Future``); the number removed."""
        with self._lock:
            if not self._callbacks:
                return 0
            kept = [cb for cb in self._callbacks if cb != fn]
            removed = len(self._callbacks) - len(kept)
            self._callbacks = kept
        return removed

    # ---- resolution (SDK internal) --------------------------------------------------------------

    def _set_success(self, mid: Optional[int] = None) -> bool:
        # the usual case, once per PUBACK on paho's network thread: nothing to wake, nothing to call
        with self._lock:
            if self._done:
                return False
            if mid is not None:
                self._mid = mid
            self._done = True
            event = self._event
            callbacks = self._callbacks
            if callbacks is not None:
                self._callbacks = None
        if event is not None:
            event.set()
        if callbacks:
            for fn in callbacks:
                self._run_callback(fn)
        return True

    def _set_failure(self, exc: BaseException) -> bool:
        return self._resolve(exc, None)

    def _resolve(self, exc: Optional[BaseException], mid: Optional[int]) -> bool:
        with self._lock:
            if self._done:
                return False
            if mid is not None:
                self._mid = mid
            self._exception = exc
            self._done = True
            event = self._event
            callbacks, self._callbacks = self._callbacks, None
        if event is not None:
            event.set()
        if callbacks:
            for fn in callbacks:
                self._run_callback(fn)
        return True

    def _run_callback(self, fn: Callable[["PublishHandle"], object]) -> None:
        if self._callback_runner is not None:
            self._callback_runner(fn, self)
            return
        try:
            fn(self)
        except Exception:  # a user callback must not break the SDK thread that resolved us
            _logger.exception("publish handle callback %r raised", fn)

    def __repr__(self) -> str:
        state = "pending" if not self.done() else ("ok" if self._exception is None else "failed")
        return f"PublishHandle(topic={self._topic!r}, mid={self._mid}, {state})"
