"""Platform-side system services of the emulator, one module per IoTDA ``$service`` id.

Every module in this package that defines a :class:`~iotda_emulator.services.base.PlatformService`
subclass is found by :func:`discover` and started with the platform core, so adding a service is
adding a file here.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import List, Type

from iotda_emulator.services.base import PlatformService


def discover() -> List[Type[PlatformService]]:
    """Every concrete PlatformService subclass defined in this package's modules, in module order."""
    found: List[Type[PlatformService]] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if (issubclass(obj, PlatformService) and obj is not PlatformService
                    and obj.__module__ == module.__name__ and obj.service_ids):
                found.append(obj)
    return found
