"""Base of IotDevice and AbstractGateway (upstream ``service.abstract_device``).

Holds the services (profile services and the ``$`` system services), dispatches platform requests to
them and answers every request: an unknown service, a failing command or a bad property write gets an
error response instead of silence.
"""
from __future__ import annotations

import logging
import threading
import uuid
from typing import Any, Dict, List, Optional, TYPE_CHECKING, cast

from iot_device_sdk_python.client.client_conf import ClientConf
from iot_device_sdk_python.client.device_client import DeviceClient
from iot_device_sdk_python.client.iot_result import IotResult
from iot_device_sdk_python.client.request.command import Command
from iot_device_sdk_python.client.request.command_response import CommandRsp
from iot_device_sdk_python.client.request.device_events import DeviceEvents
from iot_device_sdk_python.client.request.device_message import DeviceMessage
from iot_device_sdk_python.client.request.props_get import PropsGet
from iot_device_sdk_python.client.request.props_set import PropSet
from iot_device_sdk_python.client.request.service_property import ServiceProperty
from iot_device_sdk_python.protocol import codec
from iot_device_sdk_python.transport.publish_handle import PublishHandle

if TYPE_CHECKING:
    from iot_device_sdk_python.deviceconfig.device_config_service import DeviceConfigService
    from iot_device_sdk_python.devicelog.device_log_service import DeviceLogService
    from iot_device_sdk_python.filemanager.file_manager_service import FileManagerService
    from iot_device_sdk_python.ota.ota_service import OTAService
    from iot_device_sdk_python.rule.model.actions import Action
    from iot_device_sdk_python.rule.rule_manage_service import RuleManageService
    from iot_device_sdk_python.service.abstract_service import AbstractService
    from iot_device_sdk_python.timesync.time_sync_service import TimeSyncService
    from iot_device_sdk_python.tunnel.tunnel_service import TunnelService

_logger = logging.getLogger(__name__)


