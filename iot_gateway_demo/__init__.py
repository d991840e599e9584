"""Gateway demo: a Tornado TCP server that is an IoTDA gateway for text-protocol child devices.

Run ``python -m iot_gateway_demo.string_tcp_server`` (local emulator by default) and connect children
with ``python -m iot_gateway_demo.tcp_device --node-id sensor1``. The line protocol is described in
:mod:`iot_gateway_demo.session`.
"""
