"""Remote configuration (``$device_config``): the platform pushes a configuration, the device answers."""
