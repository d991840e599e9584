"""Root fixtures: the emulator ones (fixtures_emulator) and the SDK ones (fixtures_sdk)."""
pytest_plugins = ["tests.fixtures_emulator", "tests.fixtures_sdk"]


def pytest_unconfigure(config):
    """A connected device keeps the process alive until destroy() (upstream behaviour); a test that left
    one connected must not keep pytest from exiting."""
    from iot_device_sdk_python.transport.process_keeper import release_all

    release_all()
