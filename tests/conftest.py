"""Root fixtures: the emulator ones (fixtures_emulator) and the SDK ones (fixtures_sdk)."""
pytest_plugins = ["tests.fixtures_emulator", "tests.fixtures_sdk"]
