"""The emulator's own statement of IoTDA's device-side protocol.

Written from IoTDA's documentation (``doc/protocol.md`` §2-§3, §6.5), independently of the
device SDK, so that the SDK and the emulator check each other instead of sharing mistakes:

* :mod:`.topics` - every system topic: builders, :func:`~.topics.classify`, MQTT filter matching;
* :mod:`.codec` - JSON payloads and IoTDA's time formats;
* :mod:`.rules` - validation of ``$device_rule`` rule objects before the emulator stores them.

Nothing under ``iotda_emulator`` may import ``iot_device_sdk_python`` (tests/emulator/test_independence.py).
"""
from iotda_emulator.protocol import codec, rules, topics

__all__ = ["codec", "rules", "topics"]
