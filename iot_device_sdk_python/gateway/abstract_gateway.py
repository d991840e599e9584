"""``AbstractGateway``: an ``IotDevice`` that also speaks for its sub-devices (child devices).

A gateway connects once and carries the traffic of its children:

* uplink for a child goes through the gateway's own topics: messages with ``object_device_id``, properties
  on the batch topic ``sys/gateway/sub_devices/properties/report``, statuses/add/delete/sync as
  ``$sub_device_manager`` events, child events with ``object_device_id`` (``report_sub_event``);
* downlink whose ``object_device_id`` names another device is routed to the ``on_sub_dev_*`` hooks;
  the gateway's own traffic still reaches its services like any ``IotDevice``.

Differences from upstream (on purpose): property sets for children reach ``on_sub_dev_properties_set``;
a child command or property request nobody handles is answered with an error instead of being left to
time out; ``None`` or malformed lists from the platform never crash the handler; batches are split to
the platform limits (``doc/protocol.md`` §7.1).
"""
from __future__ import annotations

import gzip
import logging
import uuid
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, TypeVar

from iot_device_sdk_python.client.iot_result import IotResult
from iot_device_sdk_python.client.request.command_response import CommandRsp
from iot_device_sdk_python.client.request.device_event import DeviceEvent
from iot_device_sdk_python.client.request.device_events import DeviceEvents
from iot_device_sdk_python.gateway._publish_group import GroupListener, PublishGroup
from iot_device_sdk_python.gateway.gtw_operate_sub_device_listener import GtwOperateSubDeviceListener
from iot_device_sdk_python.gateway.requests.added_sub_device_info import AddedSubDeviceInfo
from iot_device_sdk_python.gateway.requests.device_info import DeviceInfo
from iot_device_sdk_python.gateway.requests.device_property import DeviceProperty
from iot_device_sdk_python.gateway.requests.device_status import DeviceStatus
from iot_device_sdk_python.gateway.requests.gtw_add_sub_device_rsp import GtwAddSubDeviceRsp
from iot_device_sdk_python.gateway.requests.gtw_del_sub_device_rsp import GtwDelSubDeviceRsp
from iot_device_sdk_python.gateway.requests.scan_sub_device_notify import ScanSubDeviceNotify
from iot_device_sdk_python.gateway.requests.sub_devices_info import SubDevicesInfo
from iot_device_sdk_python.gateway.sub_dev_discovery_listener import SubDevDiscoveryListener
from iot_device_sdk_python.gateway.sub_devices_persistence import SubDevicesPersistence
from iot_device_sdk_python.iot_device import IotDevice
from iot_device_sdk_python.protocol import codec, topics
from iot_device_sdk_python.transport.publish_handle import PublishHandle
from iot_device_sdk_python.transport.raw_message import RawMessage

if TYPE_CHECKING:
    from iot_device_sdk_python.client.client_conf import ClientConf
    from iot_device_sdk_python.client.request.command import Command
    from iot_device_sdk_python.client.request.device_message import DeviceMessage
    from iot_device_sdk_python.client.request.props_get import PropsGet
    from iot_device_sdk_python.client.request.props_set import PropSet
    from iot_device_sdk_python.client.request.service_property import ServiceProperty
    from iot_device_sdk_python.transport.action_listener import ActionListener

_logger = logging.getLogger(__name__)

SUB_DEVICE_MANAGER = "$sub_device_manager"
SUB_DEVICE_DISCOVERY = "sub_device_discovery"

#: Platform limits (doc/protocol.md §7.1).
MAX_BATCH_PROPERTY_DEVICES = 100
MAX_PROPERTY_MESSAGE_BYTES = 64 * 1024
MAX_STATUS_DEVICES = 100
MAX_ADD_DELETE_DEVICES = 50

_BATCH_ENVELOPE = len(b'{"devices":[]}')

_T = TypeVar("_T")
# (service_id, event_type, paras, event_id): the arguments of one _report_gateway_event
_GatewayEvent = Tuple[str, str, Dict[str, Any], Optional[str]]


