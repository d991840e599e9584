"""The upstream public API (doc/migration.md) is all here: module paths, class names, method names and the
parameter names callers pass by keyword. A rename or a dropped parameter fails this test."""
import importlib
import inspect

import pytest

# (module, class or None for module functions, {callable name: [parameter names in order, self excluded]})
UPSTREAM = [
    ("iot_device_sdk_python.iot_device", "IotDevice", {
        "__init__": ["client_conf"], "connect": [], "get_client": [], "get_ota_service": [],
        "get_time_sync_service": [], "get_file_manager_service": [], "get_rule_manage_service": [],
        "get_device_log_service": [], "destroy": [],
        "create_by_secret": ["server_uri", "port", "device_id", "secret", "iot_cert_file"],
        "create_by_certificate": ["server_uri", "port", "device_id", "cert_path", "key_path", "iot_cert_file"],
        "add_service": ["service_id", "device_service"], "get_service": ["service_id"],
        "fire_properties_changed": ["service_id", "properties"], "fire_services_changed": ["service_ids"],
    }),
    ("iot_device_sdk_python.client.client_conf", "ClientConf", {
        "__init__": ["connect_auth_info", "mqtt_connect_conf"]}),
    ("iot_device_sdk_python.client.connect_auth_info", "ConnectAuthInfo", {"__init__": []}),
    ("iot_device_sdk_python.client.mqtt_connect_conf", "MqttConnectConf", {"__init__": []}),
    ("iot_device_sdk_python.client.iot_result", "IotResult", {
        "__init__": ["result_code", "result_desc"], "to_dict": []}),
    ("iot_device_sdk_python.client.device_client", "DeviceClient", {
        "__init__": ["connect_auth_info", "mqtt_connect_conf", "device"],
        "check_connect_auth_info": ["connect_auth_info"], "check_mqtt_connect_conf": ["mqtt_connect_conf"],
        "connect": [], "close": [], "_get_connection": [], "on_message_received": ["message"],
        "report_device_message": ["device_message", "listener"],
        "report_properties": ["services", "listener"],
        "get_device_shadow": ["request_id", "service_id", "object_device_id", "listener"],
        "report_event": ["device_event", "listener"],
        "report_sub_event": ["sub_device_id", "device_event", "listener"],
        "respond_command": ["request_id", "command_response", "listener"],
        "respond_properties_get": ["request_id", "services", "listener"],
        "respond_properties_set": ["request_id", "iot_result", "listener"],
        "publish_raw_message": ["raw_message", "listener"],
        "report_device_info": ["device_info", "listener"],
        "on_device_msg": ["message"], "on_command": ["message"], "on_rule_command": ["request_id", "command"],
        "on_device_shadow": ["message"], "on_properties_set": ["message"], "on_properties_get": ["message"],
        "on_event": ["message"], "on_rule_action_handler": ["action"], "on_bootstrap": ["message"],
        "set_raw_device_msg_listener": ["raw_device_msg_listener"],
        "set_device_msg_listener": ["device_msg_listener"], "set_properties_listener": ["property_listener"],
        "set_command_listener": ["command_listener"],
        "set_device_shadow_listener": ["device_shadow_listener"],
        "set_rule_action_handler": ["rule_action_handler"],
        "subscribe_topic": ["topic", "qos", "message_listener"],
        "add_connect_listener": ["connect_listener"],
        "set_connect_action_listener": ["connect_action_listener"], "enable_rule_manage": [],
    }),
    ("iot_device_sdk_python.client.listener.command_listener", "CommandListener", {
        "on_command": ["request_id", "service_id", "command_name", "paras"]}),
    ("iot_device_sdk_python.client.listener.device_message_listener", "DeviceMessageListener", {
        "on_device_message": ["message"]}),
    ("iot_device_sdk_python.client.listener.raw_device_message_listener", "RawDeviceMessageListener", {
        "on_raw_device_message": ["message"]}),
    ("iot_device_sdk_python.client.listener.property_listener", "PropertyListener", {
        "on_property_set": ["request_id", "services"], "on_property_get": ["request_id", "service_id"]}),
    ("iot_device_sdk_python.client.listener.device_shadow_listener", "DeviceShadowListener", {
        "on_shadow_get": ["request_id", "object_device_id", "shadow"]}),
    ("iot_device_sdk_python.client.listener.default_publish_action_listener", "DefaultPublishActionListener", {
        "on_success": ["message"], "on_failure": ["message", "e"]}),
    ("iot_device_sdk_python.client.request.command", "Command", {"to_dict": [], "convert_from_dict": ["json_dict"]}),
    ("iot_device_sdk_python.client.request.command_response", "CommandRsp", {
        "to_dict": [], "convert_from_dict": ["json_dict"], "success_code": [], "fail_code": []}),
    ("iot_device_sdk_python.client.request.device_base_info", "DeviceBaseInfo", {}),
    ("iot_device_sdk_python.client.request.device_event", "DeviceEvent", {
        "to_dict": [], "convert_from_dict": ["json_dict"]}),
    ("iot_device_sdk_python.client.request.device_events", "DeviceEvents", {
        "to_dict": [], "convert_from_dict": ["json_dict"]}),
    ("iot_device_sdk_python.client.request.device_message", "DeviceMessage", {
        "to_dict": [], "convert_from_dict": ["json_dict"]}),
    ("iot_device_sdk_python.client.request.properties_data", "PropertiesData", {"convert_from_dict": ["json_dict"]}),
    ("iot_device_sdk_python.client.request.props_get", "PropsGet", {"convert_from_dict": ["json_dict"]}),
    ("iot_device_sdk_python.client.request.props_set", "PropSet", {}),
    ("iot_device_sdk_python.client.request.raw_device_message", "RawDeviceMessage", {
        "__init__": ["payload"], "to_utf8_string": [], "to_device_message": []}),
    ("iot_device_sdk_python.client.request.service_property", "ServiceProperty", {
        "__init__": ["service_id", "properties", "event_time"], "to_dict": [], "convert_from_dict": ["json_dict"]}),
    ("iot_device_sdk_python.client.request.shadow_data", "ShadowData", {"convert_from_dict": ["json_dict"]}),
    ("iot_device_sdk_python.transport.action_listener", "ActionListener", {
        "on_success": ["message"], "on_failure": ["message", "e"]}),
    ("iot_device_sdk_python.transport.connect_listener", "ConnectListener", {
        "connection_lost": ["cause"], "connect_complete": ["reconnect", "server_uri"]}),
    ("iot_device_sdk_python.transport.connect_action_listener", "ConnectActionListener", {
        "on_success": ["token"], "on_failure": ["token", "err"]}),
    ("iot_device_sdk_python.transport.raw_message_listener", "RawMessageListener", {
        "on_message_received": ["message"]}),
    ("iot_device_sdk_python.transport.raw_message", "RawMessage", {"__init__": ["topic", "payload", "qos"]}),
    ("iot_device_sdk_python.transport.buffer_message", "BufferMessage", {"__init__": ["raw_message", "listener"]}),
    ("iot_device_sdk_python.transport.connection", "Connection", {
        "connect": [], "publish_message": ["message", "listener"], "close": [], "is_connected": [],
        "add_connect_listener": ["connect_listener"], "set_connect_action_listener": ["connect_action_listener"],
        "subscribe_topic": ["topic", "qos"]}),
    ("iot_device_sdk_python.transport.mqtt.mqtt_connection", "MqttConnection", {
        "__init__": ["connect_auth_info", "mqtt_connect_conf", "raw_msg_listener"],
        "connect": [], "publish_message": ["raw_message", "message_publish_listener"], "close": [],
        "is_connected": [], "_get_paho_client": []}),
    ("iot_device_sdk_python.service.i_service", "IService", {
        "on_read": ["properties"], "on_write": ["properties"], "on_command": ["command"],
        "on_event": ["device_event"]}),
    ("iot_device_sdk_python.service.property", "Property", {
        "__init__": ["val", "field_name", "prop_name", "writeable"]}),
    ("iot_device_sdk_python.service.abstract_service", "AbstractService", {
        "on_read": ["properties"], "on_write": ["properties"], "on_event": ["device_event"],
        "fire_properties_changed": ["properties"], "on_command": ["command"], "get_iot_device": [],
        "set_iot_device": ["iot_device"], "enable_auto_report": ["report_interval"], "disable_auto_report": []}),
    ("iot_device_sdk_python.service.abstract_device", "AbstractDevice", {
        "__init__": ["client_conf"], "connect": [], "get_client": [],
        "add_service": ["service_id", "device_service"], "get_service": ["service_id"],
        "fire_properties_changed": ["service_id", "properties"], "fire_services_changed": ["service_ids"],
        "get_device_id": [], "on_command": ["request_id", "command"],
        "on_properties_set": ["request_id", "props_set"], "on_properties_get": ["request_id", "props_get"],
        "on_event": ["device_events"], "on_rule_action_handler": ["action_list"],
        "on_device_message": ["message"], "get_ota_service": [], "get_time_sync_service": [],
        "get_device_log_service": [], "get_file_manager_service": [], "get_rule_manage_service": [],
        "destroy": []}),
    ("iot_device_sdk_python.ota.ota_service", "OTAService", {
        "set_ota_listener": ["ota_listener"], "on_event": ["device_event"],
        "report_version": ["fw_version", "sw_version", "listener"],
        "report_ota_status": ["result_code", "version", "progress", "description", "listener"]}),
    ("iot_device_sdk_python.ota.ota_listener", "OTAListener", {
        "on_query_version": ["queryInfo"], "on_receive_package_info": ["pkg"]}),
    ("iot_device_sdk_python.ota.ota_package_info", "OTAPackageInfo", {
        "to_dict": [], "convert_from_dict": ["json_dict"]}),
    ("iot_device_sdk_python.ota.ota_package_info_v2", "OTAPackageInfoV2", {
        "to_dict": [], "convert_from_dict": ["json_dict"]}),
    ("iot_device_sdk_python.ota.ota_query_version", "OTAQueryVersion", {
        "to_dict": [], "convert_from_dict": ["json_dict"]}),
    ("iot_device_sdk_python.filemanager.file_manager_service", "FileManagerService", {
        "get_listener": [], "set_listener": ["listener"],
        "upload_file": ["file_name", "file_path", "file_attributes"],
        "get_upload_file_url": ["file_name", "file_attributes", "listener"],
        "download_file": ["file_name", "file_path", "file_attributes"],
        "get_download_file_url": ["file_name", "file_attributes", "listener"], "on_event": ["device_event"],
        "report_upload_result": ["object_name", "result_code", "status_code", "status_description", "listener"],
        "report_download_result": ["object_name", "result_code", "status_code", "status_description",
                                   "listener"]}),
    ("iot_device_sdk_python.filemanager.file_manager_listener", "FileManagerListener", {
        "on_upload_url": ["url_info"], "on_download_url": ["url_info"]}),
    ("iot_device_sdk_python.filemanager.url_info", "UrlInfo", {"to_dict": [], "convert_from_dict": ["json_dict"]}),
    ("iot_device_sdk_python.timesync.time_sync_service", "TimeSyncService", {
        "get_listener": [], "set_listener": ["listener"], "request_time_sync": ["listener"],
        "on_event": ["device_event"]}),
    ("iot_device_sdk_python.timesync.time_sync_listener", "TimeSyncListener", {
        "on_time_sync_response": ["device_send_time", "server_recv_time", "server_send_time"]}),
    ("iot_device_sdk_python.devicelog.device_log_service", "DeviceLogService", {
        "on_event": ["device_event"], "report_device_log": ["timestamp", "log_type", "content"],
        "can_report_log": []}),
    ("iot_device_sdk_python.devicelog.listener.default_conn_log_listener", "DefaultConnLogListener", {
        "__init__": ["device_log_service"]}),
    ("iot_device_sdk_python.devicelog.listener.default_conn_action_log_listener", "DefaultConnActionLogListener", {
        "__init__": ["device_log_service"]}),
    ("iot_device_sdk_python.rule.rule_manage_service", "RuleManageService", {
        "__init__": ["device_client"], "on_event": ["device_event"], "on_write": ["properties"],
        "handle_rule": ["services"], "handle_action": ["action"]}),
    ("iot_device_sdk_python.rule.model.action_handler", "ActionHandler", {"handle_rule_action": ["action"]}),
    ("iot_device_sdk_python.rule.model.actions", "Action", {}),
    ("iot_device_sdk_python.rule.model.connditions", "Condition", {}),
    ("iot_device_sdk_python.rule.model.device_info", "DeviceInfo", {}),
    ("iot_device_sdk_python.rule.model.rule_info", "RuleInfo", {}),
    ("iot_device_sdk_python.rule.model.time_range", "TimeRange", {}),
    ("iot_device_sdk_python.rule.model.condition_execute", "ConditionExecute", {
        "is_condition_satisfied": ["condition", "properties"]}),
    ("iot_device_sdk_python.rule.timer_rule.timer_rule", "TimerRuleInstance", {
        "__init__": ["device_client"], "submit_rule": ["rule_info"], "start": [], "shutdown_timer": []}),
    ("iot_device_sdk_python.rule.util.time_util", None, {
        "check_time_range": ["time_range"], "get_rule_week": ["week"]}),
    ("iot_device_sdk_python.gateway.abstract_gateway", "AbstractGateway", {
        "__init__": ["sub_devices_persistence", "client_conf"],
        "set_sub_dev_discovery_listener": ["sub_dev_discovery_listener"],
        "set_gtw_operate_sub_device_listener": ["gtw_operate_sub_device_listener"],
        "get_sub_device_by_node_id": ["node_id"], "get_sub_device_by_device_id": ["device_id"],
        "report_sub_dev_list": ["device_infos", "listener"],
        "report_sub_device_message": ["device_message", "listener"],
        "report_sub_device_properties": ["device_id", "services", "listener"],
        "report_batch_properties": ["device_properties", "listener"],
        "report_sub_device_status": ["device_id", "status", "listener"],
        "report_batch_status": ["statuses", "listener"],
        "gtw_add_sub_device": ["added_sub_device_infos", "event_id", "listener"],
        "gtw_del_sub_device": ["del_sub_devices", "event_id", "listener"], "sync_sub_devices": [],
        "on_add_sub_devices": ["sub_devices_info"], "on_delete_sub_devices": ["sub_devices_info"],
        "on_sub_dev_command": ["request_id", "command"], "on_sub_dev_properties_set": ["request_id", "props_set"],
        "on_sub_dev_properties_get": ["request_id", "props_get"], "on_sub_dev_message": ["message"],
        "on_sub_dev_event": ["device_events"]}),
    ("iot_device_sdk_python.gateway.gtw_operate_sub_device_listener", "GtwOperateSubDeviceListener", {
        "on_add_sub_device_rsp": ["gtw_add_sub_device_rsp", "event_id"],
        "on_del_sub_device_rsp": ["gtw_del_sub_device_rsp", "event_id"]}),
    ("iot_device_sdk_python.gateway.gtw_operate_sub_device_listener", "GtwAddSubDeviceRsp", {}),
    ("iot_device_sdk_python.gateway.gtw_operate_sub_device_listener", "GtwDelSubDeviceRsp", {}),
    ("iot_device_sdk_python.gateway.sub_dev_discovery_listener", "SubDevDiscoveryListener", {
        "on_scan": ["scan_sub_device_notify"]}),
    ("iot_device_sdk_python.gateway.sub_devices_persistence", "SubDevicesPersistence", {
        "get_sub_device": ["node_id"], "add_sub_devices": ["sub_devices_info"],
        "delete_sub_devices": ["sub_devices_info"], "get_version": []}),
    ("iot_device_sdk_python.gateway.requests.device_info", "DeviceInfo", {
        "to_dict": [], "convert_from_dict": ["json_dict"]}),
    ("iot_device_sdk_python.gateway.requests.added_sub_device_info", "AddedSubDeviceInfo", {
        "to_dict": [], "convert_from_dict": ["json_dict"]}),
    ("iot_device_sdk_python.gateway.requests.added_sub_device_info_rsp", "AddedSubDeviceInfoRsp", {
        "to_dict": [], "convert_from_dict": ["json_dict"]}),
    ("iot_device_sdk_python.gateway.requests.add_sub_device_failed_reason", "AddSubDeviceFailedReason", {
        "to_dict": [], "convert_from_dict": ["json_dict"]}),
    ("iot_device_sdk_python.gateway.requests.del_sub_device_failed_reason", "DelSubDeviceFailedReason", {
        "to_dict": [], "convert_from_dict": ["json_dict"]}),
    ("iot_device_sdk_python.gateway.requests.device_property", "DeviceProperty", {"to_dict": []}),
    ("iot_device_sdk_python.gateway.requests.device_status", "DeviceStatus", {
        "to_dict": [], "convert_from_dict": ["json_dict"]}),
    ("iot_device_sdk_python.gateway.requests.gtw_add_sub_device_rsp", "GtwAddSubDeviceRsp", {"to_dict": []}),
    ("iot_device_sdk_python.gateway.requests.gtw_del_sub_device_rsp", "GtwDelSubDeviceRsp", {"to_dict": []}),
    ("iot_device_sdk_python.gateway.requests.scan_sub_device_notify", "ScanSubDeviceNotify", {}),
    ("iot_device_sdk_python.gateway.requests.sub_devices_info", "SubDevicesInfo", {}),
    ("iot_device_sdk_python.utils.iot_util", None, {
        "get_gmt_timestamp": [], "get_timestamp": [], "get_event_time": [],
        "get_client_id": ["device_id", "psw_sig_type", "timestamp"], "sha256_hash_from_file": ["file_path"],
        "sha256_mac": ["secret", "timestamp"], "sha256_mac_salt": ["secret", "salt"],
        "get_request_id_from_msg": ["msg"], "get_device_id_from_msg": ["msg"], "str_is_empty": ["value"],
        "get_node_id_from_device_id": ["device_id"]}),
]

