"""Packaging for the Huawei Cloud IoTDA Python device SDK and its local emulator."""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent


def _requirements(name: str) -> list:
    lines = (HERE / "requirements" / name).read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith(("#", "-r"))]


setup(
    name="iot-device-sdk-python",
    version="2.0.0",
    description="Python device SDK for Huawei Cloud IoTDA, with a local IoTDA emulator",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="BSD-3-Clause",
    python_requires=">=3.10",
    packages=find_packages(include=[
        "iot_device_sdk_python", "iot_device_sdk_python.*",
        "iotda_emulator", "iotda_emulator.*",
        "iot_device_demo", "iot_device_demo.*",
        "iot_gateway_demo", "iot_gateway_demo.*",
    ]),
    package_data={"iot_device_sdk_python": ["py.typed"], "iotda_emulator": ["py.typed", "web/*"],
                  "iot_device_demo": ["*/*.txt", "*/*/*.txt"]},
    install_requires=_requirements("requirements.txt"),
    extras_require={
        "emulator": _requirements("requirements-emulator.txt"),
        "dev": _requirements("requirements-emulator.txt") + _requirements("requirements-dev.txt"),
    },
    entry_points={"console_scripts": ["iotda-emulator=iotda_emulator.cli:main"]},
    classifiers=[
        "License :: OSI Approved :: BSD License",
        "Programming Language :: Python :: 3",
        "Topic :: System :: Networking",
    ],
)
