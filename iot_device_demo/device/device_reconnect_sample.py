"""Reconnection and offline buffering.

The SDK reconnects by itself with exponential backoff and full jitter (min_backoff..max_backoff ms), restores
its subscriptions, calls ``connect_complete(reconnect=True, ...)`` and then sends the messages reported while
offline (up to ``max_buffer_message``). Local mode: the emulator cuts the device's link every few seconds.
"""
from __future__ import annotations

import itertools
from typing import List, Optional

from iot_device_sdk_python.client.request.device_message import DeviceMessage
from iot_device_sdk_python.transport.connect_listener import ConnectListener

from iot_device_demo.common import Demo, main_guard, say


class ReconnectSampleListener(ConnectListener):
    def connection_lost(self, cause: str) -> None:
        say(f"[device] connection lost: {cause}; the SDK reconnects with backoff")

    def connect_complete(self, reconnect: bool, server_uri: str) -> None:
        say(f"[device] connect complete (reconnect={reconnect}) to {server_uri}")


def _tell_delivery(n: int, handle) -> None:
    """Called when a buffered message's handle resolves (PUBACK after the reconnect, or failure)."""
    error = handle.exception(0)
    say(f"[device] buffered message {n} " + ("delivered" if error is None else f"not delivered ({error})"))


def _add_arguments(parser) -> None:
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between messages (default 1)")
    parser.add_argument("--cut-every", type=float, default=4.0,
                        help="local mode: the emulator cuts the link every N seconds (default 4)")


def main(argv: Optional[List[str]] = None) -> int:
    with Demo("Reconnect with backoff and offline buffering.", argv, name="device_reconnect_sample",
              add_arguments=_add_arguments) as demo:
        device = demo.create_device(reconnect_on_failure=True, min_backoff=1000, max_backoff=30000,
                                    max_buffer_message=100)
        client = device.get_client()
        client.add_connect_listener(ReconnectSampleListener())   # before connect: sees the first connection too
        demo.connect(device)

        seq = itertools.count(1)

        def report() -> None:
            n = next(seq)
            msg = DeviceMessage()
            msg.content = f"message {n}"
            # offline, the message waits in the buffer and is sent after the reconnect; the handle tells when
            offline = not client.is_connected()
            handle = client.report_device_message(msg)
            say(f"[device] reported message {n}" + (" (offline: buffered)" if offline else ""))
            if offline:
                handle.add_done_callback(lambda h, n=n: _tell_delivery(n, h))

        demo.device_every(demo.args.interval, report)

        def cut() -> None:
            say("[platform] cutting the device's link")
            demo.emulator.cut(demo.device_id)

        demo.every(demo.args.cut_every, cut, first_delay=min(2.0, demo.args.cut_every))
        demo.run()
    return 0


if __name__ == "__main__":
    main_guard(main)