def _chunks(items: List[_T], size: int) -> List[List[_T]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _to_plain(obj: Any) -> Any:
    to_dict = getattr(obj, "to_dict", None)
    return to_dict() if callable(to_dict) else obj


class AbstractGateway(IotDevice):
    """A gateway device: reports for its sub-devices and routes their downlink to the ``on_sub_dev_*`` hooks.

    Subclass it and override the hooks you need. Every hook runs on the device's dispatcher thread, in
    arrival order. ``sub_devices_persistence`` stores the sub-device list the platform notifies.
    """

    def __init__(self, sub_devices_persistence: SubDevicesPersistence, client_conf: "ClientConf") -> None:
        # set before IotDevice.__init__, which may already wire callbacks that read them
        self._sub_device_persistence = sub_devices_persistence
        self._sub_dev_discovery_listener: Optional[SubDevDiscoveryListener] = None
        self._gtw_operate_sub_device_listener: Optional[GtwOperateSubDeviceListener] = None
        super().__init__(client_conf)

    # ---- configuration -------------------------------------------------------------------------

    def set_sub_dev_discovery_listener(self, sub_dev_discovery_listener: SubDevDiscoveryListener) -> None:
        """Listener for ``start_scan`` requests (sent by IoTEdge; IoTDA does not use it)."""
        self._sub_dev_discovery_listener = sub_dev_discovery_listener

    def set_gtw_operate_sub_device_listener(self,
                                            gtw_operate_sub_device_listener: GtwOperateSubDeviceListener) -> None:
        """Listener for the platform's answers to :meth:`gtw_add_sub_device` and :meth:`gtw_del_sub_device`."""
        self._gtw_operate_sub_device_listener = gtw_operate_sub_device_listener

    def get_sub_devices_persistence(self) -> SubDevicesPersistence:
        """The persistence given to the constructor."""
        return self._sub_device_persistence

    # ---- sub-device lookup ---------------------------------------------------------------------

    def get_sub_device_by_node_id(self, node_id: str) -> Optional[DeviceInfo]:
        """The sub-device with this node id from the persistence, or ``None``."""
        try:
            return self._sub_device_persistence.get_sub_device(node_id)
        except Exception:
            _logger.exception("SubDevicesPersistence.get_sub_device failed")
            return None

    def get_sub_device_by_device_id(self, device_id: str) -> Optional[DeviceInfo]:
        """The sub-device with this platform device id, or ``None``.

        Uses the persistence's ``get_sub_device_by_device_id`` when it has one. Otherwise the node id is
        taken from the device id (``{product_id}_{node_id}``): every underscore position is tried, and
        the found entry must carry the same device id (product ids may contain underscores too).
        """
        if not isinstance(device_id, str) or not device_id:
            return None
        by_id = getattr(self._sub_device_persistence, "get_sub_device_by_device_id", None)
        if callable(by_id):
            try:
                found: Optional[DeviceInfo] = by_id(device_id)
                return found
            except Exception:
                _logger.exception("SubDevicesPersistence.get_sub_device_by_device_id failed")
                return None
        pos = device_id.find("_")
        while pos >= 0:
            info = self.get_sub_device_by_node_id(device_id[pos + 1:])
            if info is not None and (not info.device_id or info.device_id == device_id):
                return info
            pos = device_id.find("_", pos + 1)
        return None

    # ---- uplink for sub-devices ----------------------------------------------------------------

    def report_sub_dev_list(self, device_infos: List[DeviceInfo], listener: Optional["ActionListener"] = None) -> PublishHandle:
        """Report scanned sub-devices (``sub_device_discovery``/``scan_result``; IoTEdge only).

        Returns the publish handle.
        """
        paras = {"devices": [_to_plain(d) for d in (device_infos or [])]}
        return self._report_gateway_event(SUB_DEVICE_DISCOVERY, "scan_result", paras, None, listener)

    def report_sub_device_message(self, device_message: "DeviceMessage",
                                  listener: Optional["ActionListener"] = None) -> PublishHandle:
        """Send a message for a sub-device; ``device_message.device_id`` must be the sub-device id.

        Returns the publish handle. Raises ``ValueError`` when the device id is empty.
        """
        if not getattr(device_message, "device_id", None):
            raise ValueError("device_message.device_id (the sub-device id) is required")
        return self.get_client().report_device_message(device_message, listener)

    def report_sub_device_properties(self, device_id: str, services: List["ServiceProperty"],
                                     listener: Optional["ActionListener"] = None,
                                     compress: Optional[bool] = None) -> PublishHandle:
        """Report properties of one sub-device through the gateway batch topic. Returns the publish handle."""
        return self.report_batch_properties([DeviceProperty(device_id, list(services or []))], listener, compress)

    def report_batch_properties(self, device_properties: List[DeviceProperty],
                                listener: Optional["ActionListener"] = None,
                                compress: Optional[bool] = None) -> PublishHandle:
        """Report properties of many sub-devices (``gateway/sub_devices/properties/report``, QoS 1).

        The list is split into messages of at most 100 devices and at most 64 KB each (platform limits);
        the listener is called once for the whole call. Returns the publish handle (a group handle when
        several messages were needed). Raises ``ValueError`` when one device's entry alone exceeds 64 KB
        or a device id is missing; nothing is sent then. ``compress=True`` gzips each message and appends
        ``?encoding=gzip`` to the topic (None: as ``MqttConnectConf.compress_reports`` says; doc/protocol.md
        §2.11); the limits apply to the uncompressed messages.
        """
        entries: List[bytes] = []
        for dp in device_properties or []:
            entry = _to_plain(dp)
            if not isinstance(entry, dict) or not entry.get("device_id"):
                raise ValueError(f"a DeviceProperty without device_id: {dp!r}")
            data = codec.dumps_bytes(entry)
            if len(data) + _BATCH_ENVELOPE > MAX_PROPERTY_MESSAGE_BYTES:
                raise ValueError(f"properties of {entry['device_id']} exceed the "
                                 f"{MAX_PROPERTY_MESSAGE_BYTES}-byte property message limit")
            entries.append(data)
        if not entries:
            raise ValueError("device_properties is empty")
        batches: List[List[bytes]] = []
        size = 0
        for data in entries:
            if (not batches or len(batches[-1]) >= MAX_BATCH_PROPERTY_DEVICES
                    or size + len(data) + 1 + _BATCH_ENVELOPE > MAX_PROPERTY_MESSAGE_BYTES):
                batches.append([])
                size = 0
            batches[-1].append(data)
            size += len(data) + 1
        topic = topics.gateway_properties_report(self.get_device_id())
        payloads = [b'{"devices":[' + b",".join(batch) + b"]}" for batch in batches]
        if compress is None:
            compress = bool(self._client_conf.mqtt_connect_conf.compress_reports)
        if compress:
            topic = topics.gzip_topic(topic)
            payloads = [gzip.compress(p, 6, mtime=0) for p in payloads]
        return self._publish_all([RawMessage(topic, p, 1) for p in payloads], listener)

    def report_sub_device_status(self, device_id: str, status: str, listener: Optional["ActionListener"] = None) -> PublishHandle:
        """Report one sub-device ``"ONLINE"`` or ``"OFFLINE"``. Returns the publish handle."""
        return self.report_batch_status([DeviceStatus(device_id, status)], listener)

    def report_batch_status(self, statuses: List[DeviceStatus], listener: Optional["ActionListener"] = None) -> PublishHandle:
        """Report sub-device statuses (``sub_device_update_status``), at most 100 per event.

        The platform answers each event with ``sub_device_update_status_response`` (see
        :meth:`on_sub_device_status_rsp`). Returns the publish handle. Raises ``ValueError`` for an
        empty list, a missing device id or a status other than ONLINE/OFFLINE.
        """
        items = []
        for st in statuses or []:
            d = _to_plain(st)
            if not isinstance(d, dict) or not d.get("device_id"):
                raise ValueError(f"a DeviceStatus without device_id: {st!r}")
            if d.get("status") not in ("ONLINE", "OFFLINE"):
                raise ValueError(f"status must be ONLINE or OFFLINE, got {d.get('status')!r}")
            items.append({"device_id": d["device_id"], "status": d["status"]})
        if not items:
            raise ValueError("statuses is empty")
        events = [(SUB_DEVICE_MANAGER, "sub_device_update_status", {"device_statuses": chunk}, None)
                  for chunk in _chunks(items, MAX_STATUS_DEVICES)]
        return self._report_gateway_events(events, listener)

    def gtw_add_sub_device(self, added_sub_device_infos: List[AddedSubDeviceInfo], event_id: Optional[str] = None,
                           listener: Optional["ActionListener"] = None) -> PublishHandle:
        """Ask the platform to create sub-devices (``add_sub_device_request``).

        More than 50 devices are sent as several requests carrying the same ``event_id`` (one
        ``on_add_sub_device_rsp`` per request). ``event_id`` defaults to a new UUID. Empty optional fields
        are left out of the request. Returns the publish handle. Raises ``ValueError`` for an empty list
        or a device without node_id/product_id.
        """
        devices = []
        for info in added_sub_device_infos or []:
            d = _to_plain(info)
            if not isinstance(d, dict) or not d.get("node_id") or not d.get("product_id"):
                raise ValueError(f"node_id and product_id are required: {info!r}")
            devices.append({k: v for k, v in d.items() if v not in (None, "", {})})
        if not devices:
            raise ValueError("added_sub_device_infos is empty")
        event_id = event_id or str(uuid.uuid4())
        events = [(SUB_DEVICE_MANAGER, "add_sub_device_request", {"devices": chunk}, event_id)
                  for chunk in _chunks(devices, MAX_ADD_DELETE_DEVICES)]
        return self._report_gateway_events(events, listener)

    def gtw_del_sub_device(self, del_sub_devices: List[str], event_id: Optional[str] = None,
                           listener: Optional["ActionListener"] = None) -> PublishHandle:
        """Ask the platform to delete sub-devices by device id (``delete_sub_device_request``).

        Split into requests of at most 50 ids with the same ``event_id`` (default: a new UUID).
        Returns the publish handle. Raises ``ValueError`` for an empty list or a non-string id.
        """
        ids = list(del_sub_devices or [])
        if not ids or not all(isinstance(i, str) and i for i in ids):
            raise ValueError("del_sub_devices must be a non-empty list of device ids")
        event_id = event_id or str(uuid.uuid4())
        events = [(SUB_DEVICE_MANAGER, "delete_sub_device_request", {"devices": chunk}, event_id)
                  for chunk in _chunks(ids, MAX_ADD_DELETE_DEVICES)]
        return self._report_gateway_events(events, listener)

    def sync_sub_devices(self, listener: Optional["ActionListener"] = None) -> PublishHandle:
        """Ask the platform for the sub-device changes since the persistence's version.

        The platform answers with ``add_sub_device_notify``/``delete_sub_device_notify`` events, which
        update the persistence. Returns the publish handle.
        """
        try:
            version = self._sub_device_persistence.get_version()
        except Exception:
            _logger.exception("SubDevicesPersistence.get_version failed; syncing from version 0")
            version = 0
        paras = {"version": version if isinstance(version, int) else 0}
        return self._report_gateway_event(SUB_DEVICE_MANAGER, "sub_device_sync_request", paras, None, listener)

    def report_sub_event(self, sub_device_id: str, device_event: DeviceEvent,
                         listener: Optional["ActionListener"] = None) -> PublishHandle:
        """Report an event for a sub-device (e.g. a child's ``$ota`` version or progress report).

        Returns the publish handle.
        """
        if not sub_device_id:
            raise ValueError("sub_device_id is required")
        return self.get_client().report_sub_event(sub_device_id, device_event, listener)

    # ---- downlink routing ----------------------------------------------------------------------

    def _is_sub_device(self, device_id: Optional[str]) -> bool:
        return bool(device_id) and device_id != self.get_device_id()

    def on_command(self, request_id: str, command: "Command") -> None:
        """Route a command: a child's to :meth:`on_sub_dev_command`, the gateway's own to its services."""
        if not self._is_sub_device(getattr(command, "device_id", None)):
            super().on_command(request_id, command)
            return
        try:
            rsp = self.on_sub_dev_command(request_id, command)
        except Exception as exc:
            _logger.exception("on_sub_dev_command failed for %s", command.device_id)
            rsp = CommandRsp()
            rsp.result_code = CommandRsp.fail_code()
            rsp.paras = {"error": f"sub device command failed: {type(exc).__name__}"}
        if rsp is not None:
            self.get_client().respond_command(request_id, rsp)

    def on_properties_set(self, request_id: str, props_set: "PropSet") -> None:
        """Route a property set: a child's to :meth:`on_sub_dev_properties_set`, own to the services."""
        if not self._is_sub_device(getattr(props_set, "device_id", None)):
            super().on_properties_set(request_id, props_set)
            return
        try:
            result = self.on_sub_dev_properties_set(request_id, props_set)
        except Exception as exc:
            _logger.exception("on_sub_dev_properties_set failed for %s", props_set.device_id)
            result = IotResult(1, f"sub device property set failed: {type(exc).__name__}")
        if result is not None:
            self.get_client().respond_properties_set(request_id, result)

    def on_properties_get(self, request_id: str, props_get: "PropsGet") -> None:
        """Route a property query: a child's to :meth:`on_sub_dev_properties_get`, own to the services."""
        if not self._is_sub_device(getattr(props_get, "device_id", None)):
            super().on_properties_get(request_id, props_get)
            return
        try:
            services = self.on_sub_dev_properties_get(request_id, props_get)
        except Exception:
            _logger.exception("on_sub_dev_properties_get failed for %s", props_get.device_id)
            services = []
        if services is not None:
            self.get_client().respond_properties_get(request_id, services)

    def on_device_message(self, message: "DeviceMessage") -> None:
        """Route a system-format message: a child's to :meth:`on_sub_dev_message`, own to the base class."""
        if not self._is_sub_device(getattr(message, "device_id", None)):
            super().on_device_message(message)
            return
        try:
            self.on_sub_dev_message(message)
        except Exception:
            _logger.exception("on_sub_dev_message failed for %s", message.device_id)

    def on_event(self, device_events: DeviceEvents) -> None:
        """Route events: a child's batch to :meth:`on_sub_dev_event`; own ``$sub_device_manager`` events are
        handled here, the gateway's other events go to its services as for any device."""
        if self._is_sub_device(getattr(device_events, "device_id", None)):
            try:
                self.on_sub_dev_event(device_events)
            except Exception:
                _logger.exception("on_sub_dev_event failed for %s", device_events.device_id)
            return
        services = list(getattr(device_events, "services", None) or [])
        mine = [e for e in services if getattr(e, "service_id", None) in (SUB_DEVICE_MANAGER, SUB_DEVICE_DISCOVERY)]
        others = [e for e in services if e not in mine]
        if others:
            rest = DeviceEvents()
            rest.device_id = device_events.device_id
            rest.services = others
            super().on_event(rest)
        for event in mine:
            try:
                self._on_sub_device_manager_event(event)
            except Exception:
                _logger.exception("handling %s/%s failed", event.service_id, getattr(event, "event_type", None))

    def _on_sub_device_manager_event(self, event: DeviceEvent) -> None:
        event_type = getattr(event, "event_type", None)
        paras = event.paras if isinstance(getattr(event, "paras", None), dict) else {}
        event_id = getattr(event, "event_id", None) or ""
        if event_type == "add_sub_device_notify":
            self.on_add_sub_devices(SubDevicesInfo.from_dict(paras))
        elif event_type == "delete_sub_device_notify":
            self.on_delete_sub_devices(SubDevicesInfo.from_dict(paras))
        elif event_type == "add_sub_device_response":
            rsp = GtwAddSubDeviceRsp.from_dict(paras)
            if self._gtw_operate_sub_device_listener is None:
                _logger.info("add_sub_device_response %s: %r (no listener)", event_id, rsp)
            else:
                self._gtw_operate_sub_device_listener.on_add_sub_device_rsp(rsp, event_id)
        elif event_type == "delete_sub_device_response":
            del_rsp = GtwDelSubDeviceRsp.from_dict(paras)
            if self._gtw_operate_sub_device_listener is None:
                _logger.info("delete_sub_device_response %s: %r (no listener)", event_id, del_rsp)
            else:
                self._gtw_operate_sub_device_listener.on_del_sub_device_rsp(del_rsp, event_id)
        elif event_type == "sub_device_update_status_response":
            self.on_sub_device_status_rsp(paras, event_id)
        elif event_type == "start_scan":
            if self._sub_dev_discovery_listener is not None:
                self._sub_dev_discovery_listener.on_scan(ScanSubDeviceNotify().convert_from_dict(paras))
            else:
                _logger.info("start_scan ignored: no SubDevDiscoveryListener")
        else:
            _logger.info("unhandled %s event type %r", SUB_DEVICE_MANAGER, event_type)

    # ---- hooks (override in a subclass) --------------------------------------------------------

    def on_add_sub_devices(self, sub_devices_info: SubDevicesInfo) -> int:
        """The platform added sub-devices (notification or sync): store them. Returns the persistence
        result (0 = stored) or -1 when it failed."""
        try:
            return self._sub_device_persistence.add_sub_devices(sub_devices_info)
        except Exception:
            _logger.exception("SubDevicesPersistence.add_sub_devices failed")
            return -1

    def on_delete_sub_devices(self, sub_devices_info: SubDevicesInfo) -> int:
        """The platform deleted sub-devices: remove them. Returns the persistence result or -1."""
        try:
            return self._sub_device_persistence.delete_sub_devices(sub_devices_info)
        except Exception:
            _logger.exception("SubDevicesPersistence.delete_sub_devices failed")
            return -1

    def on_sub_device_status_rsp(self, response: Dict[str, Any], event_id: str) -> None:
        """The platform answered a status report (``successful_devices``/``failed_devices``). Logs failures."""
        failed = response.get("failed_devices") if isinstance(response, dict) else None
        if isinstance(failed, list) and failed:
            _logger.warning("sub device status update %s: %d device(s) refused, first: %s",
                            event_id, len(failed), failed[0])

    def on_sub_dev_command(self, request_id: str, command: "Command") -> Optional[CommandRsp]:
        """A command for a sub-device (``command.device_id``).

        Either answer it yourself with ``get_client().respond_command(request_id, rsp)`` (now or later)
        and return ``None``, or return a ``CommandRsp`` to have it sent. The default answers with a
        failure so the platform never waits for a timeout.
        """
        _logger.warning("command %s for sub device %s not handled", getattr(command, "command_name", ""),
                        command.device_id)
        rsp = CommandRsp()
        rsp.result_code = CommandRsp.fail_code()
        rsp.paras = {"error": "sub device command not handled by the gateway"}
        return rsp

    def on_sub_dev_properties_set(self, request_id: str, props_set: "PropSet") -> Optional[IotResult]:
        """A property set for a sub-device (``props_set.device_id``).

        Answer it with ``get_client().respond_properties_set(request_id, result)`` and return ``None``,
        or return an ``IotResult`` to have it sent. The default answers with a failure.
        """
        _logger.warning("property set for sub device %s not handled", props_set.device_id)
        return IotResult(1, "sub device property set not handled by the gateway")

    def on_sub_dev_properties_get(self, request_id: str, props_get: "PropsGet") -> Optional[List["ServiceProperty"]]:
        """A property query for a sub-device (``props_get.device_id``, ``props_get.service_id``).

        Answer it with ``get_client().respond_properties_get(request_id, services)`` and return ``None``,
        or return the ``ServiceProperty`` list to send. The default answers with an empty list (the
        protocol has no error code for this response).
        """
        _logger.warning("property query for sub device %s not handled", props_get.device_id)
        return []

    def on_sub_dev_message(self, message: "DeviceMessage") -> None:
        """A message for a sub-device (``message.device_id``). Default: logged at INFO."""
        _logger.info("message for sub device %s not handled", message.device_id)

    def on_sub_dev_event(self, device_events: DeviceEvents) -> None:
        """Events for a sub-device (``device_events.device_id``), e.g. a child OTA. Default: logged."""
        _logger.info("events for sub device %s not handled: %s", device_events.device_id,
                     [getattr(e, "event_type", None) for e in device_events.services or []])

    # ---- internals -----------------------------------------------------------------------------

    def _make_event(self, service_id: str, event_type: str, paras: Dict[str, Any], event_id: Optional[str]) -> DeviceEvent:
        event = DeviceEvent()
        event.service_id = service_id
        event.event_type = event_type
        event.event_time = codec.event_time()
        event.event_id = event_id or str(uuid.uuid4())
        event.paras = paras
        return event

    def _report_gateway_event(self, service_id: str, event_type: str, paras: Dict[str, Any], event_id: Optional[str],
                              listener: Optional["ActionListener"]) -> PublishHandle:
        return self.get_client().report_event(self._make_event(service_id, event_type, paras, event_id), listener)

    def _report_gateway_events(self, events: Sequence[_GatewayEvent], listener: Optional["ActionListener"]) -> PublishHandle:
        if len(events) == 1:
            return self._report_gateway_event(*events[0], listener)
        group = GroupListener(listener, len(events)) if listener is not None else None
        return PublishGroup([self._report_gateway_event(*e, group) for e in events])

    def _publish_all(self, messages: List[RawMessage], listener: Optional["ActionListener"]) -> PublishHandle:
        client = self.get_client()
        if len(messages) == 1:
            return client.publish_raw_message(messages[0], listener)
        group = GroupListener(listener, len(messages)) if listener is not None else None
        return PublishGroup([client.publish_raw_message(m, group) for m in messages])
