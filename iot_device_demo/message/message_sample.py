"""Messages: report on the system topic, on a custom ``$oc/devices/{id}/user/...`` topic, on a policy topic,
and a binary payload; print messages the platform sends down.

Local mode: the emulator sends a message down every few seconds.
"""
from __future__ import annotations

from typing import List, Optional

from iot_device_sdk_python.client.listener.device_message_listener import DeviceMessageListener
from iot_device_sdk_python.client.request.device_message import DeviceMessage
from iot_device_sdk_python.protocol import topics
from iot_device_sdk_python.transport.raw_message import RawMessage

from iot_device_demo.common import Demo, main_guard, say

USER_TOPIC_NAME = "wpy"                 # a custom topic defined in the product (publish permission)
POLICY_TOPIC = "policy/topic/a"         # a non-$oc topic allowed by a topic policy on the cloud


class MessageSampleListener(DeviceMessageListener):
    def on_device_message(self, message: DeviceMessage) -> None:
        say(f"[device] message from the platform: id={message.id} name={message.name} content={message.content}")


def _add_arguments(parser) -> None:
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between rounds of messages (default 3)")
    parser.add_argument("--policy-topic", default=None,
                        help=f"cloud mode: a topic allowed by a topic policy, e.g. {POLICY_TOPIC} (default: skipped; "
                             "locally policy/{device id}/a)")


def main(argv: Optional[List[str]] = None) -> int:
    with Demo("Messages: system topic, custom topic, policy topic, binary payload.", argv, name="message_sample",
              add_arguments=_add_arguments) as demo:
        device = demo.create_device()
        client = device.get_client()
        client.set_device_msg_listener(MessageSampleListener())
        demo.connect(device)
        user_topic = topics.user_topic(demo.device_id, USER_TOPIC_NAME)
        if demo.local:
            # locally, a topic policy lets every device use policy/{its id}/... (on the cloud: --policy-topic)
            demo.emulator.add_topic_policy("policy/%u/#")
            demo.args.policy_topic = f"policy/{demo.device_id}/a"

        def report() -> None:
            msg = DeviceMessage()
            msg.content = "hello, system topic"
            client.report_device_message(msg)
            say("[device] system topic: hello, system topic")
            client.publish_raw_message(RawMessage(user_topic, "hello raw message", 1))
            say(f"[device] custom topic {user_topic}: hello raw message")
            if demo.args.policy_topic:
                client.publish_raw_message(RawMessage(demo.args.policy_topic, "hello policy topic", 1))
                say(f"[device] policy topic {demo.args.policy_topic}: hello policy topic")
            client.publish_raw_message(RawMessage(user_topic, bytes([0x01, 0x02, 0x03, 0xFF]), 1))
            say(f"[device] custom topic {user_topic}: binary 01 02 03 ff")

        demo.device_every(demo.args.interval, report)

        def platform_side() -> None:
            message_id = demo.emulator.send_message(demo.device_id, "hello device", name="greeting",
                                                    standard=True)
            say(f"[platform] sent message {message_id}: hello device")

        demo.every(demo.args.interval, platform_side, first_delay=1.0)
        demo.run()
    return 0


if __name__ == "__main__":
    main_guard(main)
