"""A local Huawei Cloud IoTDA emulator on a real Mosquitto broker (see ``design.md``)."""
from iotda_emulator.errors import CommandTimeout, DeviceNotFound, DeviceOffline, EmulatorError
from iotda_emulator.emulator import Emulator

__all__ = ["Emulator", "EmulatorError", "CommandTimeout", "DeviceOffline", "DeviceNotFound"]
