"""A typed user program: every public call of the upstream-style API, written as an application would.

``tests/typing/test_mypy.py`` runs ``mypy --strict`` on this file: a wrong annotation in the SDK (a return
typed ``object``, a parameter that rejects a documented ``None``, a listener signature users cannot
override) fails that test. It is written as an application would be, but the suite only type-checks it:
the behaviour of each call is tested elsewhere (tests/sdk, tests/services, tests/gateway, tests/bootstrap).
"""
from __future__ import annotations

import datetime as _dt
import sys
import tempfile
from concurrent.futures import Future
from typing import Any, Dict, List, Optional, Union

from iot_device_sdk_python import (
    BootstrapError, ConnectError, ConnectRefusedError, ConnectTimeoutError, FileTransferError, IotDeviceError,
    IotTimeoutError, OTADownloadError, PublishError, RuleParseError, TransferError)
from iot_device_sdk_python.bootstrap import bootstrap_client
from iot_device_sdk_python.bootstrap.bootstrap_client import BootstrapClient, BootstrapResult
from iot_device_sdk_python.client.client_conf import ClientConf
from iot_device_sdk_python.client.connect_auth_info import ConnectAuthInfo
from iot_device_sdk_python.client.device_client import DeviceClient
from iot_device_sdk_python.client.iot_result import FAIL, SUCCESS, IotResult
from iot_device_sdk_python.client.listener.command_listener import CommandListener
from iot_device_sdk_python.client.listener.default_publish_action_listener import DefaultPublishActionListener
from iot_device_sdk_python.client.listener.device_message_listener import DeviceMessageListener
from iot_device_sdk_python.client.listener.device_shadow_listener import DeviceShadowListener
from iot_device_sdk_python.client.listener.property_listener import PropertyListener
from iot_device_sdk_python.client.listener.raw_device_message_listener import RawDeviceMessageListener
from iot_device_sdk_python.client.mqtt_connect_conf import MqttConnectConf
from iot_device_sdk_python.client.request.command import Command
from iot_device_sdk_python.client.request.command_response import CommandRsp
from iot_device_sdk_python.client.request.device_base_info import DeviceBaseInfo
from iot_device_sdk_python.client.request.device_event import DeviceEvent
from iot_device_sdk_python.client.request.device_message import DeviceMessage
from iot_device_sdk_python.client.request.props_get import PropsGet
from iot_device_sdk_python.client.request.props_set import PropSet
from iot_device_sdk_python.client.request.raw_device_message import RawDeviceMessage
from iot_device_sdk_python.client.request.service_property import ServiceProperty
from iot_device_sdk_python.client.request.shadow_data import ShadowData
from iot_device_sdk_python.devicelog.device_log_service import DeviceLogService
from iot_device_sdk_python.filemanager.file_manager_listener import FileManagerListener
from iot_device_sdk_python.filemanager.file_manager_service import FileManagerService, FileTransferResult
from iot_device_sdk_python.filemanager.url_info import UrlInfo
from iot_device_sdk_python.gateway.abstract_gateway import AbstractGateway
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
from iot_device_sdk_python.gateway.sub_devices_persistence import MemorySubDevicesPersistence
from iot_device_sdk_python.iot_device import IotDevice
from iot_device_sdk_python.ota.ota_listener import OTAListener
from iot_device_sdk_python.ota.ota_package_info import OTAPackageInfo
from iot_device_sdk_python.ota.ota_package_info_v2 import OTAPackageInfoV2
from iot_device_sdk_python.ota.ota_query_version import OTAQueryVersion
from iot_device_sdk_python.ota.ota_service import OTAService
from iot_device_sdk_python.rule.model.action_handler import ActionHandler
from iot_device_sdk_python.rule.model.actions import Action
from iot_device_sdk_python.rule.rule_manage_service import RuleManageService
from iot_device_sdk_python.rule.rule_parser import parse_rule
from iot_device_sdk_python.service.abstract_service import AbstractService, command
from iot_device_sdk_python.service.property import Property
from iot_device_sdk_python.timesync.time_sync_listener import TimeSyncListener
from iot_device_sdk_python.timesync.time_sync_service import TimeSyncService
from iot_device_sdk_python.transport.action_listener import ActionListener
from iot_device_sdk_python.transport.connect_action_listener import ConnectActionListener
from iot_device_sdk_python.transport.connect_listener import ConnectListener
from iot_device_sdk_python.transport.publish_handle import PublishHandle
from iot_device_sdk_python.transport.raw_message import RawMessage
from iot_device_sdk_python.transport.raw_message_listener import RawMessageListener


