"""Many devices in one process: one network thread and a small dispatcher pool for all of them.

Why: by default every device runs paho's own ``loop_start()`` thread (which uses ``select()`` and
fails once a file descriptor number reaches 1024, i.e. above ~340 paho clients per process) plus its
own dispatcher thread. A :class:`SharedNetworkLoop` instead drives every attached paho client from ONE
thread through paho's socket callbacks (``on_socket_open``/``close``/``register_write``/
``unregister_write``, ``loop_read``/``loop_write``/``loop_misc``) on an epoll/kqueue selector, and gives
each device a :class:`PooledDispatcher`: callbacks of one device still run one at a time in arrival
order, but on a fixed pool of threads shared by all devices.

Opt-in, per device, before ``connect()``::

    loop = SharedNetworkLoop(dispatcher_threads=4)
    conf = MqttConnectConf()
    conf.network_loop = loop            # every device built with this conf shares the loop
    device = IotDevice(ClientConf(auth_info, conf))
    ...
    device.destroy()                    # for every device
    loop.close()                        # then stop the loop and the pool

Trade-off: one slow listener callback delays the other devices' callbacks only when all pool threads
are busy; network I/O is never blocked by callbacks (they run on the pool, not on the loop thread).
"""
from __future__ import annotations

import collections
import logging
import selectors
import socket
import threading
import time
import weakref
from typing import Any, Callable, Deque, Dict, List, Optional, Set, TYPE_CHECKING, Tuple

from iot_device_sdk_python.transport.dispatcher import Dispatcher

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt

_logger = logging.getLogger(__name__)

_STOP = object()
_local = threading.local()
# selectors whose interest changes take effect in a select() already running in another thread
_LIVE_SELECTORS = tuple(getattr(selectors, n) for n in ("EpollSelector", "KqueueSelector", "DevpollSelector")
                        if hasattr(selectors, n))


