"""Small helpers for the SDK tests."""
from __future__ import annotations

import threading
from typing import List

from iot_device_sdk_python.transport.action_listener import ActionListener
from tests.waiting import wait_until  # noqa: F401 (re-exported to the tests of this folder)


class Recorder(ActionListener):
    """An ActionListener that records outcomes and the thread they ran on."""

    def __init__(self):
        self.successes: List[str] = []
        self.failures: List[tuple] = []
        self.threads: List[str] = []
        self.event = threading.Event()

    def on_success(self, message):
        self.successes.append(message)
        self.threads.append(threading.current_thread().name)
        self.event.set()

    def on_failure(self, message, e):
        self.failures.append((message, e))
        self.threads.append(threading.current_thread().name)
        self.event.set()


def sdk_threads() -> List[threading.Thread]:
    """Threads started by the SDK (dispatcher, reconnect, scheduler, paho clients of devices)."""
    out = []
    for t in threading.enumerate():
        name = t.name
        if name.startswith(("iot-", "MqttThread")) or (name.startswith("paho-mqtt-client-")
                                                         and "iotda-emulator" not in name):
            out.append(t)
    return out
