"""Helpers shared by the services tests."""
from __future__ import annotations


import pytest
from tests.waiting import wait_until  # noqa: F401 (re-exported to the tests of this folder)


@pytest.fixture
def wait():
    return wait_until