# ---- a profile service ----------------------------------------------------------------------------------

class SmokeDetector(AbstractService):
    """Declarative properties and a command, as in the README."""

    alarm = Property(0, "alarm", "alarm", writeable=True)
    smoke_concentration = Property(0.0, "smoke_concentration", "smokeConcentration", writeable=False)

    @command("ring")
    def ring(self, paras: Dict[str, Any]) -> CommandRsp:
        rsp = CommandRsp()
        rsp.result_code = CommandRsp.success_code()
        rsp.paras = {"rang": paras.get("times", 1)}
        return rsp

    @command
    def silence(self, paras: Dict[str, Any]) -> CommandRsp:
        return CommandRsp()


# ---- listeners: the upstream ABCs, overridden with their documented signatures --------------------------

class Published(ActionListener):
    def on_success(self, message: str) -> None:
        print("published:", message)

    def on_failure(self, message: str, e: Optional[Exception]) -> None:
        print("not published:", message, e)


class Commands(CommandListener):
    def __init__(self, client: DeviceClient) -> None:
        self.client = client

    def on_command(self, request_id: str, service_id: str, command_name: str, paras: Dict[str, Any]) -> None:
        rsp = CommandRsp()
        rsp.result_code = CommandRsp.fail_code() if command_name == "fail" else CommandRsp.success_code()
        rsp.response_name = command_name
        rsp.paras = dict(paras)
        handle: PublishHandle = self.client.respond_command(request_id, rsp)
        handle.add_done_callback(lambda h: print("answered", h.topic, h.succeeded()))


class Properties(PropertyListener):
    def __init__(self, client: DeviceClient) -> None:
        self.client = client

    def on_property_set(self, request_id: str, services: List[ServiceProperty]) -> None:
        result: IotResult = SUCCESS if services else FAIL
        self.client.respond_properties_set(request_id, IotResult(result.result_code, result.result_desc))

    def on_property_get(self, request_id: str, service_id: str) -> None:
        self.client.respond_properties_get(request_id, [ServiceProperty(service_id or "smokeDetector", {"alarm": 0})])


class Messages(DeviceMessageListener):
    def on_device_message(self, message: DeviceMessage) -> None:
        print(message.id, message.name, message.content, message.device_id)


class RawMessages(RawDeviceMessageListener):
    def on_raw_device_message(self, message: RawDeviceMessage) -> None:
        parsed: Optional[DeviceMessage] = message.to_device_message()
        print(len(message.payload), parsed)
        try:
            print(message.to_utf8_string())
        except UnicodeDecodeError:
            pass


class Shadow(DeviceShadowListener):
    def on_shadow_get(self, request_id: str, object_device_id: str, shadow: List[ShadowData]) -> None:
        for entry in shadow:
            print(entry.service_id, entry.version, entry.desired, entry.reported)


class Links(ConnectListener):
    def connection_lost(self, cause: str) -> None:
        print("lost:", cause)

    def connect_complete(self, reconnect: bool, server_uri: str) -> None:
        print("connected to", server_uri, "again" if reconnect else "")


class Attempts(ConnectActionListener):
    def on_success(self, token: int) -> None:
        print("attempt ok", token)

    def on_failure(self, token: int, err: Optional[Exception]) -> None:
        print("attempt failed", token, err)


class CustomTopic(RawMessageListener):
    def on_message_received(self, message: RawMessage) -> None:
        print(message.topic, message.qos, message.payload)


class Ota(OTAListener):
    def __init__(self, ota: OTAService, workdir: str) -> None:
        self.ota = ota
        self.workdir = workdir

    def on_query_version(self, queryInfo: OTAQueryVersion) -> None:  # noqa: N803 (upstream parameter name)
        self.ota.report_version(fw_version="v1.0", sw_version=None)
        self.ota.report_version(sw_version="v2.0")

    def on_receive_package_info(self, pkg: Union[OTAPackageInfo, OTAPackageInfoV2]) -> None:
        # the documented None defaults: progress and description may be left out or passed as None
        self.ota.report_ota_status(OTAService.OTA_CODE_SUCCESS, pkg.version, progress=None, description=None)
        future: Future[str] = self.ota.download_package(pkg, self.workdir)
        try:
            path: str = future.result(timeout=60)
            self.ota.report_ota_status(OTAService.OTA_CODE_SUCCESS, pkg.version, 100, "downloaded " + path).result(10)
        except OTADownloadError as exc:
            self.ota.report_ota_status(exc.result_code, pkg.version, description=str(exc)).result(timeout=10)


