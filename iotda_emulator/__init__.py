"""A local Huawei Cloud IoTDA emulator on a real Mosquitto broker (see ``doc/emulator.md``)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, List

from iotda_emulator.errors import CommandTimeout, DeviceNotFound, DeviceOffline, EmulatorError

#: Version of the ``iotda-emulator`` distribution (its pyproject.toml reads it from here).
__version__ = "2.0.0"

__all__ = ["Emulator", "EmulatorError", "CommandTimeout", "DeviceOffline", "DeviceNotFound", "__version__"]

if TYPE_CHECKING:
    from iotda_emulator.emulator import Emulator


def __getattr__(name: str) -> Any:
    # Emulator loads on first use (PEP 562): importing the package must not need the third-party dependencies,
    # so that `iotda-emulator --version` works and a missing one is reported in one line by the CLI.
    if name == "Emulator":
        from iotda_emulator.emulator import Emulator

        globals()["Emulator"] = Emulator
        return Emulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> List[str]:
    return sorted(set(globals()) | {"Emulator"})