CONSTANTS = [
    ("iot_device_sdk_python.client.connect_auth_info", "ConnectAuthInfo",
     {"SECRET_AUTH": 0, "X509_AUTH": 1, "PROTOCOL_MQTT": "MQTT", "BS_MODE_DIRECT_CONNECT": 0,
      "BS_MODE_STANDARD_BOOTSTRAP": 1, "BS_MODE_BOOTSTRAP_WITH_SCOPEID": 2}),
    ("iot_device_sdk_python.ota.ota_service", "OTAService",
     {"OTA_CODE_SUCCESS": 0, "OTA_CODE_BUSY": 1, "OTA_CODE_SIGNAL_BAD": 2, "OTA_CODE_NO_NEED": 3,
      "OTA_CODE_LOW_POWER": 4, "OTA_CODE_LOW_SPACE": 5, "OTA_CODE_DOWNLOAD_TIMEOUT": 6, "OTA_CODE_CHECK_FAIL": 7,
      "OTA_CODE_UNKNOWN_TYPE": 8, "OTA_CODE_LOW_MEMORY": 9, "OTA_CODE_INSTALL_FAIL": 10,
      "OTA_CODE_INNER_ERROR": 255}),
]

DATA_FIELDS = [  # rw properties of the plain data holders that users set by name
    ("iot_device_sdk_python.client.connect_auth_info", "ConnectAuthInfo",
     ["id", "auth_type", "secret", "cert_path", "key_path", "iot_cert_path", "server_uri", "port", "protocol",
      "scope_id", "bs_mode", "bs_cert_path", "bs_message", "check_timestamp", "reconnect_on_failure",
      "min_backoff", "max_backoff", "enable_rule_manage", "max_buffer_message", "inflight_messages",
      "auto_report_device_info"]),
    ("iot_device_sdk_python.client.mqtt_connect_conf", "MqttConnectConf", ["keep_alive_time", "qos", "timeout"]),
    ("iot_device_sdk_python.ota.ota_package_info_v2", "OTAPackageInfoV2",
     ["url", "version", "file_size", "file_name", "expires", "sign", "custom_info", "task_id",
      "sub_device_count", "task_ext_info"]),
    ("iot_device_sdk_python.filemanager.url_info", "UrlInfo",
     ["url", "bucket_name", "object_name", "expire", "file_attributes"]),
    ("iot_device_sdk_python.gateway.requests.device_info", "DeviceInfo",
     ["parent_device_id", "node_id", "device_id", "name", "description", "manufacturer_id", "model",
      "product_id", "fw_version", "sw_version", "status"]),
]


