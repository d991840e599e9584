"""Errors raised by the emulator's Python API."""
from __future__ import annotations


class EmulatorError(Exception):
    """Base class of every error the emulator raises on purpose."""


class CommandTimeout(EmulatorError, TimeoutError):
    """The device did not answer a command, property set or property get in time."""


class DeviceOffline(EmulatorError):
    """The target device (or the gateway that carries it) is not connected."""


class DeviceNotFound(EmulatorError, KeyError):
    """No device with that id is registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "device not found"


class ShadowVersionConflict(EmulatorError, ValueError):
    """A desired-shadow write named a version that is not the service's current shadow version."""


__all__ = ["EmulatorError", "CommandTimeout", "DeviceOffline", "DeviceNotFound", "ShadowVersionConflict"]
