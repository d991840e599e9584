"""``DeviceConfigListener``: applies a configuration the platform pushed (``$device_config``)."""
from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import Any, Dict

from iot_device_sdk_python.client.iot_result import IotResult


class DeviceConfigListener(metaclass=ABCMeta):
    """Callback of :class:`DeviceConfigService`, run on the device's dispatcher thread."""

    @abstractmethod
    def on_config_update(self, config_content: Dict[str, Any]) -> IotResult:
        """Apply ``config_content`` (the user-defined JSON object of the platform's configuration task).

        Return ``IotResult(0, ...)`` when it was applied, any other ``result_code`` when not; ``result_desc``
        goes back to the platform as the ``description``. Raising counts as a failure.
        """
