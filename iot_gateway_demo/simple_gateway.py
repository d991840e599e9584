"""``SimpleGateway``: the IoTDA gateway behind the TCP server, bridging platform traffic and child sessions.

Threads: the SDK calls the ``on_sub_dev_*`` hooks on its dispatcher thread; they only hand the work to
the Tornado IOLoop with ``IOLoop.add_callback``. Sessions, pending requests and stream writes are
touched on the IOLoop thread only, so no lock is needed for them. The persistence has its own lock.
"""
from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any, Callable, Dict, List, Optional

from tornado.ioloop import IOLoop

from iot_device_sdk_python.client.iot_result import IotResult
from iot_device_sdk_python.client.request.command_response import CommandRsp
from iot_device_sdk_python.client.request.device_event import DeviceEvent
from iot_device_sdk_python.client.request.device_message import DeviceMessage
from iot_device_sdk_python.client.request.service_property import ServiceProperty
from iot_device_sdk_python.gateway.abstract_gateway import AbstractGateway
from iot_device_sdk_python.gateway.requests.added_sub_device_info import AddedSubDeviceInfo
from iot_device_sdk_python.gateway.requests.device_status import DeviceStatus
from iot_device_sdk_python.gateway.requests.sub_devices_info import SubDevicesInfo
from iot_device_sdk_python.transport.connect_listener import ConnectListener

from iot_gateway_demo.gtw_op_sub_device_listener import GtwOpSubDeviceListener
from iot_gateway_demo.session import Session

_logger = logging.getLogger(__name__)

NODE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DEFAULT_REQUEST_TIMEOUT = 15.0   # below the platform's 20 s, so the platform gets our error, not a timeout


class ProtocolError(ValueError):
    """A child sent something the protocol does not allow; the text is sent back as ``ERR <text>``."""


class _Pending:
    """A platform request forwarded to a child and waiting for its answer."""

    def __init__(self, kind: str, session: Session, timer: Any) -> None:
        self.kind = kind          # "CMD", "SET" or "GET"
        self.session = session
        self.timer = timer


class _ResyncOnConnect(ConnectListener):
    """After every (re)connection: sync the sub-device list and re-report the connected children online."""

    def __init__(self, gateway: "SimpleGateway") -> None:
        self._gateway = gateway

    def connection_lost(self, cause: str) -> None:
        _logger.warning("gateway connection lost: %s", cause)

    def connect_complete(self, reconnect: bool, server_uri: str) -> None:
        try:
            self._gateway.sync_sub_devices()
        except Exception:
            _logger.exception("sub device sync failed")
        if reconnect:
            self._gateway.call_on_loop(self._gateway.report_sessions_online)


