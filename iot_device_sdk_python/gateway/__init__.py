"""Gateways and their sub-devices (upstream ``iot_device_sdk_python.gateway``).

Upstream module paths are the API (``gateway.abstract_gateway.AbstractGateway`` ...); the main names are
also importable from here.
"""
from iot_device_sdk_python.gateway.abstract_gateway import AbstractGateway
from iot_device_sdk_python.gateway.gtw_operate_sub_device_listener import GtwOperateSubDeviceListener
from iot_device_sdk_python.gateway.sub_dev_discovery_listener import SubDevDiscoveryListener
from iot_device_sdk_python.gateway.sub_devices_persistence import MemorySubDevicesPersistence, SubDevicesPersistence

__all__ = ["AbstractGateway", "GtwOperateSubDeviceListener", "MemorySubDevicesPersistence",
           "SubDevDiscoveryListener", "SubDevicesPersistence"]
