"""Broadcast messages: subscribe to a ``$oc/broadcast/...`` topic and print what the platform broadcasts.

Local mode: the emulator broadcasts a message on the topic every few seconds (IoTDA's BroadcastMessage).
Cloud mode: call BroadcastMessage (``POST /v5/iot/{project_id}/broadcast-messages``) with this topic.
"""
from __future__ import annotations

from typing import List, Optional

from iot_device_sdk_python import BroadcastListener

from iot_device_demo.common import Demo, main_guard, say

TOPIC = "$oc/broadcast/test"


class BroadcastPrinter(BroadcastListener):
    def on_broadcast_message(self, topic: str, payload: bytes) -> None:
        say(f"[device] broadcast on {topic}: {payload.decode('utf-8', 'replace')}")


def _add_arguments(parser) -> None:
    parser.add_argument("--topic", default=TOPIC, help=f"the broadcast topic to subscribe to (default {TOPIC})")


def main(argv: Optional[List[str]] = None) -> int:
    with Demo("Broadcast messages: subscribe and receive.", argv, name="broadcast_sample",
              add_arguments=_add_arguments) as demo:
        device = demo.create_device()
        device.get_client().subscribe_broadcast(demo.args.topic, BroadcastPrinter())
        demo.connect(device)
        count = [0]

        def platform_side() -> None:
            count[0] += 1
            text = f"broadcast #{count[0]} to every subscriber"
            record = demo.emulator.service("$broadcast").broadcast(demo.args.topic, text.encode())
            say(f"[platform] broadcast {record['message_id'][:8]} to {len(record['subscribers'])} device(s): {text}")

        demo.every(2.0, platform_side)
        demo.run()
    return 0


if __name__ == "__main__":
    main_guard(main)
