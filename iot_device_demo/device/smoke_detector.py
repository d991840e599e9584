"""Profile-oriented programming: a smoke detector described as a service of the product model.

Service ``smokeDetector``: ``alarm`` (int, writable), ``smokeConcentration``, ``humidity``, ``temperature``
(read-only) and the command ``ringAlarm`` (handled by the method ``alarm``). The SDK answers property reads,
writes and commands for it, and reports every readable property every ``--interval`` seconds.

Local mode: the emulator (platform side) sends ``ringAlarm``, writes ``alarm``, reads the properties back and
shows what it received.
"""
from __future__ import annotations

import random
import threading
from typing import List, Optional

from iot_device_sdk_python.client.request.command_response import CommandRsp
from iot_device_sdk_python.service.abstract_service import AbstractService
from iot_device_sdk_python.service.property import Property

from iot_device_demo.common import Demo, PLATFORM_TIMEOUT, main_guard, print_json, say

SERVICE_ID = "smokeDetector"


class SmokeDetectorService(AbstractService):
    """The ``smokeDetector`` service: properties via get_/set_<field_name>, commands via ``_command2method``."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.smoke_alarm = Property(val=20, field_name="smoke_alarm", prop_name="alarm", writeable=True)
        self.concentration = Property(val=0.0, field_name="concentration", prop_name="smokeConcentration",
                                      writeable=False)
        self.humidity = Property(val=0, field_name="humidity", prop_name="humidity", writeable=False)
        self.temperature = Property(val=10.0, field_name="temperature", prop_name="temperature", writeable=False)
        self._command2method = {"ringAlarm": "alarm"}
        for prop in (self.smoke_alarm, self.concentration, self.humidity, self.temperature):
            self._readable_prop2field[prop.prop_name] = prop.field_name
            if prop.writeable:
                self._writeable_prop2field[prop.prop_name] = prop.field_name

    # ---- command ----------------------------------------------------------------------------

    def alarm(self, paras: dict) -> CommandRsp:
        duration = (paras or {}).get("duration")
        say(f"[device] ringAlarm: ringing the alarm for {duration} s")
        rsp = CommandRsp()
        rsp.result_code = CommandRsp.success_code()
        rsp.response_name = "ringAlarm"
        rsp.paras = {"result": "ring success"}
        return rsp

    # ---- properties (getters simulate sensor readings) -------------------------------------------

    def get_smoke_alarm(self) -> int:
        with self._lock:
            return self.smoke_alarm.val

    def set_smoke_alarm(self, value: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError("alarm must be an integer")
        with self._lock:
            self.smoke_alarm.val = value
        say(f"[device] alarm set to {value}")

    def get_concentration(self) -> float:
        with self._lock:
            self.concentration.val = round(random.uniform(0.0, 100.0), 1)
            return self.concentration.val

    def get_humidity(self) -> int:
        with self._lock:
            self.humidity.val = random.randint(30, 80)
            return self.humidity.val

    def get_temperature(self) -> float:
        with self._lock:
            self.temperature.val = round(random.uniform(15.0, 35.0), 1)
            return self.temperature.val


def _add_arguments(parser) -> None:
    parser.add_argument("--interval", type=int, default=5, help="seconds between automatic reports (default 5)")
    parser.add_argument("--platform-interval", type=float, default=4.0,
                        help="local mode: seconds between platform requests (default 4)")


def run(demo: Demo) -> None:
    """Connect the smoke detector, drive it from the platform side (local mode), run until stopped."""
    device = demo.create_device()
    service = SmokeDetectorService()
    device.add_service(SERVICE_ID, service)
    demo.connect(device)
    service.enable_auto_report(demo.args.interval)
    service.fire_properties_changed([])   # one report right away; then every --interval s
    say(f"[device] smokeDetector reports its properties every {demo.args.interval} s")

    step = {"n": 0}

    def platform_side() -> None:
        step["n"] += 1
        n = step["n"]
        if n % 3 == 1:
            paras = {"duration": 20}
            print_json("[platform] -> command smokeDetector/ringAlarm", paras)
            print_json("[platform] <- command response", demo.emulator.send_command(
                demo.device_id, SERVICE_ID, "ringAlarm", paras, timeout=PLATFORM_TIMEOUT))
        elif n % 3 == 2:
            services = [{"service_id": SERVICE_ID, "properties": {"alarm": n}}]
            print_json("[platform] -> set properties", services)
            print_json("[platform] <- set result", demo.emulator.set_properties(
                demo.device_id, services, timeout=PLATFORM_TIMEOUT))
        else:
            say("[platform] -> get properties smokeDetector")
            print_json("[platform] <- properties", demo.emulator.get_properties(
                demo.device_id, SERVICE_ID, timeout=PLATFORM_TIMEOUT))

    demo.every(demo.args.platform_interval, platform_side, first_delay=1.0)

    if demo.emulator is not None:
        # show the device's own reports as the platform receives them
        from iot_device_sdk_python.protocol import topics
        seen = {"last_id": 0}

        def show_reports() -> None:
            for e in demo.emulator.core.trace(device_id=demo.device_id, direction="up", kind=topics.PROPERTIES_REPORT,
                                              since_id=seen["last_id"]):
                say(f"[platform] <- property report {e.payload.decode('utf-8', 'replace')}")
                seen["last_id"] = e.id

        demo.every(1.0, show_reports, first_delay=1.0, name="platform-trace")
    demo.run()
    service.disable_auto_report()


def main(argv: Optional[List[str]] = None) -> int:
    with Demo("Profile-oriented smoke detector with automatic property reports.", argv, name="smoke_detector",
              add_arguments=_add_arguments) as demo:
        run(demo)
    return 0


if __name__ == "__main__":
    main_guard(main)
