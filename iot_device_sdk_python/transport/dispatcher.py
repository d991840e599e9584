"""One thread per device that runs every listener and service callback in arrival order.

Why: callbacks must never run on the paho network thread, so a slow callback (a download, a sleep)
cannot stall keep-alive or publishing. Exceptions from a callback are logged once and the thread lives on.

Handing a call to the thread costs a thread wake-up (and a GIL hand-over) when the thread is asleep: about
30 us of CPU per call on the measuring machine, as much as the rest of a QoS 1 report (issue 15,
doc/performance.md). So the thread runs everything queued before it sleeps again, a call queued while it
is awake costs one append, and :meth:`Dispatcher.submit_batched` lets a publish outcome wait a little
(at most ``BATCH_DELAY``) for the outcomes that follow it instead of waking the thread for each one.
"""
from __future__ import annotations

import collections
import logging
import threading
from typing import Any, Callable, Deque, Dict, Optional, Tuple

_logger = logging.getLogger(__name__)

_STOP = object()
#: the kwargs slot of a call queued by submit_batched (never mutated: ``**`` unpacking only reads it)
_BATCHED: Dict[str, Any] = {}

# thread states (under Dispatcher._mutex)
_AWAKE = 0     # running calls, or not started yet: a new call needs no signal
_NAPPING = 1   # a timed sleep after batched calls: submit() wakes it, submit_batched() lets it sleep on
_SLEEPING = 2  # an untimed sleep: every new call wakes it


class Dispatcher:
    """A FIFO of callables run by one daemon thread, started on first use."""

    # 5 ms, not 2: at ~5,000 PUBACKs/s a 2 ms nap took ~10 outcomes (this thread: ~4 us/msg, mostly wake-ups),
    # a 5 ms one ~25 (~2 us/msg); doc/performance.md, "Per-publish cost, fifth pass"
    #: longest a call queued with :meth:`submit_batched` waits for company before the thread wakes for it (s)
    BATCH_DELAY = 0.005

    def __init__(self, name: str = "iot-dispatcher") -> None:
        self._name = name
        self._queue: Deque[Tuple[Any, Tuple[Any, ...], Dict[str, Any]]] = collections.deque()
        # _mutex guards _state/_stopped/_thread and every append; the thread pops without it (only it pops,
        # and deque.popleft is atomic). _wake is a binary semaphore: held while the thread sleeps or naps,
        # released by the one caller that moves _state from _NAPPING/_SLEEPING back to _AWAKE
        self._mutex = threading.Lock()
        self._wake = threading.Lock()
        self._wake.acquire()
        self._state = _AWAKE
        self._thread: Optional[threading.Thread] = None
        self._stopped = False

    @property
    def name(self) -> str:
        return self._name

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
        """Queue ``fn(*args, **kwargs)``; return False (and drop it) when the dispatcher is stopped."""
        with self._mutex:
            if self._stopped:
                _logger.debug("dispatcher %s stopped; dropping %r", self._name, fn)
                return False
            self._queue.append((fn, args, kwargs))
            if self._state == _AWAKE:  # it finds this call before it sleeps (or it is not started yet)
                if self._thread is None:
                    self._start_locked()
                return True
            self._state = _AWAKE
        self._wake.release()
        return True

    def submit_batched(self, fn: Callable[..., Any], *args: Any) -> bool:
        """Queue ``fn(*args)`` like :meth:`submit`, in the same FIFO, but let it wait up to ``BATCH_DELAY``
        seconds for the calls that follow it before the thread wakes up.

        For calls nobody is blocked on while more are coming (the SDK uses it for an ActionListener's
        outcome while more publishes are in flight): the thread then wakes once per batch, not per call.
        A call made with :meth:`submit` still wakes the thread at once and runs after the calls before it.
        """
        # Once per outcome on paho's thread, so no lock while the thread is awake or napping (the lock was
        # half of this method's cost). Safe: the thread publishes its state before it looks at the queue
        # (_run), so an append it did not see is followed here by a read of _SLEEPING, and _kick wakes it.
        # A call racing stop() may land after the stop marker and not run; before, it was refused.
        if self._stopped:
            _logger.debug("dispatcher %s stopped; dropping %r", self._name, fn)
            return False
        self._queue.append((fn, args, _BATCHED))
        # asleep (or not started): wake (start) it; awake or napping: it finds the call within BATCH_DELAY
        if self._state == _SLEEPING or self._thread is None:
            self._kick()
        return True

    def _kick(self) -> None:
        """Start the thread, or wake it from an untimed sleep (for a call already queued)."""
        with self._mutex:
            if self._thread is None:
                if not self._stopped:
                    self._start_locked()
                return
            if self._state != _SLEEPING:
                return
            self._state = _AWAKE
        self._wake.release()

    def _start_locked(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def in_dispatcher_thread(self) -> bool:
        """True when called from this dispatcher's own thread."""
        return self._thread is not None and threading.current_thread() is self._thread

    def pending(self) -> int:
        """Number of queued (not yet started) calls."""
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
        wake = False
        with self._mutex:
            if not self._stopped:
                self._stopped = True
                if not drain:
                    self._queue.clear()
                self._queue.append((_STOP, (), {}))
                wake = self._state != _AWAKE
                self._state = _AWAKE
            thread = self._thread
        if wake:
            self._wake.release()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                _logger.warning("dispatcher %s: a callback is still running after %.1f s", self._name, timeout)

    def _run(self) -> None:
        queue, mutex, wake = self._queue, self._mutex, self._wake
        batched = False  # a batched call ran since the thread last slept: more are likely to follow
        while True:
            try:
                fn, args, kwargs = queue.popleft()
            except IndexError:  # drained: nap or sleep, unless a call came in meanwhile
                with mutex:
                    # the state first, then the look at the queue: submit_batched appends without the
                    # mutex and then reads the state (see there)
                    napping = batched
                    self._state = _NAPPING if napping else _SLEEPING
                    if queue:
                        self._state = _AWAKE
                        continue
                batched = False
                if not napping:
                    wake.acquire()
                elif not wake.acquire(timeout=self.BATCH_DELAY):
                    with mutex:
                        signalled = self._state == _AWAKE  # a caller woke us just as the nap ended
                        self._state = _AWAKE
                    if signalled:
                        wake.acquire()  # take its release (made right after it left the mutex)
                continue
            if fn is _STOP:
                return
            if kwargs is _BATCHED:
                batched = True
                try:
                    fn(*args)
                except Exception:
                    _logger.exception("callback %s raised; the dispatcher keeps running",
                                      getattr(fn, "__qualname__", repr(fn)))
                continue
            try:
                fn(*args, **kwargs)
            except Exception:
                _logger.exception("callback %s raised; the dispatcher keeps running",
                                  getattr(fn, "__qualname__", repr(fn)))
