"""Base class of profile services (upstream ``service.abstract_service``).

A service maps product-model properties and commands onto Python attributes and methods.

* Properties: declare ``Property`` class attributes (discovered automatically), or fill the upstream
  protected maps ``_readable_prop2field`` / ``_writeable_prop2field`` (prop name -> field name) by hand.
  Values are read with ``get_<field>()`` when defined, else the attribute ``<field>``; written with
  ``set_<field>(value)`` when defined, else the attribute.
* Commands: decorate methods with ``@command("commandName")`` (discovered automatically), or fill
  ``_command2method`` (command name -> method name) by hand. The method gets the command's ``paras``
  dict and returns a :class:`CommandRsp` (a plain dict is taken as a successful response's paras).
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Dict, List, Optional, TYPE_CHECKING, Tuple, TypeVar, overload

from iot_device_sdk_python.client.iot_result import IotResult
from iot_device_sdk_python.client.request.command import Command
from iot_device_sdk_python.client.request.command_response import CommandRsp
from iot_device_sdk_python.client.request.device_event import DeviceEvent
from iot_device_sdk_python.service.i_service import IService
from iot_device_sdk_python.service.property import Property

if TYPE_CHECKING:
    from iot_device_sdk_python.service.abstract_device import AbstractDevice
    from iot_device_sdk_python.transport.action_listener import ActionListener
    from iot_device_sdk_python.transport.publish_handle import PublishHandle

_COMMAND_ATTR = "_iot_command_name"
_MISSING = object()


_F = TypeVar("_F", bound=Callable[..., Any])


@overload
def command(name: _F) -> _F: ...
@overload
def command(name: Optional[str] = None) -> Callable[[_F], _F]: ...


def command(name: Any = None) -> Any:
    """Mark a service method as the handler of command ``name`` (default: the method's name)."""

    def mark(fn: _F) -> _F:
        setattr(fn, _COMMAND_ATTR, name or fn.__name__)
        return fn

    if callable(name):  # used bare: @command
        fn, name = name, None
        return mark(fn)
    return mark


def _error_rsp(text: str) -> CommandRsp:
    return CommandRsp(CommandRsp.fail_code(), "", {"error": text})


class AbstractService(IService):
    """Base for services added with ``device.add_service(service_id, service)``."""

    _logger = logging.getLogger(__name__)

    def __init__(self) -> None:
        self._iot_device: Optional["AbstractDevice"] = None
        self._service_id = ""
        self._writeable_prop2field: Dict[str, str] = {}
        self._readable_prop2field: Dict[str, str] = {}
        self._command2method: Dict[str, str] = {}
        self._auto_report = False
        self._thread = None  # upstream attribute; auto-report now uses the device's scheduler
        self._auto_report_job = None

    # ---- discovery ------------------------------------------------------------------------------------

    def _discover(self) -> None:
        """Add class-level ``Property`` descriptors and ``@command`` methods to the protected maps
        (entries filled by hand win)."""
        for klass in reversed(type(self).__mro__):
            for attr, value in vars(klass).items():
                if isinstance(value, Property):
                    field = value.field_name or attr
                    self._readable_prop2field.setdefault(value.prop_name or field, field)
                    if value.writeable:
                        self._writeable_prop2field.setdefault(value.prop_name or field, field)
                else:
                    fn = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
                    cmd = getattr(fn, _COMMAND_ATTR, None)
                    if callable(fn) and isinstance(cmd, str):
                        self._command2method.setdefault(cmd, attr)

    def _read_field(self, field: str) -> Any:
        getter = getattr(self, "get_" + field, None)
        if callable(getter):
            return getter()
        value = getattr(self, field, _MISSING)
        if value is _MISSING:
            raise AttributeError(f"field not found: {field}")
        return value.val if isinstance(value, Property) else value

    def _can_write_field(self, field: str) -> bool:
        return callable(getattr(self, "set_" + field, None)) or hasattr(self, field)

    def _write_field(self, field: str, value: Any) -> None:
        setter = getattr(self, "set_" + field, None)
        if callable(setter):
            setter(value)
            return
        current = getattr(self, field, _MISSING)
        if current is _MISSING:
            raise AttributeError(f"setter method not found: set_{field}")
        if isinstance(current, Property):
            current.val = value
        else:
            setattr(self, field, value)

    # ---- IService --------------------------------------------------------------------------------------

    def on_read(self, properties: List[str]) -> Dict[str, Any]:
        """``{prop_name: value}`` for the named readable properties (all when the list is empty).
        Unknown names are skipped; a failing getter is logged and skipped."""
        self._discover()
        names = list(properties) if properties else list(self._readable_prop2field)
        out = {}
        for name in names:
            field = self._readable_prop2field.get(name)
            if field is None:
                self._logger.debug("service %s: property %s is not readable", self._service_id, name)
                continue
            try:
                out[name] = self._read_field(field)
            except Exception as exc:
                self._logger.warning("service %s: reading %s failed: %s", self._service_id, name, exc)
        return out

    def on_write(self, properties: Dict[str, Any]) -> IotResult:
        """Write ``{prop_name: value}``; all or nothing (earlier writes are rolled back on a failure).

        Read-only or unknown properties are refused with result_code 1 and a description naming them.
        On success the written properties are reported (``fire_properties_changed``).
        """
        self._discover()
        if not isinstance(properties, dict):
            return IotResult(1, "properties must be a JSON object")
        for name in properties:
            if name not in self._writeable_prop2field:
                why = "read-only" if name in self._readable_prop2field else "not found"
                return IotResult(1, f"property {why}: {name}")
            field = self._writeable_prop2field[name]
            if not self._can_write_field(field):
                return IotResult(1, f"setter method not found: set_{field}")
        applied: List[Tuple[str, Any]] = []
        for name, value in properties.items():
            field = self._writeable_prop2field[name]
            try:
                old = self._read_field(field)
            except Exception:
                old = _MISSING
            try:
                self._write_field(field, value)
            except Exception as exc:
                self._logger.warning("service %s: writing %s failed: %s", self._service_id, name, exc)
                for f, v in reversed(applied):
                    try:
                        self._write_field(f, v)
                    except Exception:
                        self._logger.warning("service %s: rollback of %s failed", self._service_id, f)
                return IotResult(1, f"failed to set {name}: {exc}")
            if old is not _MISSING:
                applied.append((field, old))
        if self._iot_device is not None:
            self.fire_properties_changed(list(properties))
        return IotResult(0, "Success")

    def on_command(self, command: Command) -> CommandRsp:
        """Run the method mapped to ``command.command_name``; every failure becomes an error response."""
        self._discover()
        name = command.command_name
        method_name = self._command2method.get(name)
        if method_name is None:
            return _error_rsp(f"command not found: {name}")
        method = getattr(self, method_name, None)
        if not callable(method):
            return _error_rsp(f"method not found: {method_name}")
        try:
            result = method(command.paras)
        except Exception as exc:
            self._logger.exception("service %s: command %s failed", self._service_id, name)
            return _error_rsp(f"method execute failed, Exception: {exc}")
        if isinstance(result, CommandRsp):
            return result
        if isinstance(result, dict):
            return CommandRsp(CommandRsp.success_code(), "", result)
        if result is None:
            return _error_rsp(f"command {name} returned no response")
        return _error_rsp(f"command {name} returned {type(result).__name__}, expected CommandRsp")

    def on_event(self, device_event: DeviceEvent) -> None:
        """Platform event for this service (default: ignored)."""
        self._logger.debug("service %s ignores event %s", self._service_id, device_event.event_type)

    def on_destroy(self) -> None:
        """Called by ``device.destroy()``: stop timers/threads the service started (default: nothing)."""

    # ---- device link --------------------------------------------------------------------------------------

    def fire_properties_changed(self, properties: List[str]) -> Optional[PublishHandle]:
        """Report the named properties (all readable ones when empty). Returns the PublishHandle or None."""
        if self._iot_device is None:
            self._logger.warning("service %s is not attached to a device", self._service_id)
            return None
        return self._iot_device.fire_properties_changed(self._service_id, properties)

    #: The service id a system service reports under when it was not added with another one.
    _SERVICE_ID = ""

    def _report_event(self, event_type: str, paras: Dict[str, Any],
                      listener: Optional[ActionListener] = None) -> PublishHandle:
        """Publish one event of this service on ``events/up`` (``event_time`` filled in UTC by the client).

        Returns the PublishHandle. Raises RuntimeError when the service is not attached to a device.
        """
        device = self._iot_device
        if device is None:
            raise RuntimeError(f"{type(self).__name__} is not attached to a device")
        event = DeviceEvent()
        event.service_id = self._service_id or self._SERVICE_ID
        event.event_type = event_type
        event.paras = paras
        return device.get_client().report_event(event, listener)

    def get_iot_device(self) -> Optional["AbstractDevice"]:
        return self._iot_device

    def set_iot_device(self, iot_device: "AbstractDevice") -> None:
        self._iot_device = iot_device

    @property
    def service_id(self) -> str:
        return self._service_id

    @service_id.setter
    def service_id(self, value: str) -> None:
        self._service_id = value

    # ---- auto report -----------------------------------------------------------------------------------------

    def enable_auto_report(self, report_interval: int) -> None:
        """Report all readable properties every ``report_interval`` seconds (first after one interval),
        on the device's scheduler; the report itself runs on the dispatcher thread."""
        if self._auto_report:
            self._logger.warning("service %s: auto report already enabled", self._service_id)
            return
        if self._iot_device is None:
            raise RuntimeError("add the service to a device before enabling auto report")
        if isinstance(report_interval, bool) or not isinstance(report_interval, (int, float)) or report_interval <= 0:
            raise ValueError("report_interval: must be a positive number of seconds")
        scheduler = self._iot_device.get_scheduler()
        self._auto_report_job = scheduler.add_job(self._auto_report_thread_func, "interval",
                                                  seconds=report_interval, args=[report_interval],
                                                  coalesce=True, max_instances=1)
        self._auto_report = True

    def disable_auto_report(self) -> None:
        """Stop the periodic report (no-op when it is off)."""
        job, self._auto_report_job = self._auto_report_job, None
        self._auto_report = False
        if job is not None:
            try:
                job.remove()
            except Exception:  # scheduler already shut down or job gone
                pass

    def _auto_report_thread_func(self, report_interval: int) -> None:
        device = self._iot_device
        if device is None or not self._auto_report:
            return
        device.get_client().get_dispatcher().submit(self.fire_properties_changed, [])
