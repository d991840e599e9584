"""Reports failed connection attempts to ``$log`` (upstream ``devicelog.listener.default_conn_action_log_listener``)."""
from __future__ import annotations

from typing import Optional

from iot_device_sdk_python.devicelog.device_log_service import DeviceLogService
from iot_device_sdk_python.transport.connect_action_listener import ConnectActionListener


class DefaultConnActionLogListener(ConnectActionListener):
    """Records failed attempts; after the next success reports each one once."""

    def __init__(self, device_log_service: DeviceLogService) -> None:
        self._device_log_service = device_log_service

    def on_success(self, token: int) -> None:
        svc = self._device_log_service
        for ts, text in svc._take("_connect_failed_dict").items():
            svc.report_device_log(ts, "DEVICE_STATUS", text)

    def on_failure(self, token: int, err: Optional[Exception]) -> None:
        reason = f"code {token}" if err is None else f"code {token}: {type(err).__name__}: {err}"
        self._device_log_service._record("_connect_failed_dict", f"connect failed, the reason is {reason}")
