"""Data classes of the gateway layer (upstream ``gateway.requests``), also importable from here."""
from iot_device_sdk_python.gateway.requests.add_sub_device_failed_reason import AddSubDeviceFailedReason
from iot_device_sdk_python.gateway.requests.added_sub_device_info import AddedSubDeviceInfo
from iot_device_sdk_python.gateway.requests.added_sub_device_info_rsp import AddedSubDeviceInfoRsp
from iot_device_sdk_python.gateway.requests.del_sub_device_failed_reason import DelSubDeviceFailedReason
from iot_device_sdk_python.gateway.requests.device_info import DeviceInfo
from iot_device_sdk_python.gateway.requests.device_property import DeviceProperty
from iot_device_sdk_python.gateway.requests.device_status import DeviceStatus
from iot_device_sdk_python.gateway.requests.gtw_add_sub_device_rsp import GtwAddSubDeviceRsp
from iot_device_sdk_python.gateway.requests.gtw_del_sub_device_rsp import GtwDelSubDeviceRsp
from iot_device_sdk_python.gateway.requests.scan_sub_device_notify import ScanSubDeviceNotify
from iot_device_sdk_python.gateway.requests.sub_devices_info import SubDevicesInfo

__all__ = ["AddSubDeviceFailedReason", "AddedSubDeviceInfo", "AddedSubDeviceInfoRsp", "DelSubDeviceFailedReason",
           "DeviceInfo", "DeviceProperty", "DeviceStatus", "GtwAddSubDeviceRsp", "GtwDelSubDeviceRsp",
           "ScanSubDeviceNotify", "SubDevicesInfo"]
