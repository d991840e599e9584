"""The bundled MQTT 3.1.1 client (used when the board has no ``umqtt.simple``)."""