class Files(FileManagerListener):
    def on_upload_url(self, url_info: UrlInfo) -> None:
        print(url_info.object_name, url_info.expire, url_info.file_attributes, url_info.to_dict())

    def on_download_url(self, url_info: UrlInfo) -> None:
        print(url_info.bucket_name, url_info.object_name)


class Clock(TimeSyncListener):
    def on_time_sync_response(self, device_send_time: int, server_recv_time: int, server_send_time: int) -> None:
        now = TimeSyncService.compute_time(device_send_time, server_recv_time, server_send_time, device_send_time)
        print("platform time", now)


class Rules(ActionHandler):
    def handle_rule_action(self, action: List[Action]) -> None:
        for a in action:
            if a.is_enabled() and a.command is not None:
                print(a.device_id, a.command.command_name, a.to_dict())


# ---- the device ------------------------------------------------------------------------------------------

def device_program(host: str, port: int, device_id: str, secret: str) -> None:
    # None means "system CAs" (documented): accepted by the type checker too
    device: IotDevice = IotDevice.create_by_secret(host, port, device_id, secret, None)
    client: DeviceClient = device.get_client()

    client.set_command_listener(Commands(client))
    client.set_properties_listener(Properties(client))
    client.set_device_msg_listener(Messages())
    client.set_raw_device_msg_listener(RawMessages())
    client.set_device_shadow_listener(Shadow())
    client.add_connect_listener(Links())
    client.set_connect_action_listener(Attempts())
    client.set_rule_action_handler(Rules())
    ok: bool = client.subscribe_topic(f"$oc/devices/{device_id}/user/#", 1, CustomTopic())

    detector = SmokeDetector()
    device.add_service("smokeDetector", detector)
    same: Optional[AbstractService] = device.get_service("smokeDetector")
    print(ok, same is detector)

    # upstream style: an int result
    rc: int = device.connect()
    if rc != 0:
        print("connect failed with", rc)
        device.destroy()
        return
    # opt-in: an exception of the error family instead of an int
    try:
        device.connect(raise_on_failure=True)
    except ConnectRefusedError as exc:
        print("refused", exc.code, exc.reason)
    except ConnectTimeoutError as exc:
        print("no CONNACK", exc.code)
    except ConnectError as exc:
        print("not connected", exc.code, exc.reason)

    # reports: every call returns a handle resolved on PUBACK
    handle: PublishHandle = client.report_properties(
        [ServiceProperty("smokeDetector", {"alarm": 1, "smokeConcentration": 12.5})], Published())
    mid: Optional[int] = handle.result(timeout=10)
    failure: Optional[BaseException] = handle.exception(timeout=10)
    print(mid, failure, handle.done(), handle.mid)

    message = DeviceMessage()
    message.content = "hello"
    message.name = "greeting"
    client.report_device_message(message, DefaultPublishActionListener())
    client.publish_raw_message(RawMessage(f"$oc/devices/{device_id}/user/raw", b"\x00\x01", 0))
    event = DeviceEvent()
    event.service_id = "smokeDetector"
    event.event_type = "alarm"
    event.paras = {"level": 3}
    client.report_event(event)
    info = DeviceBaseInfo()
    info.fw_version = "v1.0"
    info.sw_version = "v2.0"
    client.report_device_info(info).result(10)
    client.get_device_shadow("shadow-1", service_id="smokeDetector", object_device_id=None)
    device.fire_properties_changed("smokeDetector", ["alarm"])
    device.fire_services_changed(["smokeDetector"])
    detector.fire_properties_changed([])
    detector.enable_auto_report(30)
    detector.disable_auto_report()
    print(client.is_connected(), client.get_device_id(), client.enable_rule_manage(), client.get_buffer_metrics())

    # OTA
    ota: OTAService = device.get_ota_service()
    workdir = tempfile.mkdtemp()
    ota.set_ota_listener(Ota(ota, workdir))
    listener: Optional[OTAListener] = ota.get_ota_listener()
    ota.report_version("v1.0", "v2.0", Published())
    status: PublishHandle = ota.report_ota_status(OTAService.OTA_CODE_SUCCESS, "v1.0", 50, "half way")
    status.result(timeout=10)
    print(listener)

    # file manager: listener style and end-to-end transfers
    files: FileManagerService = device.get_file_manager_service()
    files.set_listener(Files())
    files.upload_file("report.txt", __file__, {"hash_code": "", "size": 1})
    files.download_file("report.txt", workdir + "/copy.txt")
    files.get_upload_file_url("report.txt")
    files.get_download_file_url("report.txt", None)
    files.report_upload_result("report.txt", 0, 200, "OK")
    files.report_download_result("report.txt", 1, None, None)
    upload: Future[FileTransferResult] = files.transfer_upload("report.txt", __file__, timeout=60.0)
    try:
        done: FileTransferResult = upload.result(timeout=90)
        print(done.object_name, done.size, done.sha256, done.status_code)
        files.transfer_download("report.txt", workdir + "/back.txt").result(timeout=90)
    except FileTransferError as exc:
        print("transfer failed", exc.status_code, exc.kind)
    print(files.upload_file_dict, files.download_file_dict, files.get_listener())

    # time sync
    sync: TimeSyncService = device.get_time_sync_service()
    sync.set_listener(Clock())
    sync.request_time_sync()
    try:
        now_ms: int = sync.sync(timeout=5.0)
        print(now_ms)
    except IotTimeoutError:
        print("no time sync answer")

    # device log
    logs: DeviceLogService = device.get_device_log_service()
    if logs.can_report_log():
        sent: Optional[PublishHandle] = logs.report_device_log(str(_dt.datetime.now().timestamp()), "DEVICE_STATUS",
                                                               "all good")
        print(sent, logs.log_switch, logs.end_time)

    # rules
    rules: RuleManageService = device.get_rule_manage_service()
    print(rules.is_enabled(), rules.get_rules(), rules.get_rule("r1"), rules.now(), rules.next_timer_fire_time())
    try:
        parse_rule({"ruleId": "r1"})
    except RuleParseError as exc:
        print("bad rule:", exc)

    device.destroy()


