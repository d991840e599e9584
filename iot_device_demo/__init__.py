"""Demos of the IoTDA Python device SDK: python -m iot_device_demo.<folder>.<name> [--local | --server-uri ...]."""
