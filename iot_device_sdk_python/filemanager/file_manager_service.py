"""PLACEHOLDER written by the lead so that AbstractDevice can import it; the owning helper replaces it."""
from iot_device_sdk_python.service.abstract_service import AbstractService


class FileManagerService(AbstractService):
    def __init__(self) -> None:
        super().__init__()
