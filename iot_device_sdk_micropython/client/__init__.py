"""The device client and its configuration."""
from .iot_client import IotClient
from .iot_client_config import IotClientConfig, IoTClientConfig

__all__ = ["IotClient", "IotClientConfig", "IoTClientConfig"]
