"""PLACEHOLDER written by the lead so that other modules can import it; the SDK-core helper replaces it."""
from __future__ import annotations

from iot_device_sdk_python.service.i_service import IService


class AbstractService(IService):
    def __init__(self) -> None:
        self._iot_device = None
        self._service_id = ""
        self._writeable_prop2field: dict = {}
        self._readable_prop2field: dict = {}
        self._command2method: dict = {}

    def on_read(self, properties):
        return {}

    def on_write(self, properties):
        raise NotImplementedError

    def on_command(self, command):
        raise NotImplementedError

    def on_event(self, device_event) -> None:
        return None
