"""Custom topics: subscribe to ``$oc/devices/{id}/user/...`` with a listener and publish raw messages on it.

The subscription survives reconnects (the SDK restores it). Local mode: the emulator publishes on the topic
every few seconds and prints what the device publishes.
"""
from __future__ import annotations

import itertools
from typing import List, Optional

from iot_device_sdk_python.protocol import topics
from iot_device_sdk_python.transport.raw_message import RawMessage
from iot_device_sdk_python.transport.raw_message_listener import RawMessageListener

from iot_device_demo.common import Demo, main_guard, say

TOPIC_DOWN = "sub"      # custom topics of the product: subscribe permission ...
TOPIC_UP = "pub"        # ... and publish permission


class CustomTopicListener(RawMessageListener):
    def on_message_received(self, message: RawMessage) -> None:
        payload = message.payload
        text = payload.decode("utf-8", "replace") if isinstance(payload, (bytes, bytearray)) else payload
        say(f"[device] received on {message.topic}: {text}")


def _add_arguments(parser) -> None:
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between messages (default 3)")


def main(argv: Optional[List[str]] = None) -> int:
    with Demo("Custom topics: subscribe_topic and publish_raw_message.", argv, name="custom_topic_sample",
              add_arguments=_add_arguments) as demo:
        device = demo.create_device()
        client = device.get_client()
        down = topics.user_topic(demo.device_id, TOPIC_DOWN)
        up = topics.user_topic(demo.device_id, TOPIC_UP)
        client.subscribe_topic(down, 1, CustomTopicListener())   # before connect is fine: made on connect
        demo.connect(device)

        seq = itertools.count(1)

        def publish() -> None:
            text = f"hello custom topic {next(seq)}"
            client.publish_raw_message(RawMessage(up, text, 1))
            say(f"[device] published on {up}: {text}")

        demo.device_every(demo.args.interval, publish)

        pseq = itertools.count(1)

        def platform_side() -> None:
            text = f"platform says hi {next(pseq)}"
            demo.emulator.send_message(demo.device_id, text, topic=down)
            say(f"[platform] published on {down}: {text}")

        demo.every(demo.args.interval, platform_side, first_delay=1.0)
        demo.run()
    return 0


if __name__ == "__main__":
    main_guard(main)
