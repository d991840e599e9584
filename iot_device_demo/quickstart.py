"""``make demo``: start the local IoTDA emulator, register a device and run the smoke-detector demo against it.

Shows traffic both ways: the device's automatic property reports as the platform receives them, and the
platform's commands and property requests with the device's answers. Runs about 20 s (``--duration``) or until
Ctrl-C. Any option of the demos works here too, e.g. ``--duration 60`` or ``--interval 2``.
"""
from __future__ import annotations

from typing import List, Optional

from iot_device_demo.common import Demo, main_guard, say
from iot_device_demo.device import smoke_detector

DEFAULT_DURATION = 20.0


def main(argv: Optional[List[str]] = None) -> int:
    def add_arguments(parser) -> None:
        smoke_detector._add_arguments(parser)
        parser.set_defaults(duration=parser.get_default("duration") or DEFAULT_DURATION, interval=3,
                            platform_interval=2.5)

    with Demo("Quick start: the smoke detector on a local IoTDA emulator.", argv, name="quickstart",
              add_arguments=add_arguments) as demo:
        if demo.emulator is not None:
            say(f"[platform] web console: {demo.emulator.http_url}/console")
        smoke_detector.run(demo)
    say("[demo] done. Next: python -m iot_device_demo.<folder>.<name> (see README 'Demos').")
    return 0


if __name__ == "__main__":
    main_guard(main)
