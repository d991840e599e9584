"""Device configuration (upstream ``client.client_conf``)."""
from __future__ import annotations

from typing import Optional

from iot_device_sdk_python.client.connect_auth_info import ConnectAuthInfo
from iot_device_sdk_python.client.mqtt_connect_conf import MqttConnectConf


class ClientConf:
    """Pairs a :class:`ConnectAuthInfo` with a :class:`MqttConnectConf` (a default one when None)."""

    def __init__(self, connect_auth_info: ConnectAuthInfo, mqtt_connect_conf: Optional[MqttConnectConf] = None) -> None:
        self._connect_auth_info = connect_auth_info
        self._mqtt_connect_conf = mqtt_connect_conf if mqtt_connect_conf is not None else MqttConnectConf()

    @property
    def connect_auth_info(self) -> ConnectAuthInfo:
        return self._connect_auth_info

    @connect_auth_info.setter
    def connect_auth_info(self, value: ConnectAuthInfo) -> None:
        self._connect_auth_info = value

    @property
    def mqtt_connect_conf(self) -> MqttConnectConf:
        return self._mqtt_connect_conf

    @mqtt_connect_conf.setter
    def mqtt_connect_conf(self, value: Optional[MqttConnectConf]) -> None:
        self._mqtt_connect_conf = value if value is not None else MqttConnectConf()
