"""The SDK entry point (upstream ``iot_device``)."""
from __future__ import annotations

import logging
from types import TracebackType
from typing import TYPE_CHECKING, List, Optional, Type

from iot_device_sdk_python.client.client_conf import ClientConf
from iot_device_sdk_python.client.connect_auth_info import ConnectAuthInfo
from iot_device_sdk_python.client.device_client import DeviceClient
from iot_device_sdk_python.service.abstract_device import AbstractDevice

if TYPE_CHECKING:
    from iot_device_sdk_python.filemanager.file_manager_service import FileManagerService
    from iot_device_sdk_python.ota.ota_service import OTAService
    from iot_device_sdk_python.rule.rule_manage_service import RuleManageService
    from iot_device_sdk_python.service.abstract_service import AbstractService
    from iot_device_sdk_python.timesync.time_sync_service import TimeSyncService
    from iot_device_sdk_python.transport.publish_handle import PublishHandle

_logger = logging.getLogger(__name__)


class IotDevice(AbstractDevice):
    """A device directly connected to IoTDA.

    Example::

        device = IotDevice.create_by_secret("iot-mqtts.example.com", 8883, "my_device", "secret", "root.pem")
        if device.connect() == 0:
            device.add_service("smokeDetector", SmokeDetectorService())

    or, connecting and destroying around a block (raising when the connection fails)::

        with IotDevice.create_by_secret(...) as device:
            device.get_client().report_properties([ServiceProperty("smokeDetector", {"alarm": 1})]).result(10)
    """

    def __init__(self, client_conf: ClientConf) -> None:
        super().__init__(client_conf)

    def connect(self, raise_on_failure: bool = False) -> int:
        """Connect; 0 on success, else an error code (4/5 credential refusals, -1 network/timeout,
        -2 local configuration; see ``MqttConnection``).

        Opt-in (beyond upstream): ``connect(raise_on_failure=True)`` returns 0 or raises an
        :class:`~iot_device_sdk_python.errors.IotDeviceError`: ``ConnectRefusedError`` (``.code`` is the
        CONNACK code, ``.reason`` says why), ``ConnectTimeoutError``, ``ConnectError`` (``.code`` -1 or -2)
        or ``BootstrapError``."""
        return super().connect(raise_on_failure)

    def __enter__(self) -> "IotDevice":
        """``with IotDevice(...) as device:`` connects (raising like ``connect(raise_on_failure=True)``) and
        destroys the device when the block ends. A failed connect destroys it before raising, so no
        background reconnection outlives the ``with`` statement."""
        try:
            self.connect(raise_on_failure=True)
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.destroy()

    def get_client(self) -> DeviceClient:
        """The :class:`DeviceClient` for reports, responses and listeners."""
        return super().get_client()

    def get_ota_service(self) -> "OTAService":
        return super().get_ota_service()

    def get_time_sync_service(self) -> "TimeSyncService":
        return super().get_time_sync_service()

    def get_file_manager_service(self) -> "FileManagerService":
        return super().get_file_manager_service()

    def get_rule_manage_service(self) -> "RuleManageService":
        return super().get_rule_manage_service()

    def destroy(self) -> None:
        """Disconnect for good and stop every thread and timer of this device."""
        super().destroy()

    def add_service(self, service_id: str, device_service: "AbstractService") -> None:
        super().add_service(service_id, device_service)

    def get_service(self, service_id: str) -> Optional["AbstractService"]:
        return super().get_service(service_id)

    def fire_properties_changed(self, service_id: str, properties: List[str]) -> Optional["PublishHandle"]:
        return super().fire_properties_changed(service_id, properties)

    def fire_services_changed(self, service_ids: List[str]) -> Optional["PublishHandle"]:
        return super().fire_services_changed(service_ids)

    @staticmethod
    def create_by_secret(server_uri: str, port: int, device_id: str, secret: str,
                         iot_cert_file: Optional[str] = "") -> "IotDevice":
        """A device using secret authentication (``iot_cert_file``: CA of the platform; "" or None = system CAs)."""
        info = ConnectAuthInfo()
        info.server_uri = server_uri
        info.port = port
        info.id = device_id
        info.secret = secret
        info.iot_cert_path = iot_cert_file or None
        info.auth_type = ConnectAuthInfo.SECRET_AUTH
        return IotDevice(ClientConf(info))

    @staticmethod
    def create_by_certificate(server_uri: str, port: int, device_id: str, cert_path: str, key_path: str,
                              iot_cert_file: Optional[str]) -> "IotDevice":
        """A device using X.509 client-certificate authentication (over TLS)."""
        info = ConnectAuthInfo()
        info.server_uri = server_uri
        info.port = port
        info.id = device_id
        info.cert_path = cert_path
        info.key_path = key_path
        info.iot_cert_path = iot_cert_file or None
        info.auth_type = ConnectAuthInfo.X509_AUTH
        return IotDevice(ClientConf(info))
