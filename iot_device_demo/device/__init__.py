"""Demos of the IoTDA Python device SDK (run with python -m iot_device_demo.<folder>.<name>)."""