# ---- a gateway -------------------------------------------------------------------------------------------

class Gateway(AbstractGateway):
    def on_sub_dev_command(self, request_id: str, command: Command) -> Optional[CommandRsp]:
        return CommandRsp()

    def on_sub_dev_properties_set(self, request_id: str, props_set: PropSet) -> Optional[IotResult]:
        return IotResult(0, "Success")

    def on_sub_dev_properties_get(self, request_id: str, props_get: PropsGet) -> Optional[List[ServiceProperty]]:
        return [ServiceProperty(props_get.service_id, {"on": True})]


class SubDeviceAnswers(GtwOperateSubDeviceListener):
    def on_add_sub_device_rsp(self, gtw_add_sub_device_rsp: GtwAddSubDeviceRsp, event_id: str) -> None:
        print(event_id, gtw_add_sub_device_rsp)

    def on_del_sub_device_rsp(self, gtw_del_sub_device_rsp: GtwDelSubDeviceRsp, event_id: str) -> None:
        print(event_id, gtw_del_sub_device_rsp)


class Scanner(SubDevDiscoveryListener):
    def on_scan(self, scan_sub_device_notify: ScanSubDeviceNotify) -> None:
        print(scan_sub_device_notify.protocol)


def gateway_program(host: str, port: int, device_id: str, secret: str) -> None:
    auth = ConnectAuthInfo()
    auth.server_uri = host
    auth.port = port
    auth.id = device_id
    auth.secret = secret
    auth.iot_cert_path = None  # system CAs
    conf = MqttConnectConf()
    conf.keep_alive_time = 60
    persistence = MemorySubDevicesPersistence()
    gateway = Gateway(persistence, ClientConf(auth, conf))
    gateway.set_gtw_operate_sub_device_listener(SubDeviceAnswers())
    gateway.set_sub_dev_discovery_listener(Scanner())
    if gateway.connect() != 0:
        gateway.destroy()
        return
    child: Optional[DeviceInfo] = gateway.get_sub_device_by_node_id("node-1")
    by_id: Optional[DeviceInfo] = gateway.get_sub_device_by_device_id("product_node-1")
    print(child, by_id, gateway.get_sub_devices_persistence().get_version())
    new_child = AddedSubDeviceInfo()
    new_child.node_id = "node-2"
    new_child.product_id = "product"
    gateway.gtw_add_sub_device([new_child]).result(timeout=10)
    gateway.gtw_del_sub_device(["product_node-2"], event_id=None)
    gateway.report_sub_device_properties("product_node-1", [ServiceProperty("switch", {"on": True})])
    gateway.report_batch_properties([DeviceProperty("product_node-1", [ServiceProperty("switch", {"on": False})])])
    gateway.report_sub_device_status("product_node-1", "ONLINE")
    gateway.report_batch_status([DeviceStatus("product_node-1", "OFFLINE")])
    gateway.report_sub_dev_list([DeviceInfo()])
    message = DeviceMessage()
    message.device_id = "product_node-1"
    message.content = "from the child"
    gateway.report_sub_device_message(message)
    gateway.report_sub_event("product_node-1", DeviceEvent())
    gateway.sync_sub_devices(Published())
    print(persistence.all_devices(), SubDevicesInfo())
    gateway.destroy()


