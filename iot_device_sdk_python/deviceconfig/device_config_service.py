"""``DeviceConfigService``: the ``$device_config`` system service (IoTDA remote configuration).

The platform sends ``config_update`` (``paras.config_content``: a JSON object) on ``events/down`` and
re-sends it about every 24 h until the device answers ``config_update_response`` with ``result_code``
(0 = applied) and an optional ``description`` (doc/protocol.md §3.7). This service hands the configuration to
the :class:`DeviceConfigListener` and answers for it; without a listener it answers a failure, so the
task shows why nothing happened instead of waiting for its timeout.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, Optional

from iot_device_sdk_python.client.iot_result import IotResult
from iot_device_sdk_python.client.request.device_event import DeviceEvent
from iot_device_sdk_python.deviceconfig.device_config_listener import DeviceConfigListener
from iot_device_sdk_python.service.abstract_service import AbstractService
from iot_device_sdk_python.transport.publish_handle import PublishHandle

_LOG = logging.getLogger(__name__)

#: ``result_code`` answered when the configuration could not be applied by the SDK itself
FAILURE_CODE = 1
#: Longest ``description`` sent back (the platform shows it; an exception text could be long)
_MAX_DESCRIPTION = 256


class DeviceConfigService(AbstractService):
    """The ``$device_config`` service registered on every device (``device.get_device_config_service()``)."""

    _SERVICE_ID = "$device_config"

    def __init__(self) -> None:
        super().__init__()
        self._listener: Optional[DeviceConfigListener] = None

    def get_listener(self) -> Optional[DeviceConfigListener]:
        """The listener set with :meth:`set_listener`, or None."""
        return self._listener

    def set_listener(self, listener: Optional[DeviceConfigListener]) -> None:
        """Set the listener that applies pushed configurations (None removes it)."""
        if listener is not None and not callable(getattr(listener, "on_config_update", None)):
            raise ValueError("listener must have on_config_update(config_content) -> IotResult")
        self._listener = listener

    def on_event(self, device_event: DeviceEvent) -> None:
        """Handle ``config_update`` (dispatcher thread): apply it through the listener and answer the platform."""
        event_type = getattr(device_event, "event_type", None)
        if event_type != "config_update":
            _LOG.warning("unknown $device_config event type %r; ignored", event_type)
            return
        paras = getattr(device_event, "paras", None)
        content = paras.get("config_content") if isinstance(paras, dict) else None
        if not isinstance(content, dict):
            _LOG.warning("config_update without a config_content object; answered as failed")
            result = IotResult(FAILURE_CODE, "config_content is missing or not a JSON object")
        else:
            result = self._apply(content)
        self.report_config_result(result, getattr(device_event, "event_id", "") or "")

    def _apply(self, content: Dict[str, Any]) -> IotResult:
        listener = self._listener
        if listener is None:
            _LOG.warning("config_update received but no DeviceConfigListener is set; answered as failed")
            return IotResult(FAILURE_CODE, "no DeviceConfigListener on the device")
        try:
            result = listener.on_config_update(content)
        except Exception as exc:
            _LOG.exception("DeviceConfigListener failed")
            return IotResult(FAILURE_CODE, f"configuration failed: {type(exc).__name__}: {exc}")
        if not isinstance(result, IotResult) or isinstance(result.result_code, bool) \
                or not isinstance(result.result_code, int):
            _LOG.error("DeviceConfigListener returned %s, not an IotResult; answered as failed", type(result).__name__)
            return IotResult(FAILURE_CODE, "the device's listener returned no result")
        return result

    def report_config_result(self, result: IotResult, event_id: str = "") -> PublishHandle:
        """Send ``config_update_response`` (``result_code``, ``description`` when not empty).

        ``event_id``: the ``config_update``'s, echoed so the platform can match the answer. Called by
        :meth:`on_event`; call it yourself only to answer a configuration applied later (e.g. after a reboot).
        """
        paras: Dict[str, Any] = {"result_code": int(result.result_code)}
        desc = result.result_desc
        if desc:
            paras["description"] = str(desc)[:_MAX_DESCRIPTION]
        device = self.get_iot_device()
        if device is None:
            raise RuntimeError("DeviceConfigService is not attached to a device")
        event = DeviceEvent()
        event.service_id = self._service_id or self._SERVICE_ID
        event.event_type = "config_update_response"
        event.event_id = event_id
        event.paras = paras
        return device.get_client().report_event(event)
