"""Huawei Cloud IoTDA device SDK for Python.

Upstream module paths still work (``from iot_device_sdk_python.iot_device import IotDevice``); the most
used names are also re-exported here: ``from iot_device_sdk_python import IotDevice, ClientConf, ...``.
"""
import logging

logging.getLogger(__name__).addHandler(logging.NullHandler())

from iot_device_sdk_python.client.client_conf import ClientConf  # noqa: E402
from iot_device_sdk_python.client.connect_auth_info import ConnectAuthInfo  # noqa: E402
from iot_device_sdk_python.client.device_client import DeviceClient  # noqa: E402
from iot_device_sdk_python.client.iot_result import FAIL, SUCCESS, TIMEOUT, IotResult  # noqa: E402
from iot_device_sdk_python.client.listener.broadcast_listener import BroadcastListener  # noqa: E402
from iot_device_sdk_python.client.listener.command_listener import CommandListener  # noqa: E402
from iot_device_sdk_python.client.listener.default_publish_action_listener import DefaultPublishActionListener  # noqa: E402
from iot_device_sdk_python.client.listener.device_message_listener import DeviceMessageListener  # noqa: E402
from iot_device_sdk_python.client.listener.device_shadow_listener import DeviceShadowListener  # noqa: E402
from iot_device_sdk_python.client.listener.property_listener import PropertyListener  # noqa: E402
from iot_device_sdk_python.client.listener.raw_device_message_listener import RawDeviceMessageListener  # noqa: E402
from iot_device_sdk_python.client.mqtt_connect_conf import MqttConnectConf  # noqa: E402
from iot_device_sdk_python.client.mqtt_v5_data import MqttV5Data  # noqa: E402
from iot_device_sdk_python.client.request.command import Command  # noqa: E402
from iot_device_sdk_python.client.request.command_response import CommandRsp  # noqa: E402
from iot_device_sdk_python.client.request.device_base_info import DeviceBaseInfo  # noqa: E402
from iot_device_sdk_python.client.request.device_event import DeviceEvent  # noqa: E402
from iot_device_sdk_python.client.request.device_events import DeviceEvents  # noqa: E402
from iot_device_sdk_python.client.request.device_message import DeviceMessage  # noqa: E402
from iot_device_sdk_python.client.request.props_get import PropsGet  # noqa: E402
from iot_device_sdk_python.client.request.props_set import PropSet  # noqa: E402
from iot_device_sdk_python.client.request.raw_device_message import RawDeviceMessage  # noqa: E402
from iot_device_sdk_python.client.request.service_property import ServiceProperty  # noqa: E402
from iot_device_sdk_python.client.request.shadow_data import ShadowData  # noqa: E402
from iot_device_sdk_python.bootstrap.bootstrap_client import BootstrapError  # noqa: E402
from iot_device_sdk_python.errors import (  # noqa: E402
    ConnectError, ConnectRefusedError, ConnectTimeoutError, IotDeviceError, IotTimeoutError)
from iot_device_sdk_python.deviceconfig.device_config_listener import DeviceConfigListener  # noqa: E402
from iot_device_sdk_python.filemanager.file_manager_service import FileTransferError  # noqa: E402
from iot_device_sdk_python.gateway.abstract_gateway import AbstractGateway  # noqa: E402
from iot_device_sdk_python.gateway.gtw_operate_sub_device_listener import GtwOperateSubDeviceListener  # noqa: E402
from iot_device_sdk_python.gateway.sub_devices_persistence import (  # noqa: E402
    MemorySubDevicesPersistence, SubDevicesPersistence)
from iot_device_sdk_python.iot_device import IotDevice  # noqa: E402
from iot_device_sdk_python.ota.ota_service import OTADownloadError  # noqa: E402
from iot_device_sdk_python.rule.rule_parser import RuleParseError  # noqa: E402
from iot_device_sdk_python.service.abstract_device import AbstractDevice  # noqa: E402
from iot_device_sdk_python.service.abstract_service import AbstractService, command  # noqa: E402
from iot_device_sdk_python.service.property import Property  # noqa: E402
from iot_device_sdk_python.transfer.http_transfer import TransferError  # noqa: E402
from iot_device_sdk_python.transport.action_listener import ActionListener  # noqa: E402
from iot_device_sdk_python.transport.connect_action_listener import ConnectActionListener  # noqa: E402
from iot_device_sdk_python.transport.connect_listener import ConnectListener  # noqa: E402
from iot_device_sdk_python.transport.publish_handle import PublishError, PublishHandle  # noqa: E402
from iot_device_sdk_python.transport.raw_message import RawMessage  # noqa: E402
from iot_device_sdk_python.transport.raw_message_listener import RawMessageListener  # noqa: E402
from iot_device_sdk_python.tunnel.tunnel_listener import TunnelListener  # noqa: E402

__version__ = "2.0.0"

__all__ = [
    "ActionListener", "AbstractDevice", "BroadcastListener", "DeviceConfigListener", "AbstractGateway", "GtwOperateSubDeviceListener",
    "MemorySubDevicesPersistence", "SubDevicesPersistence", "AbstractService", "ClientConf", "Command", "CommandListener", "CommandRsp",
    "ConnectActionListener", "ConnectAuthInfo", "ConnectListener", "DefaultPublishActionListener", "DeviceBaseInfo",
    "DeviceClient", "DeviceEvent", "DeviceEvents", "DeviceMessage", "DeviceMessageListener", "DeviceShadowListener",
    "FAIL", "IotDevice", "IotResult", "MqttConnectConf", "MqttV5Data", "Property", "PropertyListener", "PropSet", "PropsGet",
    "PublishError", "PublishHandle", "RawDeviceMessage", "RawDeviceMessageListener", "RawMessage",
    "RawMessageListener", "SUCCESS", "ServiceProperty", "ShadowData", "TIMEOUT", "TunnelListener", "command",
    # the error family (iot_device_sdk_python.errors)
    "IotDeviceError", "ConnectError", "ConnectRefusedError", "ConnectTimeoutError", "IotTimeoutError",
    "BootstrapError", "FileTransferError", "OTADownloadError", "RuleParseError", "TransferError",
]
