"""Time sync (NTP-like): ask the platform for its time and compute the device's corrected clock.

synced time (ms) = (server_recv_time + server_send_time + device_recv_time - device_send_time) / 2
"""
from __future__ import annotations

import datetime as _dt
from typing import List, Optional

from iot_device_sdk_python.timesync.time_sync_listener import TimeSyncListener
from iot_device_sdk_python.utils import iot_util

from iot_device_demo.common import Demo, main_guard, say


class NtpSampleListener(TimeSyncListener):
    def on_time_sync_response(self, device_send_time: int, server_recv_time: int, server_send_time: int) -> None:
        device_recv_time = iot_util.get_gmt_timestamp()
        now_ms = (server_recv_time + server_send_time + device_recv_time - device_send_time) / 2
        offset = now_ms - device_recv_time
        when = _dt.datetime.fromtimestamp(now_ms / 1000, _dt.timezone.utc).isoformat(timespec="milliseconds")
        say(f"[device] time sync: platform time {when} (local clock off by {offset:+.0f} ms, "
              f"round trip {device_recv_time - device_send_time} ms)")


def _add_arguments(parser) -> None:
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between time syncs (default 5)")


def main(argv: Optional[List[str]] = None) -> int:
    with Demo("Time sync: compute the device time from the platform's.", argv, name="ntp_sample",
              add_arguments=_add_arguments) as demo:
        device = demo.create_device()
        time_sync = device.get_time_sync_service()
        time_sync.set_listener(NtpSampleListener())
        demo.connect(device)

        def sync() -> None:
            time_sync.request_time_sync()
            say("[device] time sync requested")

        demo.device_every(demo.args.interval, sync)
        demo.run()
    return 0


if __name__ == "__main__":
    main_guard(main)
