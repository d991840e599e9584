"""Huawei Cloud IoTDA device SDK for Python."""
import logging

logging.getLogger(__name__).addHandler(logging.NullHandler())
