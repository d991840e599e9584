"""PLACEHOLDER written by the lead so that AbstractDevice can import it; the rule-engine helper replaces it."""
from iot_device_sdk_python.service.abstract_service import AbstractService


class RuleManageService(AbstractService):
    def __init__(self, device_client) -> None:
        super().__init__()
        self._device_client = device_client
