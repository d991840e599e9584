"""Listener for the platform's answers to the gateway's add/delete requests."""
from __future__ import annotations

import logging

from iot_device_sdk_python.gateway.gtw_operate_sub_device_listener import (GtwAddSubDeviceRsp, GtwDelSubDeviceRsp,
                                                                           GtwOperateSubDeviceListener)

_logger = logging.getLogger(__name__)


class GtwOpSubDeviceListener(GtwOperateSubDeviceListener):
    """Logs the answers and tells the gateway about refused children (their pending logins fail).

    Created sub-devices need no action here: the platform also sends ``add_sub_device_notify``, which
    updates the persistence and completes the pending logins.
    """

    def __init__(self, gateway) -> None:
        self._gateway = gateway

    def on_add_sub_device_rsp(self, gtw_add_sub_device_rsp: GtwAddSubDeviceRsp, event_id: str) -> None:
        _logger.info("add sub devices %s: %d created, %d refused", event_id,
                     len(gtw_add_sub_device_rsp.successful_devices),
                     len(gtw_add_sub_device_rsp.add_sub_device_failed_reasons))
        for reason in gtw_add_sub_device_rsp.add_sub_device_failed_reasons:
            _logger.warning("sub device %s not added: %s %s", reason.node_id, reason.error_code, reason.error_msg)
        self._gateway.on_add_refused(gtw_add_sub_device_rsp.add_sub_device_failed_reasons)

    def on_del_sub_device_rsp(self, gtw_del_sub_device_rsp: GtwDelSubDeviceRsp, event_id: str) -> None:
        _logger.info("delete sub devices %s: %d deleted, %d refused", event_id,
                     len(gtw_del_sub_device_rsp.successful_devices), len(gtw_del_sub_device_rsp.failed_devices))
        for reason in gtw_del_sub_device_rsp.failed_devices:
            _logger.warning("sub device %s not deleted: %s %s", reason.device_id, reason.error_code, reason.error_msg)
        self._gateway.on_delete_refused(gtw_del_sub_device_rsp.failed_devices)
