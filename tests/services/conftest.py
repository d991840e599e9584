"""Helpers shared by the services tests."""
from __future__ import annotations

import time

import pytest


def wait_until(predicate, timeout: float = 15.0, interval: float = 0.02):
    """Poll ``predicate`` until it returns a truthy value (returned) or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


@pytest.fixture
def wait():
    return wait_until