# ---- bootstrap -------------------------------------------------------------------------------------------

def bootstrap_program(host: str, port: int, device_id: str, secret: str) -> None:
    auth = ConnectAuthInfo()
    auth.server_uri = host
    auth.port = port
    auth.id = device_id
    auth.secret = secret
    auth.bs_mode = ConnectAuthInfo.BS_MODE_STANDARD_BOOTSTRAP
    try:
        result: BootstrapResult = bootstrap_client.bootstrap_with_result(auth, None, timeout=10.0)
        iotda: ConnectAuthInfo = bootstrap_client.bootstrap(auth)
        print(result.init_config, result.from_cache, iotda.server_uri, bootstrap_client.cache_path(auth))
        again: ConnectAuthInfo = BootstrapClient(auth, MqttConnectConf()).bootstrap(timeout=10.0)
        print(again.port, BootstrapClient(auth).clear_cache(), bootstrap_client.clear_bootstrap_cache(auth))
    except BootstrapError as exc:
        print("bootstrap failed", exc.code, exc.message)
    device = IotDevice(ClientConf(auth))
    try:
        device.connect(raise_on_failure=True)  # bootstraps first (bs_mode 1)
    except IotDeviceError as exc:  # the whole family: BootstrapError, ConnectError, ...
        print(type(exc).__name__, exc)
    finally:
        device.destroy()


def setup_and_lifecycle_program(host: str, port: int, device_id: str, cert: str, key: str, ca: str) -> None:
    """Configuration checks, X.509 devices, the context manager, manual rule timers and close()."""
    auth = ConnectAuthInfo()
    auth.id = device_id
    auth.server_uri = host
    auth.port = port
    auth.auth_type = ConnectAuthInfo.X509_AUTH
    auth.cert_path, auth.key_path, auth.iot_cert_path = cert, key, ca
    auth.key_password = None
    auth.reconnect_on_failure = True
    auth.min_backoff, auth.max_backoff = 1000, 30000.0
    auth.max_buffer_message = 100
    conf = MqttConnectConf()
    conf.qos = 1
    conf.timeout = 5.0
    DeviceClient.check_connect_auth_info(auth)
    DeviceClient.check_mqtt_connect_conf(conf)
    with IotDevice.create_by_certificate(host, port, device_id, cert, key, ca) as device:
        print(device.get_device_id(), device.get_client().get_device_id())
        rules = device.get_rule_manage_service()
        rules.set_clock(lambda: _dt.datetime.now(_dt.timezone.utc), manual_timers=True)
        fired: int = rules.run_due_timers()
        action = Action()
        action.command = Command()
        rules.handle_action(action)
        print(fired)
        device.get_client().close()


def errors_program(handle: PublishHandle) -> None:
    """Every error family member is an IotDeviceError, with its own fields."""
    try:
        handle.result(timeout=1.0)
    except PublishError as exc:
        print(exc.reason)
    except TransferError as exc:
        print(exc.kind, exc.status_code)
    except IotDeviceError as exc:
        print(exc)


def main(argv: List[str]) -> int:
    if len(argv) != 5:
        print(__doc__)
        return 2
    host, port, device_id, secret = argv[1], int(argv[2]), argv[3], argv[4]
    device_program(host, port, device_id, secret)
    gateway_program(host, port, device_id, secret)
    bootstrap_program(host, port, device_id, secret)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
