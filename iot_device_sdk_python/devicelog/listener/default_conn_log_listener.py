"""Reports connection events to ``$log`` (upstream ``devicelog.listener.default_conn_log_listener``)."""
from __future__ import annotations

from iot_device_sdk_python.devicelog.device_log_service import DeviceLogService
from iot_device_sdk_python.protocol import codec
from iot_device_sdk_python.transport.connect_listener import ConnectListener


class DefaultConnLogListener(ConnectListener):
    """On connect: "connect complete" plus each loss recorded since the last report (each reported once)."""

    def __init__(self, device_log_service: DeviceLogService) -> None:
        self._device_log_service = device_log_service

    def connection_lost(self, cause: str) -> None:
        self._device_log_service._record("_connect_lost_dict", f"connect lost, the reason is {cause}")

    def connect_complete(self, reconnect: bool, server_uri: str) -> None:
        svc = self._device_log_service
        svc.report_device_log(str(codec.now_ms()), "DEVICE_STATUS", f"connect complete, the uri is {server_uri}")
        for ts, text in svc._take("_connect_lost_dict").items():
            svc.report_device_log(ts, "DEVICE_STATUS", text)
