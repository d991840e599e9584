"""Message delivery (downlink): a RawDeviceMessageListener gets every payload on the system topic (text, JSON
in the system format, binary); a custom-topic listener gets messages on ``$oc/devices/{id}/user/#``.

The custom subscription is made once, before connect: the SDK restores it after every reconnect (upstream needed
to re-subscribe inside ``connect_complete``). Local mode: the emulator sends messages of each kind and cuts the
link once, so you can see the custom topic keep working after the reconnect.
"""
from __future__ import annotations

import itertools
from typing import List, Optional

from iot_device_sdk_python.client.listener.raw_device_message_listener import RawDeviceMessageListener
from iot_device_sdk_python.client.request.raw_device_message import RawDeviceMessage
from iot_device_sdk_python.protocol import topics
from iot_device_sdk_python.transport.connect_listener import ConnectListener
from iot_device_sdk_python.transport.raw_message import RawMessage
from iot_device_sdk_python.transport.raw_message_listener import RawMessageListener

from iot_device_demo.common import Demo, main_guard, say


def _describe(payload) -> str:
    data = payload if isinstance(payload, (bytes, bytearray)) else str(payload).encode("utf-8")
    try:
        return repr(bytes(data).decode("utf-8"))
    except UnicodeDecodeError:
        return "binary " + bytes(data).hex(" ")


class RawDeliveryListener(RawDeviceMessageListener):
    def on_raw_device_message(self, message: RawDeviceMessage) -> None:
        system = message.to_device_message()
        if system is not None:
            say(f"[device] system message: id={system.id} name={system.name} content={system.content}")
        else:
            say(f"[device] raw message: {_describe(message.payload)}")


class CustomTopicListener(RawMessageListener):
    def on_message_received(self, message: RawMessage) -> None:
        say(f"[device] custom topic {message.topic}: {_describe(message.payload)}")


class PrintConnect(ConnectListener):
    def connection_lost(self, cause: str) -> None:
        say(f"[device] connection lost: {cause}")

    def connect_complete(self, reconnect: bool, server_uri: str) -> None:
        say(f"[device] connected (reconnect={reconnect}); the SDK restored every subscription")


def _add_arguments(parser) -> None:
    parser.add_argument("--interval", type=float, default=2.0,
                        help="local mode: seconds between platform messages (default 2)")


def main(argv: Optional[List[str]] = None) -> int:
    with Demo("Message delivery: raw and custom-topic downlink.", argv, name="message_delivery_sample",
              add_arguments=_add_arguments) as demo:
        device = demo.create_device()
        client = device.get_client()
        client.set_raw_device_msg_listener(RawDeliveryListener())
        client.add_connect_listener(PrintConnect())
        custom_filter = topics.user_topic(demo.device_id, "#")
        client.subscribe_topic(custom_filter, 1, CustomTopicListener())
        demo.connect(device)
        say(f"[device] listening on the system topic and on {custom_filter}")

        step = itertools.count(1)

        def platform_side() -> None:
            n = next(step)
            emu = demo.emulator
            kind = n % 4
            if kind == 1:
                emu.send_message(demo.device_id, f"system-format message {n}", name="demo", standard=True)
                say(f"[platform] sent system-format message {n}")
            elif kind == 2:
                emu.send_message(demo.device_id, f"plain text {n}")
                say(f"[platform] sent plain text {n}")
            elif kind == 3:
                emu.send_message(demo.device_id, bytes([0xDE, 0xAD, 0xBE, 0xEF, n % 256]))
                say("[platform] sent binary payload")
            else:
                topic = topics.user_topic(demo.device_id, "downlink")
                emu.send_message(demo.device_id, f"custom topic message {n}", topic=topic)
                say(f"[platform] sent on {topic}")
            if n == 4:
                say("[platform] cutting the link once: the custom subscription must survive")
                emu.cut(demo.device_id)

        demo.every(demo.args.interval, platform_side, first_delay=0.5)
        demo.run()
    return 0


if __name__ == "__main__":
    main_guard(main)
