"""Build script of the ``iot-device-sdk-python`` distribution: the device SDK (``iot_device_sdk_python``) only.

Every piece of metadata (name, version, dependencies, URLs, classifiers, licence) is in ``pyproject.toml``
(PEP 621); this file stays so that tools and habits that call ``setup.py`` keep working, and adds nothing.
The local emulator is a distribution of its own (``iotda_emulator/pyproject.toml``); the demos
(``iot_device_demo``, ``iot_gateway_demo``) run from the checkout and are never installed.
"""
from setuptools import setup

setup()
