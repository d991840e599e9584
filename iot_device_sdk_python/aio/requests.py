"""Platform requests as the asyncio API hands them out: each knows how to answer itself.

A request taken from a stream (``client.commands()``, ``client.property_sets()``, ``client.property_gets()``)
is answered with ``await request.respond(...)``; a handler set with ``client.set_command_handler(...)`` and
friends is answered with the handler's return value. A request that a closing stream still held, never
handed out, goes back to the device's services (as if no async consumer had been there), so no request is
left unanswered by the SDK.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional

from iot_device_sdk_python.client.iot_result import IotResult
from iot_device_sdk_python.client.request.command_response import CommandRsp
from iot_device_sdk_python.client.request.service_property import ServiceProperty

if TYPE_CHECKING:
    from iot_device_sdk_python.aio.client import AsyncDeviceClient


class _Request:
    """What every request shares: the ``request_id`` of the topic and a single answer."""

    kind = ""

    def __init__(self, client: "AsyncDeviceClient", request_id: str) -> None:
        self._client = client
        self.request_id = request_id
        self._answered = False

    @property
    def answered(self) -> bool:
        """True once :meth:`respond` was called (or the request was handed back to the services)."""
        return self._answered

    def _claim(self) -> None:
        if self._answered:
            raise RuntimeError(f"{type(self).__name__} {self.request_id} was answered already")
        self._answered = True

    def _hand_back(self) -> None:
        """Give an unanswered request to the device's services (on the dispatcher thread)."""
        if not self._answered:
            self._answered = True
            self._client._fallback(self)


class CommandRequest(_Request):
    """A command for this device: ``service_id``, ``command_name``, ``paras``."""

    kind = "command"

    def __init__(self, client: "AsyncDeviceClient", request_id: str, service_id: str, command_name: str,
                 paras: Dict[str, Any]) -> None:
        super().__init__(client, request_id)
        self.service_id = service_id
        self.command_name = command_name
        self.paras = paras

    async def respond(self, response: Optional[CommandRsp] = None, *, timeout: Optional[float] = None) -> Optional[int]:
        """Answer the command (``None``: success with no paras); resolves on PUBACK with the message id."""
        self._claim()
        rsp = response if response is not None else CommandRsp(CommandRsp.success_code())
        return await self._client.respond_command(self.request_id, rsp, timeout=timeout)

    def __repr__(self) -> str:
        return (f"CommandRequest(request_id={self.request_id!r}, service_id={self.service_id!r}, "
                f"command_name={self.command_name!r})")


class PropertySetRequest(_Request):
    """The platform writes properties: ``services`` (a list of :class:`ServiceProperty`)."""

    kind = "property_set"

    def __init__(self, client: "AsyncDeviceClient", request_id: str, services: List[ServiceProperty]) -> None:
        super().__init__(client, request_id)
        self.services = services

    async def respond(self, result: Optional[IotResult] = None, *, timeout: Optional[float] = None) -> Optional[int]:
        """Answer the write (``None``: ``IotResult(0, "Success")``); resolves on PUBACK."""
        self._claim()
        return await self._client.respond_properties_set(
            self.request_id, result if result is not None else IotResult(0, "Success"), timeout=timeout)

    def __repr__(self) -> str:
        return f"PropertySetRequest(request_id={self.request_id!r}, services={len(self.services)})"


class PropertyGetRequest(_Request):
    """The platform reads properties of ``service_id`` ("" = every service)."""

    kind = "property_get"

    def __init__(self, client: "AsyncDeviceClient", request_id: str, service_id: str) -> None:
        super().__init__(client, request_id)
        self.service_id = service_id

    async def respond(self, services: List[ServiceProperty], *, timeout: Optional[float] = None) -> Optional[int]:
        """Answer with the current values; resolves on PUBACK."""
        self._claim()
        return await self._client.respond_properties_get(self.request_id, services, timeout=timeout)

    def __repr__(self) -> str:
        return f"PropertyGetRequest(request_id={self.request_id!r}, service_id={self.service_id!r})"