def _json_arg(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ProtocolError(f"{what} is not valid JSON: {exc}") from None


class SimpleGateway(AbstractGateway):
    """A gateway whose children are TCP :class:`Session` objects (see :mod:`iot_gateway_demo.session`)."""

    def __init__(self, sub_devices_persistence, client_conf, sub_product_id: str = "emu_product",
                 request_timeout: float = DEFAULT_REQUEST_TIMEOUT) -> None:
        self._io_loop: Optional[IOLoop] = None
        self._sub_product_id = sub_product_id
        self._request_timeout = request_timeout
        self._sessions: Dict[str, Session] = {}          # node_id -> logged-in session
        self._pending_logins: Dict[str, Session] = {}    # node_id -> session waiting for the platform
        self._pending: Dict[str, _Pending] = {}          # request_id -> forwarded platform request
        super().__init__(sub_devices_persistence, client_conf)
        self.set_gtw_operate_sub_device_listener(GtwOpSubDeviceListener(self))
        self.get_client().add_connect_listener(_ResyncOnConnect(self))

    # ---- IOLoop plumbing -------------------------------------------------------------------------

    def attach_io_loop(self, io_loop: Optional[IOLoop]) -> None:
        """The IOLoop that owns the sessions (``None`` detaches: downlink for children is then refused)."""
        self._io_loop = io_loop

    def call_on_loop(self, fn: Callable, *args: Any) -> bool:
        """Run ``fn(*args)`` on the IOLoop thread; False when no loop is attached."""
        loop = self._io_loop
        if loop is None:
            return False
        loop.add_callback(self._guarded, fn, *args)
        return True

    @staticmethod
    def _guarded(fn: Callable, *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            _logger.exception("gateway task %s failed", getattr(fn, "__name__", fn))

    def sessions(self) -> Dict[str, Session]:
        """``{node_id: Session}`` of logged-in children (IOLoop thread only)."""
        return dict(self._sessions)

    def _session_by_device_id(self, device_id: str) -> Optional[Session]:
        for session in self._sessions.values():
            if session.device_id == device_id:
                return session
        return None

    # ---- child -> gateway (IOLoop thread) --------------------------------------------------------

    def handle_line(self, session: Session, line: str) -> Optional[str]:
        """Handle one protocol line from ``session``; return the reply line (``None``: close after QUIT).

        Raises :class:`ProtocolError` for bad input (the caller answers ``ERR <text>``).
        """
        verb, _, rest = line.strip().partition(" ")
        verb = verb.upper()
        rest = rest.strip()
        if verb == "PING":
            return "OK pong"
        if verb == "LOGIN":
            return self._login(session, rest)
        if verb == "QUIT":
            self.session_closed(session)
            return None
        if verb in ("CMDRSP", "SETRSP", "GETRSP"):
            return self._answer(session, verb[:3], rest)
        if verb not in ("MSG", "PROPS", "DEL"):
            raise ProtocolError(f"unknown command {verb[:32]!r}")
        if session.node_id is None:
            raise ProtocolError("log in first: LOGIN <node_id>")
        if verb == "MSG":
            msg = DeviceMessage()
            msg.device_id = session.device_id
            msg.name = "tcp_message"
            msg.content = rest
            self.report_sub_device_message(msg)
            return "OK message reported"
        if verb == "PROPS":
            services = self._parse_services(_json_arg(rest, "PROPS argument"))
            self.report_sub_device_properties(session.device_id, services)
            return f"OK {len(services)} service(s) reported"
        self.gtw_del_sub_device([session.device_id], str(uuid.uuid4()))
        return "OK deleting"

    def _login(self, session: Session, node_id: str) -> str:
        if session.node_id is not None or session.pending_node_id is not None:
            raise ProtocolError(f"already logged in as {session.node_id or session.pending_node_id}")
        if not NODE_ID_RE.match(node_id):
            raise ProtocolError("node id must be 1-64 of letters, digits, '_' and '-'")
        info = self.get_sub_device_by_node_id(node_id)
        if info is not None and info.device_id:
            self._bind(session, node_id, info.device_id)
            return f"OK online {info.device_id}"
        waiting = self._pending_logins.get(node_id)
        if waiting is not None and not waiting.closed:
            raise ProtocolError(f"node {node_id} is already being added by another connection")
        self._pending_logins[node_id] = session
        session.pending_node_id = node_id
        add = AddedSubDeviceInfo(parent_device_id=self.get_device_id(), node_id=node_id, name=node_id,
                                 description="TCP child of the gateway demo", product_id=self._sub_product_id)
        handle = self.gtw_add_sub_device([add], str(uuid.uuid4()))

        def sent(h) -> None:
            # e.g. the gateway is offline without a buffer: the platform will never answer this login
            exc = h.exception(0)
            if exc is not None:
                self.call_on_loop(self._fail_logins, [(node_id, f"request not sent: {exc}")])

        handle.add_done_callback(sent)
        return f"OK adding {node_id}"

    def _bind(self, session: Session, node_id: str, device_id: str) -> None:
        old = self._sessions.get(node_id)
        if old is not None and old is not session:
            # the child reconnected while its old connection still looked open: the newest one wins
            old.write_line("BYE replaced by a newer connection")
            old.node_id = old.device_id = None
            old.close()
        session.node_id, session.device_id, session.pending_node_id = node_id, device_id, None
        self._sessions[node_id] = session
        self.report_sub_device_status(device_id, "ONLINE")

    def session_closed(self, session: Session) -> None:
        """The connection ended (or QUIT): report the child offline and fail its pending requests."""
        if session.pending_node_id is not None and self._pending_logins.get(session.pending_node_id) is session:
            del self._pending_logins[session.pending_node_id]
        if session.node_id is not None and self._sessions.get(session.node_id) is session:
            del self._sessions[session.node_id]
            try:
                self.report_sub_device_status(session.device_id, "OFFLINE")
            except Exception:
                _logger.exception("reporting %s offline failed", session.device_id)
        for request_id, pending in list(self._pending.items()):
            if pending.session is session:
                self._fail_pending(request_id, "sub device disconnected")
        session.node_id = session.device_id = session.pending_node_id = None

    def report_sessions_online(self) -> None:
        """Report every connected child ONLINE again (after the gateway reconnected)."""
        statuses = [DeviceStatus(s.device_id, "ONLINE") for s in self._sessions.values() if s.device_id]
        if statuses:
            self.report_batch_status(statuses)

    @staticmethod
    def _parse_services(obj: Any) -> List[ServiceProperty]:
        items = obj if isinstance(obj, list) else [obj]
        services = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("service_id"), str) \
                    or not isinstance(item.get("properties"), dict):
                raise ProtocolError('expected {"service_id": "...", "properties": {...}} or a list of them')
            services.append(ServiceProperty(item["service_id"], item["properties"]))
        if not services:
            raise ProtocolError("no services given")
        return services

    def _answer(self, session: Session, kind: str, rest: str) -> str:
        request_id, _, body = rest.partition(" ")
        pending = self._pending.get(request_id)
        if pending is None or pending.kind != kind or pending.session is not session:
            raise ProtocolError(f"no pending {kind} request {request_id!r} for this connection")
        obj = _json_arg(body or "{}", f"{kind}RSP argument")
        client = self.get_client()
        if kind == "CMD":
            if not isinstance(obj, dict):
                raise ProtocolError("CMDRSP expects a JSON object")
            rsp = CommandRsp()
            rsp.convert_from_dict(obj)
            self._take_pending(request_id)
            client.respond_command(request_id, rsp)
        elif kind == "SET":
            if not isinstance(obj, dict):
                raise ProtocolError("SETRSP expects a JSON object")
            code = obj.get("result_code", 0)
            if not isinstance(code, int) or isinstance(code, bool):
                raise ProtocolError("result_code must be an integer")
            self._take_pending(request_id)
            client.respond_properties_set(request_id, IotResult(code, str(obj.get("result_desc", ""))))
        else:
            services = self._parse_services(obj) if obj not in ([], {}) else []
            self._take_pending(request_id)
            client.respond_properties_get(request_id, services)
        return f"OK answered {request_id}"

    # ---- platform -> child (dispatcher thread -> IOLoop) -----------------------------------------

    def on_sub_dev_command(self, request_id, command):
        payload = {"service_id": command.service_id, "command_name": command.command_name, "paras": command.paras}
        if self.call_on_loop(self._forward, "CMD", request_id, command.device_id, payload):
            return None   # answered later by the child, or by the timeout
        return CommandRsp(CommandRsp.fail_code(), paras={"error": "gateway TCP server not running"})

    def on_sub_dev_properties_set(self, request_id, props_set):
        payload = [{"service_id": s.service_id, "properties": s.properties} for s in props_set.services or []]
        if self.call_on_loop(self._forward, "SET", request_id, props_set.device_id, payload):
            return None
        return IotResult(1, "gateway TCP server not running")

    def on_sub_dev_properties_get(self, request_id, props_get):
        payload = {"service_id": props_get.service_id or None}
        if self.call_on_loop(self._forward, "GET", request_id, props_get.device_id, payload):
            return None
        return []

    def on_sub_dev_message(self, message):
        payload = {"id": message.id, "name": message.name, "content": message.content}
        self.call_on_loop(self._push, message.device_id, "MSG " + json.dumps(payload, ensure_ascii=False))

    def on_sub_dev_event(self, device_events):
        for event in device_events.services or []:
            if event.service_id == "$ota" and event.event_type == "version_query":
                self.call_on_loop(self._answer_version_query, device_events.device_id)
            self.call_on_loop(self._push, device_events.device_id,
                              "EVT " + json.dumps(event.to_dict(), ensure_ascii=False))

    def on_add_sub_devices(self, sub_devices_info: SubDevicesInfo) -> int:
        result = super().on_add_sub_devices(sub_devices_info)
        nodes = [(d.node_id, d.device_id) for d in sub_devices_info.devices]
        self.call_on_loop(self._complete_logins, nodes)
        return result

    def on_delete_sub_devices(self, sub_devices_info: SubDevicesInfo) -> int:
        result = super().on_delete_sub_devices(sub_devices_info)
        self.call_on_loop(self._end_deleted, [(d.node_id, d.device_id) for d in sub_devices_info.devices])
        return result

    def on_add_refused(self, reasons: list) -> None:
        """Called by the listener: fail the pending logins of refused children."""
        self.call_on_loop(self._fail_logins, [(r.node_id, f"{r.error_code} {r.error_msg}") for r in reasons])

    def on_delete_refused(self, reasons: list) -> None:
        self.call_on_loop(self._delete_refused, [(r.device_id, f"{r.error_code} {r.error_msg}") for r in reasons])

    # ---- IOLoop side of the downlink ---------------------------------------------------------------

    def _forward(self, kind: str, request_id: str, device_id: str, payload: Any) -> None:
        session = self._session_by_device_id(device_id)
        if session is None:
            self._respond_error(kind, request_id, f"sub device {device_id} is not connected")
            return
        timer = IOLoop.current().call_later(self._request_timeout, self._fail_pending, request_id,
                                            "sub device did not answer in time")
        self._pending[request_id] = _Pending(kind, session, timer)
        session.write_line(f"{kind} {request_id} {json.dumps(payload, ensure_ascii=False)}")

    def _take_pending(self, request_id: str) -> Optional[_Pending]:
        pending = self._pending.pop(request_id, None)
        if pending is not None:
            IOLoop.current().remove_timeout(pending.timer)
        return pending

    def _fail_pending(self, request_id: str, reason: str) -> None:
        pending = self._take_pending(request_id)
        if pending is not None:
            self._respond_error(pending.kind, request_id, reason)

    def _respond_error(self, kind: str, request_id: str, reason: str) -> None:
        _logger.warning("%s %s answered with an error: %s", kind, request_id, reason)
        client = self.get_client()
        if kind == "CMD":
            client.respond_command(request_id, CommandRsp(CommandRsp.fail_code(), paras={"error": reason}))
        elif kind == "SET":
            client.respond_properties_set(request_id, IotResult(1, reason))
        else:
            client.respond_properties_get(request_id, [])

    def _push(self, device_id: str, line: str) -> None:
        session = self._session_by_device_id(device_id)
        if session is None:
            _logger.info("downlink for %s dropped: not connected", device_id)
            return
        session.write_line(line)

    def _answer_version_query(self, device_id: str) -> None:
        session = self._session_by_device_id(device_id)
        event = DeviceEvent()
        event.service_id = "$ota"
        event.event_type = "version_report"
        event.paras = {"fw_version": session.fw_version if session else "v1.0",
                       "sw_version": session.sw_version if session else "v1.0"}
        self.report_sub_event(device_id, event)

    def _complete_logins(self, nodes: list) -> None:
        for node_id, device_id in nodes:
            session = self._pending_logins.pop(node_id, None)
            if session is None or session.closed or not device_id:
                continue
            self._bind(session, node_id, device_id)
            session.write_line(f"OK online {device_id}")

    def _fail_logins(self, failures: list) -> None:
        for node_id, reason in failures:
            session = self._pending_logins.pop(node_id, None)
            if session is not None:
                session.pending_node_id = None
                session.write_line(f"ERR add failed: {reason}")

    def _end_deleted(self, nodes: list) -> None:
        for node_id, device_id in nodes:
            session = self._sessions.get(node_id) if node_id else self._session_by_device_id(device_id)
            if session is None:
                continue
            del self._sessions[session.node_id]
            session.write_line("BYE deleted")
            session.node_id = session.device_id = None

    def _delete_refused(self, failures: list) -> None:
        for device_id, reason in failures:
            session = self._session_by_device_id(device_id)
            if session is not None:
                session.write_line(f"ERR delete failed: {reason}")
