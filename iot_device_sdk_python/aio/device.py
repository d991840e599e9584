"""``AsyncIotDevice``: an :class:`IotDevice` driven from asyncio.

The device, its connection, dispatcher thread and services are the threaded SDK's; this class only makes
the blocking calls awaitable (``connect`` and ``destroy`` run on a helper thread, never on the loop) and
gives out an :class:`AsyncDeviceClient`. Many devices can share one event loop: each keeps its own
dispatcher thread, and nothing of one device waits on another.
"""
from __future__ import annotations

import asyncio
from typing import Optional, Type

from iot_device_sdk_python.aio import _bridge
from iot_device_sdk_python.aio.client import AsyncDeviceClient
from iot_device_sdk_python.client.client_conf import ClientConf
from iot_device_sdk_python.iot_device import IotDevice
from iot_device_sdk_python.service.abstract_device import AbstractDevice


class AsyncIotDevice:
    """An IoTDA device for asyncio code.

    Example::

        async with AsyncIotDevice.create_by_secret(host, 8883, device_id, secret, ca_file) as device:
            client = device.get_client()
            await client.report_properties([ServiceProperty("smokeDetector", {"alarm": 1})])
            async with client.commands() as commands:
                async for command in commands:
                    await command.respond(CommandRsp(0, paras={"ok": True}))

    ``device.iot_device`` is the threaded device underneath, for services, OTA, file transfers and time
    sync (their futures can be awaited with ``asyncio.wrap_future``).
    """

    def __init__(self, client_conf: ClientConf) -> None:
        self._device: AbstractDevice = IotDevice(client_conf)
        self._client = AsyncDeviceClient(self._device)

    @classmethod
    def from_device(cls, device: AbstractDevice) -> "AsyncIotDevice":
        """Drive an existing, not yet connected threaded device (an ``IotDevice`` or a gateway) from asyncio."""
        self = cls.__new__(cls)
        self._device = device
        self._client = AsyncDeviceClient(device)
        return self

    @staticmethod
    def create_by_secret(server_uri: str, port: int, device_id: str, secret: str,
                         iot_cert_file: Optional[str] = "") -> "AsyncIotDevice":
        """As :meth:`IotDevice.create_by_secret` (``iot_cert_file`` "" or None: the system CAs)."""
        return AsyncIotDevice.from_device(IotDevice.create_by_secret(server_uri, port, device_id, secret,
                                                                     iot_cert_file or ""))

    @staticmethod
    def create_by_certificate(server_uri: str, port: int, device_id: str, cert_path: str, key_path: str,
                              iot_cert_file: str) -> "AsyncIotDevice":
        """As :meth:`IotDevice.create_by_certificate` (X.509 client certificate over TLS)."""
        return AsyncIotDevice.from_device(IotDevice.create_by_certificate(server_uri, port, device_id, cert_path,
                                                                          key_path, iot_cert_file))

    @property
    def iot_device(self) -> AbstractDevice:
        """The threaded device underneath (services, ``get_ota_service()``, ``get_file_manager_service()``...)."""
        return self._device

    def get_client(self) -> AsyncDeviceClient:
        """The :class:`AsyncDeviceClient` for reports, responses and downlink streams."""
        return self._client

    def get_device_id(self) -> str:
        return self._device.get_device_id()

    def is_connected(self) -> bool:
        return self._client.is_connected()

    async def connect(self) -> None:
        """Connect; returns once CONNACK was accepted and the subscriptions are in place.

        Raises like ``IotDevice.connect(raise_on_failure=True)``: ``ConnectRefusedError`` with the CONNACK
        ``code`` (4 bad secret, 5 not authorized), ``ConnectTimeoutError``, ``ConnectError`` or
        ``BootstrapError``. After a failure nothing keeps retrying in the background; cancelling the await
        stops the attempt and leaves the device disconnected.
        """
        loop = self._client._bind_loop()
        name = f"iot-aio-connect-{self.get_device_id()}"
        attempt = _bridge.run_in_thread(loop, lambda: self._device.connect(raise_on_failure=True), name)
        try:
            await attempt
        except asyncio.CancelledError:
            # close() ends the blocking attempt at once; not awaited: the caller asked to stop waiting
            _bridge.run_in_thread(loop, self._device.get_client().close, name + "-cancel")
            raise
        except BaseException:
            # the threaded connect() keeps retrying a retryable failure; an exception here means "not connected"
            await _bridge.run_in_thread(loop, self._device.get_client().close, name + "-close")
            raise

    async def destroy(self) -> None:
        """Disconnect for good: every stream ends, handler tasks are cancelled, then the threaded
        ``destroy()`` stops the connection, dispatcher and services (on a helper thread)."""
        tasks = self._client._close_consumers()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                if not task.cancelled():  # the caller of destroy() itself was cancelled
                    raise
            except Exception:  # a handler's failure was logged where it happened
                pass
        loop = asyncio.get_running_loop()
        await _bridge.run_in_thread(loop, self._device.destroy, f"iot-aio-destroy-{self.get_device_id()}")

    async def __aenter__(self) -> "AsyncIotDevice":
        try:
            await self.connect()
        except BaseException:
            await self.destroy()  # no __aexit__ follows a failed __aenter__
            raise
        return self

    async def __aexit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                        tb: object) -> None:
        await self.destroy()