def _ids(rows):
    return [f"{m.rsplit('.', 1)[-1]}.{c or '<module>'}" for m, c, _ in rows]


@pytest.mark.parametrize("module_name,class_name,members", UPSTREAM, ids=_ids(UPSTREAM))
def test_upstream_names_and_parameters(module_name, class_name, members):
    module = importlib.import_module(module_name)
    owner = getattr(module, class_name) if class_name else module
    for name, expected in members.items():
        member = getattr(owner, name, None)
        assert member is not None, f"{module_name}.{class_name or ''}.{name} is missing"
        params = [p for p in inspect.signature(member).parameters.values()
                  if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        names = [p.name for p in params]
        if names and names[0] in ("self", "cls") and not isinstance(inspect.getattr_static(owner, name),
                                                                    staticmethod):
            names = names[1:]
        assert names[:len(expected)] == expected, f"{name}{tuple(names)} should start with {tuple(expected)}"
        extra = params[len(expected) + (len(params) - len(names)):]
        assert all(p.default is not p.empty or p.kind == p.KEYWORD_ONLY for p in extra), \
            f"{name}: parameters beyond upstream must be optional: {[p.name for p in extra]}"


@pytest.mark.parametrize("module_name,class_name,values", CONSTANTS, ids=_ids(CONSTANTS))
def test_upstream_constants(module_name, class_name, values):
    owner = getattr(importlib.import_module(module_name), class_name)
    for name, value in values.items():
        assert getattr(owner, name) == value, name


@pytest.mark.parametrize("module_name,class_name,fields", DATA_FIELDS, ids=_ids(DATA_FIELDS))
def test_upstream_data_fields_are_read_write(module_name, class_name, fields):
    obj = getattr(importlib.import_module(module_name), class_name)()
    for field in fields:
        value = getattr(obj, field)          # readable with its default
        setattr(obj, field, value)            # writable with a value of its own type
        assert getattr(obj, field) == value, field


def test_iot_result_module_constants():
    from iot_device_sdk_python.client import iot_result
    assert (iot_result.SUCCESS.result_code, iot_result.FAIL.result_code, iot_result.TIMEOUT.result_code) == (0, 1, 2)


def test_flat_reexports():
    import iot_device_sdk_python as sdk
    from iot_device_sdk_python.iot_device import IotDevice
    for name in ("IotDevice", "ClientConf", "ConnectAuthInfo", "MqttConnectConf"):
        assert hasattr(sdk, name), name
    assert sdk.IotDevice is IotDevice


def test_api_reference_is_current():
    """doc/api-reference.md is regenerated with `make docs` whenever a public docstring or signature changes."""
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    sys.path.insert(0, str(root / "doc"))
    try:
        import gen_api_reference
    finally:
        sys.path.pop(0)
    current = (root / "doc" / "api-reference.md").read_text(encoding="utf-8")
    assert current == gen_api_reference.render(), "doc/api-reference.md is stale: run `make docs`"