class SharedNetworkLoop:
    """One thread doing the network I/O of many paho clients, plus a shared dispatcher pool.

    ``dispatcher_threads``: size of the pool running listener callbacks of all devices using this loop.
    ``tick``: seconds between ``loop_misc`` rounds (keep-alive pings, ping timeouts).
    Threads start on first use; :meth:`close` stops and joins them.
    """

    def __init__(self, dispatcher_threads: int = 4, name: str = "iot-shared-loop", tick: float = 1.0) -> None:
        if not isinstance(dispatcher_threads, int) or dispatcher_threads < 1:
            raise ValueError("dispatcher_threads must be an int >= 1")
        self._name = name
        self._tick = float(tick)
        self._sel = selectors.DefaultSelector()
        self._needs_wake = not isinstance(self._sel, _LIVE_SELECTORS)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._socks: Dict[int, Tuple[Any, Any]] = {}         # fd -> (client, sock)
        self._fd_by_client: Dict[int, int] = {}             # id(client) -> fd
        self._clients: "weakref.WeakSet[Any]" = weakref.WeakSet()
        self._closed_cond = threading.Condition(self._lock)  # notified when a socket closes
        self._thread: Optional[threading.Thread] = None
        self._stopping = False
        self._pool = _DispatcherPool(dispatcher_threads, f"{name}-dispatch")
        self._errors_logged: Set[int] = set()

    # ---- public API ------------------------------------------------------------------------------

    def new_dispatcher(self, name: str) -> "PooledDispatcher":
        """A per-device dispatcher (FIFO, one callback at a time) running on this loop's pool."""
        return PooledDispatcher(self._pool, name)

    def attach(self, client: mqtt.Client) -> None:
        """Let this loop drive ``client`` (a paho ``Client``). Call before ``client.connect()`` and do
        not call ``loop_start()``/``loop_forever()`` on it."""
        with self._lock:
            if self._stopping:
                raise RuntimeError("the shared network loop is closed")
            self._clients.add(client)
            setattr(client, "_iot_shared_loop", self)  # lets MqttConnection find the loop when retiring the client
            self._ensure_thread_locked()
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write

    def detach(self, client: mqtt.Client, timeout: float = 2.0) -> None:
        """Wait (at most ``timeout`` s) until ``client``'s socket is closed (e.g. after ``disconnect()``
        was written), then force-close it and forget the client."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._fd_of(client) is not None and not self._stopping:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._closed_cond.wait(remaining)
        try:
            client._sock_close()  # noqa: SLF001 - no public way to drop the socket without a loop
        except Exception:
            _logger.debug("closing a detached client's socket failed", exc_info=True)
        with self._lock:
            self._clients.discard(client)

    @staticmethod
    def loop_of(client: mqtt.Client) -> Optional["SharedNetworkLoop"]:
        """The loop ``client`` is attached to, or None."""
        return getattr(client, "_iot_shared_loop", None)

    @property
    def client_count(self) -> int:
        """Clients currently holding a socket on this loop."""
        with self._lock:
            return len(self._socks)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the loop thread and the dispatcher pool (destroy the devices first)."""
        with self._lock:
            self._stopping = True
            thread = self._thread
            self._closed_cond.notify_all()
        self._wake()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._pool.close(timeout)
        with self._lock:
            socks = list(self._socks.values())
            self._socks.clear()
            self._fd_by_client.clear()
        for client, _sock in socks:
            try:
                client._sock_close()  # noqa: SLF001
            except Exception:
                pass
        try:
            self._sel.close()
        finally:
            self._wake_r.close()
            self._wake_w.close()

    def __enter__(self) -> "SharedNetworkLoop":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- paho socket callbacks (any thread) ---------------------------------------------------------

    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        with self._lock:
            self._socks[sock.fileno()] = (client, sock)
            self._fd_by_client[id(client)] = sock.fileno()
            self._sel.register(sock, selectors.EVENT_READ, client)
        self._wake()

    def _on_socket_close(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        with self._lock:
            fd = sock.fileno()
            if self._socks.get(fd, (None,))[0] is client:
                del self._socks[fd]
                self._fd_by_client.pop(id(client), None)
                try:
                    self._sel.unregister(sock)
                except (KeyError, ValueError, OSError):
                    pass
            self._closed_cond.notify_all()

    def _on_register_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._set_write(client, sock, True)

    def _on_unregister_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._set_write(client, sock, False)

    def _set_write(self, client: mqtt.Client, sock: Any, want: bool) -> None:
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if want else 0)
        with self._lock:
            fd = sock.fileno()
            if fd < 0 or self._socks.get(fd, (None,))[0] is not client:
                return
            try:
                if self._sel.get_key(sock).events != events:
                    self._sel.modify(sock, events, client)
            except (KeyError, ValueError, OSError):
                return
        if want:
            self._wake()

    def _fd_of(self, client: mqtt.Client) -> Optional[int]:
        return self._fd_by_client.get(id(client))

    def _wake(self) -> None:
        if self._needs_wake or self._stopping:
            try:
                self._wake_w.send(b"\0")
            except (BlockingIOError, OSError):
                pass

    # ---- the loop thread --------------------------------------------------------------------------

    def _ensure_thread_locked(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        next_misc = time.monotonic() + self._tick
        sel = self._sel
        while not self._stopping:
            timeout = max(0.0, next_misc - time.monotonic())
            try:
                events = sel.select(timeout)
            except (OSError, ValueError):  # closed under us during close()
                if self._stopping:
                    return
                _logger.exception("shared loop: select failed")
                time.sleep(0.05)
                continue
            for key, mask in events:
                client = key.data
                if client is None:
                    try:
                        self._wake_r.recv(4096)
                    except (BlockingIOError, OSError):
                        pass
                    continue
                self._service(client, key.fileobj, mask)
            now = time.monotonic()
            if now >= next_misc:
                next_misc = now + self._tick
                with self._lock:
                    clients = [c for c, _s in self._socks.values()]
                for client in clients:
                    self._guard(client, client.loop_misc)
                    if client.want_write():
                        sock = client.socket()
                        if sock is not None:
                            self._set_write(client, sock, True)

    def _service(self, client: mqtt.Client, sock: Any, mask: int) -> None:
        if mask & selectors.EVENT_READ:
            self._guard(client, client.loop_read)
            # TLS may hold decrypted bytes the selector cannot see
            pending = getattr(client.socket(), "pending", None)
            while pending is not None and client.socket() is sock and pending() > 0:
                if not self._guard(client, client.loop_read):
                    break
        if mask & selectors.EVENT_WRITE and client.socket() is sock:
            self._guard(client, client.loop_write)
        # a publish from another thread may have queued a packet while loop_write was unregistering
        if client.want_write() and client.socket() is sock:
            self._set_write(client, sock, True)

    def _guard(self, client: mqtt.Client, fn: Callable[[], Any]) -> bool:
        try:
            fn()
            return True
        except Exception:  # a client bug must never stop the loop serving the others
            if id(client) not in self._errors_logged:
                self._errors_logged.add(id(client))
                _logger.exception("shared loop: %s failed for a client", getattr(fn, "__name__", fn))
            return False


class _DispatcherPool:
    """A fixed set of daemon threads running ready :class:`PooledDispatcher` queues."""

    def __init__(self, size: int, name: str) -> None:
        self._size = size
        self._name = name
        self._ready: Deque[Any] = collections.deque()
        self._cond = threading.Condition()
        self._threads: List[threading.Thread] = []
        self._closed = False

    def schedule(self, strand: "PooledDispatcher") -> bool:
        with self._cond:
            if self._closed:
                return False
            self._ready.append(strand)
            if len(self._threads) < self._size:
                t = threading.Thread(target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True)
                self._threads.append(t)
                t.start()
            self._cond.notify()
        return True

    def close(self, timeout: float) -> None:
        with self._cond:
            self._closed = True
            for _ in self._threads:
                self._ready.append(_STOP)
            self._cond.notify_all()
            threads = list(self._threads)
        deadline = time.monotonic() + timeout
        for t in threads:
            if t is not threading.current_thread():
                t.join(max(0.0, deadline - time.monotonic()))

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._ready:
                    self._cond.wait()
                strand = self._ready.popleft()
            if strand is _STOP:
                return
            strand._run_batch()


class PooledDispatcher(Dispatcher):
    """Same contract as :class:`Dispatcher` (FIFO, one call at a time, errors logged and survived), but
    runs on a shared :class:`SharedNetworkLoop` pool instead of its own thread."""

    BATCH = 64  # calls run before yielding the pool thread to other devices

    def __init__(self, pool: _DispatcherPool, name: str = "iot-dispatcher") -> None:
        super().__init__(name)
        self._pool = pool
        self._lock = threading.Lock()
        self._scheduled = False
        self._finished = threading.Event()

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
        with self._lock:
            if self._stopped:
                return False
            self._queue.append((fn, args, kwargs))
            if self._scheduled:
                return True
            self._scheduled = True
        if not self._pool.schedule(self):
            with self._lock:
                self._scheduled = False
            return False
        return True

    def submit_batched(self, fn: Callable[..., Any], *args: Any) -> bool:
        # the pool already runs up to BATCH calls per scheduling: no delayed wake-up here
        return self.submit(fn, *args)

    def in_dispatcher_thread(self) -> bool:
        return getattr(_local, "current", None) is self

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def stop(self, timeout: float = 5.0, drain: bool = True) -> None:
        with self._lock:
            if not self._stopped:
                self._stopped = True
                if not drain:
                    self._queue.clear()
                self._queue.append((_STOP, (), {}))
                schedule = not self._scheduled
                self._scheduled = True
            else:
                schedule = False
        if schedule and not self._pool.schedule(self):
            self._finished.set()
        if not self.in_dispatcher_thread() and not self._finished.wait(timeout):
            _logger.warning("dispatcher %s: a callback is still running after %.1f s", self._name, timeout)

    def _run_batch(self) -> None:
        _local.current = self
        try:
            for _ in range(self.BATCH):
                with self._lock:
                    if not self._queue:
                        self._scheduled = False
                        return
                    fn, args, kwargs = self._queue.popleft()
                if fn is _STOP:
                    with self._lock:
                        self._queue.clear()
                        self._scheduled = False
                    self._finished.set()
                    return
                try:
                    fn(*args, **kwargs)
                except Exception:
                    _logger.exception("callback %s raised; the dispatcher keeps running",
                                      getattr(fn, "__qualname__", repr(fn)))
        finally:
            _local.current = None
        if not self._pool.schedule(self):  # more queued: go to the back of the line (fairness)
            with self._lock:
                self._scheduled = False
