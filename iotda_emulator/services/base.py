"""The contract between the platform core and one platform-side system service.

A service answers the ``events/up`` of its service id(s), may push ``events/down`` through the core,
may own sqlite tables (created in ``__init__`` with ``CREATE TABLE IF NOT EXISTS`` through
``core.db``), may add tornado routes to the emulator's HTTP server, and exposes a Python API for
tests through ``Emulator.service(service_id)``.
"""
from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Callable, ClassVar, List, Optional, Tuple, TypeVar

if TYPE_CHECKING:
    from iotda_emulator.core import PlatformCore

T = TypeVar("T")


def wait_changed(changed: threading.Condition, probe: Callable[[], Optional[T]], timeout: float,
                 timeout_message: Callable[[], str]) -> T:
    """Wait on ``changed`` (a service's condition, notified on every change) until ``probe()`` returns
    something other than None, and return that. ``probe`` runs with the condition's lock held and may raise
    (e.g. KeyError for an unknown id); after ``timeout`` seconds: ``TimeoutError(timeout_message())``."""
    deadline = time.monotonic() + timeout
    with changed:
        while True:
            found = probe()
            if found is not None:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(timeout_message())
            changed.wait(remaining)


class PlatformService:
    """Base class: subclass it in a module of ``iotda_emulator.services`` and set ``service_ids``."""

    #: The ``service_id`` values whose events this service receives (first one is its name).
    service_ids: ClassVar[Tuple[str, ...]] = ()

    def __init__(self, core: "PlatformCore") -> None:
        self.core = core

    def on_event(self, device_id: str, object_device_id: Optional[str], event: dict) -> None:
        """Handle one element of ``services[]`` of an ``events/up`` published by ``device_id``.

        ``object_device_id`` is the envelope's value (a child id when a gateway reports for a child).
        ``event`` holds ``service_id``, ``event_type``, ``event_id``, ``event_time`` and ``paras``
        exactly as received (untrusted: validate before use; never raise for bad input).
        """

    def start(self) -> None:
        """Called once after the platform core runs (a service may open its own listeners here)."""

    def on_device_online(self, device_id: str) -> None:
        """Called after ``device_id`` connected (accepted by the access front and subscribed)."""

    def on_device_offline(self, device_id: str) -> None:
        """Called after ``device_id`` disconnected."""

    def http_routes(self) -> List[tuple]:
        """Tornado routes ``(pattern, handler_class[, kwargs])`` to add to the emulator's HTTP app."""
        return []

    def close(self) -> None:
        """Stop timers and threads this service started."""

    def describe(self) -> Any:
        """A JSON-able summary for the web console and the REST API (optional)."""
        return None
