"""``AsyncDeviceClient``: the documented client API as coroutines, on the threaded client's transport.

Outbound, every ``report_*`` / ``respond_*`` / ``publish_*`` coroutine calls the same-named method of the
:class:`~iot_device_sdk_python.client.device_client.DeviceClient` and resolves when its
:class:`PublishHandle` does (PUBACK for QoS 1): the message id, or the handle's ``PublishError``.

Inbound, the client takes the threaded client's listener slots (command, property, raw message) only while
an async consumer exists: a stream (``async for command in client.commands()``) or a handler
(``client.set_command_handler(coro_fn)``). Without one, requests go to the device's services exactly as in
the threaded API. Listener calls still arrive on the device's dispatcher thread; they cross to the event loop
with ``call_soon_threadsafe``. One consumer per kind at a time; each device has its own, so a slow handler of
one device never holds up another device (nor the keep-alive of its own connection).

Cancellation and closing: a stream ends when it is closed (``aclose()``, leaving ``async with``, the device's
``destroy()``), when the wait in ``__anext__`` is cancelled, or when it is garbage collected. Requests it still
held go back to the device's services, and the listener slot is released when no consumer is left.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import threading
import weakref
from typing import (TYPE_CHECKING, Any, Awaitable, Callable, Deque, Dict, Generic, List, Optional, Set, Tuple,
                    TypeVar, Union)

from iot_device_sdk_python.aio import _bridge
from iot_device_sdk_python.aio.requests import CommandRequest, PropertyGetRequest, PropertySetRequest, _Request
from iot_device_sdk_python.client.iot_result import IotResult
from iot_device_sdk_python.client.listener.command_listener import CommandListener
from iot_device_sdk_python.client.listener.property_listener import PropertyListener
from iot_device_sdk_python.client.listener.raw_device_message_listener import RawDeviceMessageListener
from iot_device_sdk_python.client.request.command import Command
from iot_device_sdk_python.client.request.command_response import CommandRsp
from iot_device_sdk_python.client.request.device_base_info import DeviceBaseInfo
from iot_device_sdk_python.client.request.device_event import DeviceEvent
from iot_device_sdk_python.client.request.device_message import DeviceMessage
from iot_device_sdk_python.client.request.props_get import PropsGet
from iot_device_sdk_python.client.request.props_set import PropSet
from iot_device_sdk_python.client.request.raw_device_message import RawDeviceMessage
from iot_device_sdk_python.client.request.service_property import ServiceProperty
from iot_device_sdk_python.transport.raw_message import RawMessage

if TYPE_CHECKING:
    from iot_device_sdk_python.client.device_client import DeviceClient
    from iot_device_sdk_python.service.abstract_device import AbstractDevice

_logger = logging.getLogger(__name__)

T = TypeVar("T")

COMMANDS = "command"
PROPERTY_SETS = "property_set"
PROPERTY_GETS = "property_get"
MESSAGES = "message"

CommandHandler = Callable[[CommandRequest], Awaitable[Optional[CommandRsp]]]
PropertySetHandler = Callable[[PropertySetRequest], Awaitable[Optional[IotResult]]]
PropertyGetHandler = Callable[[PropertyGetRequest], Awaitable[Optional[List[ServiceProperty]]]]
MessageHandler = Callable[[RawDeviceMessage], Awaitable[None]]

_Item = Union[_Request, RawDeviceMessage]


class _Slot:
    """One open stream as the registry sees it: its queue (shared with the stream) and a weak reference, so
    that a stream the application dropped without closing can still be collected and cleaned up."""

    __slots__ = ("kind", "queue", "ref", "closed")

    def __init__(self, kind: str, stream: "RequestStream[Any]") -> None:
        self.kind = kind
        self.queue: Deque[Any] = stream._queue
        self.ref: "weakref.ReferenceType[RequestStream[Any]]" = weakref.ref(stream)
        self.closed = False


class RequestStream(Generic[T]):
    """An async iterator over one kind of downlink of one device (commands, property sets/gets, messages).

    Use it as ``async with client.commands() as commands: async for command in commands: ...``. It is
    registered when created (nothing arriving after that is missed) and ends when closed; see the module
    docstring for what closes it.
    """

    def __init__(self, client: "AsyncDeviceClient", kind: str) -> None:
        self._client = client
        self._kind = kind
        self._queue: Deque[T] = collections.deque()
        self._waiter: Optional["asyncio.Future[None]"] = None
        self._closed = False
        self._slot = _Slot(kind, self)
        # [1] the one clean-up path, for close() and for garbage collection alike (see _release)
        self._finalizer = weakref.finalize(self, client._release, self._slot)
        self._finalizer.atexit = False  # at interpreter exit there is nobody left to hand requests to

    @property
    def kind(self) -> str:
        """``"command"``, ``"property_set"``, ``"property_get"`` or ``"message"``."""
        return self._kind

    @property
    def closed(self) -> bool:
        return self._closed

    def __aiter__(self) -> "RequestStream[T]":
        return self

    async def __anext__(self) -> T:
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            waiter: "asyncio.Future[None]" = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            except asyncio.CancelledError:
                self.close()  # a cancelled consumer is gone: do not keep requests for nobody
                raise
            finally:
                self._waiter = None
        return self._queue.popleft()

    def _put(self, item: T) -> bool:
        # loop thread only
        if self._closed:
            return False
        self._queue.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return True

    def close(self) -> None:
        """End the stream now (call on the loop): queued requests go back to the services, a waiting
        ``async for`` finishes, the listener slot is released when this was the last consumer."""
        if self._closed:
            return
        self._closed = True
        self._finalizer()  # -> AsyncDeviceClient._release(slot), once
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def aclose(self) -> None:
        """:meth:`close`, as a coroutine (the async-generator spelling)."""
        self.close()

    async def __aenter__(self) -> "RequestStream[T]":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RequestStream({self._kind!r}, queued={len(self._queue)}, closed={self._closed})"


class _Bridge(CommandListener, PropertyListener, RawDeviceMessageListener):
    """The threaded listeners the async client installs; they run on the dispatcher thread and only
    hand the request to the event loop (or back to the services when no async consumer is left)."""

    def __init__(self, client: "AsyncDeviceClient") -> None:
        self._client = client

    def on_command(self, request_id: str, service_id: str, command_name: str, paras: Dict[str, Any]) -> None:
        c = self._client
        c._offer(COMMANDS, CommandRequest(c, request_id, service_id, command_name, paras))

    def on_property_set(self, request_id: str, services: List[ServiceProperty]) -> None:
        c = self._client
        c._offer(PROPERTY_SETS, PropertySetRequest(c, request_id, services))

    def on_property_get(self, request_id: str, service_id: str) -> None:
        c = self._client
        c._offer(PROPERTY_GETS, PropertyGetRequest(c, request_id, service_id))

    def on_raw_device_message(self, message: RawDeviceMessage) -> None:
        self._client._offer(MESSAGES, message)


class AsyncDeviceClient:
    """Coroutine versions of :class:`DeviceClient`'s calls plus async streams and handlers for downlinks.

    Get it with ``AsyncIotDevice.get_client()``. Outbound coroutines take the same arguments as the threaded
    methods (without ``listener``) plus ``timeout`` (seconds; ``None`` waits for the PUBACK however long
    it takes) and return the MQTT message id; they raise the handle's ``PublishError``, or
    ``IotTimeoutError`` when ``timeout`` ran out (the message may still go out later).
    """

    def __init__(self, device: "AbstractDevice") -> None:
        self._device = device
        self._client: "DeviceClient" = device.get_client()
        self._bridge = _Bridge(self)
        # guards _slots: read on the dispatcher, written on the loop or by the garbage collector, which may run
        # _release on a thread that already holds the lock (hence reentrant)
        self._lock = threading.RLock()
        self._slots: Dict[str, _Slot] = {}
        self._handlers: Dict[str, Tuple[RequestStream[Any], "asyncio.Task[None]"]] = {}
        # every handler task until it ends, replaced ones included: the loop itself keeps only weak references
        self._tasks: Set["asyncio.Task[None]"] = set()
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    # ---- the event loop ---------------------------------------------------------------------------

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        """The running loop, remembered on first use; a device serves one loop at a time."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None and not self._loop.is_closed():
                raise RuntimeError("this device is bound to another running event loop")
            self._loop = loop
        return loop

    @property
    def sync_client(self) -> "DeviceClient":
        """The threaded :class:`DeviceClient` underneath (same connection)."""
        return self._client

    def get_device_id(self) -> str:
        return self._client.get_device_id()

    def is_connected(self) -> bool:
        return self._client.is_connected()

    # ---- outbound ----------------------------------------------------------------------------------

    async def report_properties(self, services: List[ServiceProperty], *,
                                timeout: Optional[float] = None) -> Optional[int]:
        """Report properties; resolves on PUBACK with the message id."""
        return await _bridge.await_handle(self._client.report_properties(services), timeout)

    async def report_device_message(self, device_message: DeviceMessage, *,
                                    timeout: Optional[float] = None) -> Optional[int]:
        """Publish a message on ``messages/up``; resolves on PUBACK."""
        return await _bridge.await_handle(self._client.report_device_message(device_message), timeout)

    async def report_event(self, device_event: DeviceEvent, *, timeout: Optional[float] = None) -> Optional[int]:
        """Publish an event of this device; resolves on PUBACK."""
        return await _bridge.await_handle(self._client.report_event(device_event), timeout)

    async def report_sub_event(self, sub_device_id: str, device_event: DeviceEvent, *,
                               timeout: Optional[float] = None) -> Optional[int]:
        """Publish an event about a gateway child; resolves on PUBACK."""
        return await _bridge.await_handle(self._client.report_sub_event(sub_device_id, device_event), timeout)

    async def report_device_info(self, device_info: DeviceBaseInfo, *,
                                 timeout: Optional[float] = None) -> Optional[int]:
        """Publish the ``$sdk_info`` event with the device's versions; resolves on PUBACK."""
        return await _bridge.await_handle(self._client.report_device_info(device_info), timeout)

    async def get_device_shadow(self, request_id: str, service_id: Optional[str] = None,
                                object_device_id: Optional[str] = None, *,
                                timeout: Optional[float] = None) -> Optional[int]:
        """Ask for the shadow (the answer goes to the threaded ``DeviceShadowListener``); resolves on PUBACK."""
        return await _bridge.await_handle(
            self._client.get_device_shadow(request_id, service_id, object_device_id), timeout)

    async def respond_command(self, request_id: str, command_response: CommandRsp, *,
                              timeout: Optional[float] = None) -> Optional[int]:
        """Answer command ``request_id``; resolves on PUBACK."""
        return await _bridge.await_handle(self._client.respond_command(request_id, command_response), timeout)

    async def respond_properties_get(self, request_id: str, services: List[ServiceProperty], *,
                                     timeout: Optional[float] = None) -> Optional[int]:
        """Answer property query ``request_id``; resolves on PUBACK."""
        return await _bridge.await_handle(self._client.respond_properties_get(request_id, services), timeout)

    async def respond_properties_set(self, request_id: str, iot_result: IotResult, *,
                                     timeout: Optional[float] = None) -> Optional[int]:
        """Answer property write ``request_id``; resolves on PUBACK."""
        return await _bridge.await_handle(self._client.respond_properties_set(request_id, iot_result), timeout)

    async def publish_raw_message(self, raw_message: RawMessage, *, timeout: Optional[float] = None) -> Optional[int]:
        """Publish any message as is; resolves on PUBACK (QoS 1) or write (QoS 0)."""
        return await _bridge.await_handle(self._client.publish_raw_message(raw_message), timeout)

    # ---- inbound: streams ------------------------------------------------------------------------------

    def commands(self) -> RequestStream[CommandRequest]:
        """A stream of the commands for this device; answer each with ``await command.respond(...)``."""
        return self._open(COMMANDS)

    def property_sets(self) -> RequestStream[PropertySetRequest]:
        """A stream of property writes; answer each with ``await request.respond(IotResult(...))``."""
        return self._open(PROPERTY_SETS)

    def property_gets(self) -> RequestStream[PropertyGetRequest]:
        """A stream of property reads; answer each with ``await request.respond([ServiceProperty(...)])``."""
        return self._open(PROPERTY_GETS)

    def messages(self) -> RequestStream[RawDeviceMessage]:
        """A stream of every ``messages/down`` payload (``.payload`` bytes, ``.to_device_message()``)."""
        return self._open(MESSAGES)

    def _open(self, kind: str) -> RequestStream[Any]:
        self._bind_loop()
        stream: RequestStream[Any] = RequestStream(self, kind)
        with self._lock:
            if kind in self._slots:
                stream._finalizer.detach()
                raise RuntimeError(f"{kind} requests already have a consumer (one stream or handler per kind)")
            self._slots[kind] = stream._slot
        self._update_listeners()
        return stream

    def _release(self, slot: _Slot) -> None:
        """[1] Unregister a stream and hand back what it still queued. Runs once per stream, from ``close()``
        on the loop or from the garbage collector (whichever thread that is)."""
        slot.closed = True
        with self._lock:
            if self._slots.get(slot.kind) is slot:
                del self._slots[slot.kind]
        self._update_listeners()
        while slot.queue:
            item = slot.queue.popleft()
            if isinstance(item, _Request):
                item._hand_back()

    def _update_listeners(self) -> None:
        # the threaded client's slots point at the bridge only while an async consumer wants that kind
        with self._lock:
            kinds = set(self._slots)
        c = self._client
        c.set_command_listener(self._bridge if COMMANDS in kinds else None)
        c.set_properties_listener(self._bridge if kinds & {PROPERTY_SETS, PROPERTY_GETS} else None)
        c.set_raw_device_msg_listener(self._bridge if MESSAGES in kinds else None)

    def _offer(self, kind: str, item: _Item) -> None:
        """Dispatcher thread: hand ``item`` to the loop, or straight to the services when nobody consumes it."""
        with self._lock:
            slot = self._slots.get(kind)
        loop = self._loop
        if slot is None or loop is None or not _bridge.post(loop, self._deliver, slot, item):
            if isinstance(item, _Request):
                item._hand_back()

    def _deliver(self, slot: _Slot, item: _Item) -> None:
        # loop thread; the stream may have closed since _offer looked
        stream = slot.ref()
        if slot.closed or stream is None or not stream._put(item):
            if isinstance(item, _Request):
                item._hand_back()

    def _fallback(self, request: _Request) -> None:
        """What the threaded client does without a listener: the device's services answer (dispatcher)."""
        device = self._device
        if isinstance(request, CommandRequest):
            command = Command()
            command.service_id = request.service_id
            command.command_name = request.command_name
            command.paras = request.paras
            fn: Callable[..., object] = device.on_command
            arg: object = command
        elif isinstance(request, PropertySetRequest):
            props_set = PropSet()
            props_set.services = request.services
            fn, arg = device.on_properties_set, props_set
        elif isinstance(request, PropertyGetRequest):
            props_get = PropsGet()
            props_get.service_id = request.service_id
            fn, arg = device.on_properties_get, props_get
        else:
            return
        if not self._client.get_dispatcher().submit(fn, request.request_id, arg):
            _logger.debug("device %s stopped; %s %s not answered", self.get_device_id(), request.kind,
                          request.request_id)

    # ---- inbound: handlers ---------------------------------------------------------------------------

    def set_command_handler(self, handler: Optional[CommandHandler]) -> None:
        """Answer commands with ``await handler(command)``: its ``CommandRsp`` (None: success) is sent, an
        exception is answered with a failure. Commands of this device are handled one at a time, in order.
        ``None`` removes the handler (one already running finishes). Call from a coroutine."""
        self._set_handler(COMMANDS, handler)

    def set_property_set_handler(self, handler: Optional[PropertySetHandler]) -> None:
        """Answer property writes with ``await handler(request)``'s ``IotResult`` (None: success)."""
        self._set_handler(PROPERTY_SETS, handler)

    def set_property_get_handler(self, handler: Optional[PropertyGetHandler]) -> None:
        """Answer property reads with ``await handler(request)``'s list of ``ServiceProperty``."""
        self._set_handler(PROPERTY_GETS, handler)

    def set_message_handler(self, handler: Optional[MessageHandler]) -> None:
        """Call ``await handler(message)`` for every ``messages/down`` payload (a ``RawDeviceMessage``)."""
        self._set_handler(MESSAGES, handler)

    def _set_handler(self, kind: str, handler: Optional[Callable[[Any], Awaitable[Any]]]) -> None:
        loop = self._bind_loop()
        old = self._handlers.pop(kind, None)
        if old is not None:
            old[0].close()  # the old handler ends after the request it is on
        if handler is None:
            return
        stream = self._open(kind)
        task = loop.create_task(self._serve(stream, handler), name=f"iot-aio-{kind}-{self.get_device_id()}")
        self._handlers[kind] = (stream, task)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, stream: RequestStream[Any], handler: Callable[[Any], Awaitable[Any]]) -> None:
        async with stream:
            async for item in stream:
                if isinstance(item, _Request):
                    await self._answer(item, handler)
                else:
                    try:
                        await handler(item)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        _logger.exception("message handler of %s raised", self.get_device_id())

    async def _answer(self, request: _Request, handler: Callable[[Any], Awaitable[Any]]) -> None:
        try:
            result = await handler(request)
        except asyncio.CancelledError:
            self._answer_failure(request, "handler cancelled")
            raise
        except Exception as exc:
            _logger.exception("%s handler of %s raised", request.kind, self.get_device_id())
            self._answer_failure(request, f"handler failed: {type(exc).__name__}")
            return
        if request.answered:
            return
        try:
            if isinstance(request, CommandRequest):
                await request.respond(result if isinstance(result, CommandRsp) else None)
            elif isinstance(request, PropertySetRequest):
                await request.respond(result if isinstance(result, IotResult) else None)
            elif isinstance(request, PropertyGetRequest):
                await request.respond(list(result) if result else [])
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a failed publish: logged once, the handler goes on with the next request
            _logger.warning("%s %s: answer not sent (%s)", request.kind, request.request_id, exc)

    def _answer_failure(self, request: _Request, text: str) -> None:
        if request.answered:
            return
        request._answered = True
        try:  # the handle is not awaited: the answer goes out (or fails) on its own
            if isinstance(request, CommandRequest):
                self._client.respond_command(request.request_id,
                                             CommandRsp(CommandRsp.fail_code(), "", {"error": text}))
            elif isinstance(request, PropertySetRequest):
                self._client.respond_properties_set(request.request_id, IotResult(1, text))
            elif isinstance(request, PropertyGetRequest):
                self._client.respond_properties_get(request.request_id, [])
        except Exception:
            _logger.debug("failure answer for %s not sent", request.request_id, exc_info=True)

    # ---- shutdown ------------------------------------------------------------------------------------

    def _close_consumers(self) -> List["asyncio.Task[None]"]:
        """End every stream and handler (``AsyncIotDevice.destroy``); the handler tasks, cancelled."""
        for stream, _ in self._handlers.values():
            stream.close()
        self._handlers.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        with self._lock:
            slots = list(self._slots.values())
        for slot in slots:
            open_stream = slot.ref()
            if open_stream is not None:
                open_stream.close()
            else:
                self._release(slot)
        return tasks
