"""A small Huawei Cloud IoTDA device SDK for MicroPython boards (ESP32, RP2040 W, unix port...).

Import from :mod:`iot_device_sdk_micropython.client`. Runs with the board's own modules only
(``socket``, ``json``, ``hashlib``, ``binascii``, optional ``ssl``, ``select`` and ``_thread``); MQTT goes
through ``umqtt.simple`` when the board has it, else through the bundled :mod:`.mqtt.simple_mqtt`.
"""

__version__ = "1.0.0"
