"""MQTT 5 over WebSocket (wss): report messages with MQTT 5 user properties; answer the platform's commands.

Local mode: the device connects to the emulator's WSS listener; the emulator sends a command every few seconds.
Cloud mode: ``--port 443`` (IoTDA's WebSocket port) with the usual ``--server-uri``; add ``--proxy-type http
--proxy-host H --proxy-port P`` when the network only lets a proxy out.
"""
from __future__ import annotations

from typing import List, Optional

from iot_device_sdk_python import CommandListener, CommandRsp, DeviceMessage, MqttConnectConf, MqttV5Data

from iot_device_demo.common import Demo, main_guard, say


def _add_arguments(parser) -> None:
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between reports (default 3)")
    parser.add_argument("--proxy-type", choices=["http", "socks5", "socks4"], default=None,
                        help="reach the platform through this kind of proxy")
    parser.add_argument("--proxy-host", default=None, help="the proxy's host")
    parser.add_argument("--proxy-port", type=int, default=None, help="the proxy's port")


def main(argv: Optional[List[str]] = None) -> int:
    with Demo("MQTT 5 over WebSocket: user properties, reason codes, topic aliases.", argv,
              name="mqtt5_wss_sample", add_arguments=_add_arguments) as demo:
        port = demo.emulator.wss_port if demo.local else (demo.args.port or 443)
        conf = MqttConnectConf()
        conf.protocol_version = MqttConnectConf.MQTT_V5
        conf.topic_alias_maximum = 10
        overrides = dict(transport="websockets", port=port)
        if demo.args.proxy_type:
            overrides.update(proxy_type=demo.args.proxy_type, proxy_host=demo.args.proxy_host,
                             proxy_port=demo.args.proxy_port)
        device = demo.create_device(mqtt_conf=conf, **overrides)
        client = device.get_client()

        class Echo(CommandListener):
            def on_command(self, request_id, service_id, command_name, paras):
                say(f"[device] command {command_name} {paras}")
                client.respond_command(request_id, CommandRsp(0, "ok", {"echo": paras}))

        client.set_command_listener(Echo())
        say(f"[device] MQTT 5 over wss://{demo.server_uri}:{port}/mqtt")
        demo.connect(device)
        count = [0]

        def report() -> None:
            count[0] += 1
            msg = DeviceMessage()
            msg.content = f"hello over MQTT 5 and WSS #{count[0]}"
            props = MqttV5Data(user_properties=[("sample", "mqtt5_wss"), ("seq", str(count[0]))],
                               content_type="application/json")
            client.report_device_message(msg, v5_data=props)
            say(f"[device] reported: {msg.content}")

        demo.device_every(demo.args.interval, report)

        def platform_side() -> None:
            rsp = demo.emulator.send_command(demo.device_id, "demo", "ping", {"n": count[0]})
            say(f"[platform] command response: {rsp}")

        demo.every(demo.args.interval, platform_side, first_delay=1.0)
        demo.run()
    return 0


if __name__ == "__main__":
    main_guard(main)
