"""IoTDA conformance suite: bare MQTT devices against the emulator, as IoTDA's device docs describe them."""
