"""Listener for the platform's answers to ``gtw_add_sub_device`` / ``gtw_del_sub_device``."""
from __future__ import annotations

from abc import ABCMeta, abstractmethod

# Re-exported here because upstream code (the gateway demo) imports them from this module.
from iot_device_sdk_python.gateway.requests.gtw_add_sub_device_rsp import GtwAddSubDeviceRsp
from iot_device_sdk_python.gateway.requests.gtw_del_sub_device_rsp import GtwDelSubDeviceRsp

__all__ = ["GtwOperateSubDeviceListener", "GtwAddSubDeviceRsp", "GtwDelSubDeviceRsp"]


class GtwOperateSubDeviceListener(metaclass=ABCMeta):
    """Receives ``add_sub_device_response`` and ``delete_sub_device_response`` (dispatcher thread)."""

    @abstractmethod
    def on_add_sub_device_rsp(self, gtw_add_sub_device_rsp: GtwAddSubDeviceRsp, event_id: str) -> None:
        """The platform answered the add request ``event_id``: created and refused sub-devices."""

    @abstractmethod
    def on_del_sub_device_rsp(self, gtw_del_sub_device_rsp: GtwDelSubDeviceRsp, event_id: str) -> None:
        """The platform answered the delete request ``event_id``: deleted and refused sub-devices."""
