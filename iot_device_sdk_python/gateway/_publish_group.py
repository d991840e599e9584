"""One handle and one listener call for a report the gateway had to split into several publishes (internal).

The platform limits a batch to 100 sub-devices (properties, statuses) or 50 (add/delete), so a large
call becomes several MQTT messages. The caller still gets one future-like handle and, when it passed an
``ActionListener``, exactly one ``on_success`` (all parts delivered) or one ``on_failure`` (first failure).
"""
from __future__ import annotations

import logging
import threading
from typing import Any, List, Optional

from iot_device_sdk_python.transport.action_listener import ActionListener
from iot_device_sdk_python.transport.publish_handle import PublishHandle

_logger = logging.getLogger(__name__)


class GroupListener(ActionListener):
    """Counts the parts' listener calls and reports once to the user's ``ActionListener``."""

    def __init__(self, listener: Any, parts: int) -> None:
        self._listener = listener
        self._remaining = parts
        self._failed = False
        self._lock = threading.Lock()

    def on_success(self, message: str = "") -> None:
        with self._lock:
            if self._failed:
                return
            self._remaining -= 1
            done = self._remaining == 0
        if done and self._listener is not None:
            try:
                self._listener.on_success(message=message)
            except Exception:
                _logger.exception("ActionListener.on_success raised")

    def on_failure(self, message: str = "", e: Optional[Exception] = None) -> None:
        with self._lock:
            if self._failed:
                return
            self._failed = True
        if self._listener is not None:
            try:
                self._listener.on_failure(message, e)
            except Exception:
                _logger.exception("ActionListener.on_failure raised")


class PublishGroup(PublishHandle):
    """A :class:`PublishHandle` resolved once every part is done.

    Succeeds (``result()`` returns the last part's message id) when all parts were delivered; fails
    with the first part's exception otherwise. ``handles`` gives the individual parts.
    """

    def __init__(self, handles: List[PublishHandle]) -> None:
        super().__init__(getattr(handles[0], "topic", "") if handles else "")
        self._handles = list(handles)
        self._group_lock = threading.Lock()
        self._pending = len(self._handles)
        self._first_exc: Optional[BaseException] = None
        if not self._handles:
            self._set_success(None)
        for h in self._handles:
            h.add_done_callback(self._part_done)

    @property
    def handles(self) -> List[PublishHandle]:
        """The handles of the individual publishes, in sending order."""
        return list(self._handles)

    def _part_done(self, handle: PublishHandle) -> None:
        try:
            exc = handle.exception(0)
        except Exception as e:  # not expected: the part is done
            exc = e
        with self._group_lock:
            if exc is not None and self._first_exc is None:
                self._first_exc = exc
            self._pending -= 1
            if self._pending > 0:
                return
            first = self._first_exc
        if first is None:
            self._set_success(handle.mid)
        else:
            self._set_failure(first)
