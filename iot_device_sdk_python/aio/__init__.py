"""asyncio API of the device SDK, on the same transport and services as the threaded API.

::

    from iot_device_sdk_python.aio import AsyncIotDevice

    async with AsyncIotDevice.create_by_secret(host, 8883, device_id, secret, ca_file) as device:
        await device.get_client().report_properties([ServiceProperty("smokeDetector", {"alarm": 1})])

:class:`AsyncIotDevice` (connect, destroy, ``async with``), :class:`AsyncDeviceClient` (coroutines resolved on
PUBACK; command, property and message streams and handlers), the requests it hands out
(:class:`CommandRequest`, :class:`PropertySetRequest`, :class:`PropertyGetRequest`) and
:class:`RequestStream`. Errors are the SDK's family (``iot_device_sdk_python.errors``).
"""
from iot_device_sdk_python.aio.client import AsyncDeviceClient, RequestStream
from iot_device_sdk_python.aio.device import AsyncIotDevice
from iot_device_sdk_python.aio.requests import CommandRequest, PropertyGetRequest, PropertySetRequest

__all__ = ["AsyncDeviceClient", "AsyncIotDevice", "CommandRequest", "PropertyGetRequest", "PropertySetRequest",
           "RequestStream"]
