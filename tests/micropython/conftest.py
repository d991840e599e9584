"""Shared fixtures of the MicroPython tests."""
from __future__ import annotations

from typing import Iterator

import pytest

from iotda_emulator import Emulator
from tests.micropython._mp import require_micropython


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    """One emulator per module (skips without a ``micropython`` command: nothing to run against it)."""
    require_micropython()
    emulator = Emulator(command_timeout=5.0).start()
    try:
        yield emulator
    finally:
        emulator.stop()
