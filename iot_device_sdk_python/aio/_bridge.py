"""The two crossings between the SDK's threads and one asyncio event loop.

* thread -> loop: :func:`post` schedules a call on the loop (``call_soon_threadsafe``) and tells whether the
  loop took it (a closed loop does not).
* loop -> thread: :func:`run_in_thread` runs a blocking SDK call (``connect``, ``destroy``) on a thread of its
  own, so that twenty devices connecting at once do not queue behind the loop's default executor, and
  :func:`await_handle` waits on a :class:`PublishHandle` without blocking the loop.

Nothing here knows about devices or topics: the SDK's own transport does the work, this module only moves
results across.
"""
from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable, Optional, TypeVar

from iot_device_sdk_python.errors import IotTimeoutError
from iot_device_sdk_python.transport.publish_handle import PublishHandle

T = TypeVar("T")


def post(loop: asyncio.AbstractEventLoop, fn: Callable[..., object], *args: Any) -> bool:
    """Call ``fn(*args)`` on ``loop`` soon, from any thread; False when the loop is closed."""
    try:
        loop.call_soon_threadsafe(fn, *args)
        return True
    except RuntimeError:  # the loop was closed: nobody is waiting any more
        return False


def _settle(fut: "asyncio.Future[Any]", exc: Optional[BaseException], value: Any) -> None:
    # runs on the loop; the awaiting side may have been cancelled meanwhile
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(value)


def run_in_thread(loop: asyncio.AbstractEventLoop, fn: Callable[[], T], name: str) -> "asyncio.Future[T]":
    """Run ``fn()`` on a new daemon thread named ``name``; the returned loop future gets its result.

    Cancelling the future does not stop ``fn`` (callers that can stop it, do so themselves).
    """
    fut: "asyncio.Future[T]" = loop.create_future()

    def work() -> None:
        try:
            value = fn()
        except BaseException as exc:  # handed to the awaiting coroutine, which re-raises it
            post(loop, _settle, fut, exc, None)
        else:
            post(loop, _settle, fut, None, value)

    threading.Thread(target=work, name=name, daemon=True).start()
    return fut


async def await_handle(handle: PublishHandle, timeout: Optional[float] = None) -> Optional[int]:
    """Wait for ``handle`` on the running loop; return the MQTT message id.

    Raises the handle's :class:`PublishError`, or :class:`IotTimeoutError` after ``timeout`` seconds (the
    message may still be delivered later). A cancelled or timed-out wait removes its callback from the handle.
    """
    if handle.done():  # resolved already (QoS 0 written, or failed at once): no trip through the loop
        return handle.result(0)
    loop = asyncio.get_running_loop()
    fut: "asyncio.Future[Optional[int]]" = loop.create_future()

    def resolved(h: PublishHandle) -> None:
        # on the SDK thread that resolved the handle (the device's dispatcher)
        exc = h.exception(0)
        post(loop, _settle, fut, exc, None if exc is not None else h.mid)

    handle.add_done_callback(resolved)
    try:
        if timeout is None:
            return await fut
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise IotTimeoutError(f"publish to {handle.topic} still pending after {timeout} s") from None
    finally:
        if not fut.done() or fut.cancelled():
            handle.remove_done_callback(resolved)
