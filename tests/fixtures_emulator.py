"""Emulator fixtures: ``emulator`` (session), ``fresh_emulator`` (per test), ``device_record`` and ``gate``."""
from __future__ import annotations

import pytest

from iotda_emulator import Emulator


@pytest.fixture(scope="session")
def emulator():
    """One emulator for the whole session (command timeout 5 s). Do not kill its broker: use fresh_emulator."""
    emu = Emulator(command_timeout=5.0).start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def fresh_emulator():
    """A private emulator for destructive tests (broker kill/restart, freezing, custom ports)."""
    emu = Emulator(command_timeout=5.0).start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def device_record(emulator):
    """A newly registered secret-authenticated device on ``emulator`` (deleted afterwards)."""
    rec = emulator.create_device()
    yield rec
    emulator.delete_device(rec["device_id"])


@pytest.fixture
def gate(emulator):
    """Records every CONNECT attempt on the session emulator's access front (``AuthGate``); restored after."""
    from tests.reliability._harness import AuthGate

    g = AuthGate(emulator)
    yield g
    g.restore()
