"""What the platform sends down and what the device reports."""
from .command import Command
from .device_message import DeviceMessage
from .services_properties import ServicesProperties

__all__ = ["Command", "DeviceMessage", "ServicesProperties"]