class AbstractDevice:
    """A device: a DeviceClient plus its services. Use :class:`IotDevice` (or AbstractGateway)."""

    # the system services, made by _init_sys_services() in __init__
    _ota_service: "OTAService"
    _file_manager: "FileManagerService"
    _time_sync_service: "TimeSyncService"
    _device_log_service: "DeviceLogService"
    _rule_manage_service: "RuleManageService"
    _device_config_service: "DeviceConfigService"
    _tunnel_service: "TunnelService"

    def __init__(self, client_conf: ClientConf) -> None:
        self._client_conf = client_conf
        self._device_id = cast(str, client_conf.connect_auth_info.id)  # DeviceClient below checks it
        self._services: Dict[str, "AbstractService"] = {}
        self._client = DeviceClient(client_conf.connect_auth_info, client_conf.mqtt_connect_conf, self)
        self._scheduler: Any = None  # an APScheduler BackgroundScheduler (untyped library), made on first use
        self._scheduler_lock = threading.Lock()
        self._destroyed = False
        self._init_sys_services()
        self._init_log_listeners()

    def _init_sys_services(self) -> None:
        """Create and register ``$ota``, ``$time_sync``, ``$file_manager``, ``$log``, ``$device_rule``,
        ``$device_config``."""
        from iot_device_sdk_python.deviceconfig.device_config_service import DeviceConfigService
        from iot_device_sdk_python.devicelog.device_log_service import DeviceLogService
        from iot_device_sdk_python.filemanager.file_manager_service import FileManagerService
        from iot_device_sdk_python.ota.ota_service import OTAService
        from iot_device_sdk_python.rule.rule_manage_service import RuleManageService
        from iot_device_sdk_python.timesync.time_sync_service import TimeSyncService

        self._ota_service = OTAService()
        self.add_service("$ota", self._ota_service)
        self._time_sync_service = TimeSyncService()
        self.add_service("$time_sync", self._time_sync_service)
        self._file_manager = FileManagerService()
        self.add_service("$file_manager", self._file_manager)
        self._device_log_service = DeviceLogService()
        self.add_service("$log", self._device_log_service)
        self._rule_manage_service = RuleManageService(self._client)
        self.add_service("$device_rule", self._rule_manage_service)
        self._device_config_service = DeviceConfigService()
        self.add_service("$device_config", self._device_config_service)
        from iot_device_sdk_python.tunnel.tunnel_service import TunnelService

        self._tunnel_service = TunnelService()   # refuses every tunnel until enable_tunnel()
        self.add_service("$tunnel_manager", self._tunnel_service)

    def _init_log_listeners(self) -> None:
        # once per device (upstream added them on every connect() and replaced the user's action listener)
        from iot_device_sdk_python.devicelog.listener.default_conn_action_log_listener import DefaultConnActionLogListener
        from iot_device_sdk_python.devicelog.listener.default_conn_log_listener import DefaultConnLogListener

        self._client.add_connect_listener(DefaultConnLogListener(self._device_log_service))
        self._client._get_connection().add_internal_connect_action_listener(
            DefaultConnActionLogListener(self._device_log_service))

    # ---- lifecycle ---------------------------------------------------------------------------------------

    def connect(self, raise_on_failure: bool = False) -> int:
        """Connect to the platform. Returns 0 on success, else an error code (see MqttConnection).

        ``raise_on_failure=True`` raises an :class:`~iot_device_sdk_python.errors.IotDeviceError` instead
        of returning non-zero (see :meth:`DeviceClient.connect`)."""
        if self._destroyed:
            raise RuntimeError("device was destroyed")
        return self._client.connect(raise_on_failure)

    def destroy(self) -> None:
        """Disconnect for good and stop everything the device started (scheduler, dispatcher, paho and
        reconnect threads, services' timers). Safe to call twice."""
        if self._destroyed:
            return
        self._destroyed = True
        with self._scheduler_lock:
            scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            try:
                in_job = threading.current_thread().name.startswith("iot-scheduler")
                scheduler.shutdown(wait=not in_job)
            except Exception:
                _logger.debug("scheduler shutdown failed", exc_info=True)
        for service in list(self._services.values()):
            hook = getattr(service, "on_destroy", None)
            if callable(hook):
                try:
                    hook()
                except Exception:
                    _logger.exception("service %s failed to stop", getattr(service, "service_id", "?"))
        self._client._shutdown()

    def get_scheduler(self) -> Any:
        """The device's single APScheduler ``BackgroundScheduler`` (UTC), created on first use and shut
        down by :meth:`destroy`. Services schedule auto reports and timer rules on it."""
        with self._scheduler_lock:
            if self._destroyed:
                raise RuntimeError("device was destroyed")
            if self._scheduler is None:
                from apscheduler.executors.pool import ThreadPoolExecutor  # type: ignore[import-untyped]
                from apscheduler.schedulers.background import BackgroundScheduler  # type: ignore[import-untyped]
                import datetime as _dt

                executor = ThreadPoolExecutor(2, pool_kwargs={"thread_name_prefix": f"iot-scheduler-{self._device_id}"})
                self._scheduler = BackgroundScheduler(executors={"default": executor}, timezone=_dt.timezone.utc,
                                                      daemon=True,
                                                      job_defaults={"coalesce": True, "max_instances": 1,
                                                                    "misfire_grace_time": 30})
                self._scheduler.start()
            return self._scheduler

    def get_client(self) -> DeviceClient:
        return self._client

    def get_device_id(self) -> str:
        return self._device_id

    # ---- services ----------------------------------------------------------------------------------------

    def add_service(self, service_id: str, device_service: "AbstractService") -> None:
        """Register ``device_service`` under ``service_id`` (replacing any previous one)."""
        device_service.service_id = service_id
        device_service.set_iot_device(self)
        self._services[service_id] = device_service

    def get_service(self, service_id: str) -> Optional["AbstractService"]:
        return self._services.get(service_id)

    def fire_properties_changed(self, service_id: str, properties: List[str]) -> Optional[PublishHandle]:
        """Report the named properties of one service (all when empty). Returns a PublishHandle or None."""
        service = self.get_service(service_id)
        if service is None:
            _logger.warning("fire_properties_changed: unknown service %s", service_id)
            return None
        values = service.on_read(properties)
        if not values:
            _logger.debug("service %s has no readable properties to report", service_id)
            return None
        return self._client.report_properties([ServiceProperty(service_id, values)])

    def fire_services_changed(self, service_ids: List[str]) -> Optional[PublishHandle]:
        """Report every readable property of several services in one message."""
        services = []
        for sid in service_ids:
            service = self.get_service(sid)
            if service is None:
                _logger.warning("fire_services_changed: unknown service %s", sid)
                continue
            services.append(ServiceProperty(sid, service.on_read([]), codec.event_time()))
        if not services:
            return None
        return self._client.report_properties(services)

    # ---- platform requests (dispatcher thread) ----------------------------------------------------------------

    def on_command(self, request_id: str, command: Command) -> None:
        """Run a command on its service and answer it; unknown service or bad result -> error response."""
        service = self.get_service(command.service_id)
        if service is None:
            _logger.warning("command %s for unknown service %r", command.command_name, command.service_id)
            rsp = CommandRsp(CommandRsp.fail_code(), "", {"error": f"service not found: {command.service_id}"})
        else:
            try:
                rsp = service.on_command(command)
            except Exception as exc:
                _logger.exception("service %s failed on command %s", command.service_id, command.command_name)
                rsp = CommandRsp(CommandRsp.fail_code(), "", {"error": f"command failed: {exc}"})
            if not isinstance(rsp, CommandRsp):
                rsp = CommandRsp(CommandRsp.fail_code(), "",
                                 {"error": f"command {command.command_name} returned no response"})
        self._client.respond_command(request_id, rsp)

    def on_properties_set(self, request_id: str, props_set: PropSet) -> None:
        """Write properties service by service and answer the request with :meth:`write_services`' result."""
        self._client.respond_properties_set(request_id, self.write_services(props_set.services))

    def write_services(self, services: List[ServiceProperty]) -> IotResult:
        """Write each ``ServiceProperty`` to its registered service, without answering the platform.

        Returns the first failure (an unknown service, a raising or non-IotResult ``on_write``), else success.
        """
        result = IotResult(0, "Success")
        for sp in services:
            service = self.get_service(sp.service_id)
            if service is None:
                result = IotResult(1, f"service not found: {sp.service_id}")
                break
            try:
                res = service.on_write(sp.properties)
            except Exception as exc:
                _logger.exception("service %s failed to write properties", sp.service_id)
                res = IotResult(1, f"write failed: {exc}")
            if not isinstance(res, IotResult):
                res = IotResult(1, f"service {sp.service_id} returned no result")
            if res.result_code != 0:
                result = res
                break
        return result

    def on_properties_get(self, request_id: str, props_get: PropsGet) -> None:
        """Read one service ("" = every profile service; ``$`` system services are left out)."""
        if props_get.service_id:
            service = self.get_service(props_get.service_id)
            if service is None:
                _logger.warning("property get for unknown service %r", props_get.service_id)
                ids = []
            else:
                ids = [props_get.service_id]
        else:
            ids = [sid for sid in self._services if not codec.is_system_service(sid)]
        services = []
        for sid in ids:
            try:
                services.append(ServiceProperty(sid, self._services[sid].on_read([])))
            except Exception:
                _logger.exception("service %s failed to read properties", sid)
        self._client.respond_properties_get(request_id, services)

    def on_event(self, device_events: DeviceEvents) -> None:
        """Give each event to its service (``$sub_device_manager`` is left to gateways)."""
        if device_events.device_id and device_events.device_id != self._device_id:
            _logger.debug("events for %s ignored by %s", device_events.device_id, self._device_id)
            return
        for event in device_events.services:
            if event.service_id == "$sub_device_manager":
                continue
            service = self.get_service(event.service_id)
            if service is None:
                _logger.warning("event %s for unknown service %r", event.event_type, event.service_id)
                continue
            try:
                service.on_event(event)
            except Exception:
                _logger.exception("service %s failed on event %s", event.service_id, event.event_type)

    def on_rule_action_handler(self, action_list: List["Action"]) -> None:
        """Run the commands of fired rule actions that target this device."""
        for action in action_list or []:
            target = getattr(action, "device_id", "")
            cmd = getattr(action, "command", None)
            if cmd is None or (target and target != self._device_id):
                continue
            self._client.on_rule_command(uuid.uuid4().hex, cmd)

    def on_device_message(self, message: DeviceMessage) -> None:
        """A system-format message not taken by a DeviceMessageListener (default: ignored)."""
        _logger.debug("device message %s ignored", message.id)

    # ---- system services -----------------------------------------------------------------------------------------

    def get_ota_service(self) -> "OTAService":
        return self._ota_service

    def get_time_sync_service(self) -> "TimeSyncService":
        return self._time_sync_service

    def get_device_log_service(self) -> "DeviceLogService":
        return self._device_log_service

    def get_file_manager_service(self) -> "FileManagerService":
        return self._file_manager

    def get_rule_manage_service(self) -> "RuleManageService":
        return self._rule_manage_service

    def get_device_config_service(self) -> "DeviceConfigService":
        """The ``$device_config`` service: ``set_listener(DeviceConfigListener)`` to receive remote configurations."""
        return self._device_config_service

    def get_tunnel_service(self) -> "TunnelService":
        """The ``$tunnel_manager`` service (remote login): off until ``enable_tunnel(target_host, target_port)``."""
        return self._tunnel_service
