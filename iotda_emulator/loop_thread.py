"""An asyncio event loop on its own daemon thread, for the emulator's servers that are not the access front
(HTTP API, tunnel source)."""
from __future__ import annotations

import asyncio
import threading
from typing import Callable, List, Tuple


def start_loop_thread(name: str, setup: Callable[[asyncio.AbstractEventLoop], None]
                      ) -> Tuple[asyncio.AbstractEventLoop, threading.Thread]:
    """Run a new event loop forever on a daemon thread called ``name``.

    ``setup(loop)`` runs first on that thread, with the loop as the thread's current one (tornado finds it
    there); this returns once it is done. If it raises, the loop is closed, the thread has ended and the
    exception is raised here, to the caller.
    """
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    failure: List[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            setup(loop)
        except BaseException as exc:  # reported to the caller
            failure.append(exc)
            loop.close()
            ready.set()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            except Exception:  # noqa: BLE001 - the loop closes either way
                pass
            loop.close()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    ready.wait()
    if failure:
        thread.join()
        raise failure[0]
    return loop, thread
