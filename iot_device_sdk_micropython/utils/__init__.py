"""Helpers: IoTDA client id and password, topic parsing."""
from .iot_util import (get_timestamp, get_client_id, get_password, sha256_mac, get_request_id_from_topic,
                       get_device_id_from_topic, str_is_empty)

__all__ = ["get_timestamp", "get_client_id", "get_password", "sha256_mac", "get_request_id_from_topic",
           "get_device_id_from_topic", "str_is_empty"]
