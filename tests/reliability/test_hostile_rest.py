"""A hostile application against the emulator's REST API (the operations added this session and their
neighbours): wrong JSON types at every field, raw junk bodies, hostile path segments and pagination, SearchDevices
statements that are malformed or built to make a regex backtrack, parallel create/delete of the same objects.

Every answer must be an answer: never a 500, never a hang (each request has a 30 s client timeout; the server
answers these in milliseconds), and every refusal in IoTDA's ``{"error_code", "error_msg"}`` shape. The whole
module runs with the root logger at DEBUG: no tornado "Uncaught exception" and no secret, token, verify code or
presigned-URL signature the run handled may appear in any log line.

Real parts only: an emulator of this module's own (the fuzz changes state) on a real Mosquitto, plain HTTP.
"""
from __future__ import annotations

import concurrent.futures as cf
import datetime as _dt
import json
import logging
import re
import threading
import uuid
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from iotda_emulator import Emulator
from tests.reliability._log_capture import LogCapture, captured_logs

TIMEOUT = 30          # a hang guard, not a performance bound
JSON = {"Content-Type": "application/json"}

#: Values put at every field of a valid body, one at a time.
HOSTILE: List[Any] = [None, [], {}, 0, -1, 1.5, "1", "", True, 10 ** 30, "x" * 5000, ["x"] * 500,
                      {"a": {"b": [1, {"c": None}]}}, "\u0000\u202e\ud7ff中文\U0001f600",
                      "'; DROP TABLE devices; --", "../../etc/passwd"]
#: Whole bodies that are not a JSON object, or not JSON (NaN and Infinity are not JSON either).
RAW_BODIES: List[bytes] = [b"[]", b"null", b"1", b'"s"', b'{"a": NaN}', b'{"a": -Infinity}', b"{" * 3000,
                           b"[" * 100000 + b"]" * 100000, b"\xff\xfe{}", b'{"a": "\xed\xa0\x80"}', b"{}"]
#: Hostile path segments (as sent on the wire; a literal ``..`` is resolved by the client before sending, so the
#: server-side case is ``%2e%2e``, which tornado decodes to ``..`` in the path argument).
BAD_IDS = ["%2e%2e", "%2F", "%00", "%ff", "a" * 1000, "%E4%B8%AD%E6%96%87", "%20", "'", "null"]
#: Pagination and filter arguments out of range or of the wrong type.
BAD_QUERIES: List[Dict[str, str]] = [
    {"limit": "0"}, {"limit": "-1"}, {"limit": "51"}, {"limit": "abc"}, {"limit": "99999999999999999999999"},
    {"offset": "-1"}, {"offset": "501"}, {"offset": "1e3"}, {"marker": "'junk\u00ff"}, {"marker": "0" * 300},
    {"start_time": "x"}, {"end_time": "20991399T999999Z"}, {"status": "\u0000"}, {"app_id": "%"},
    {"group_type": "[]"}, {"product_id": "x" * 500}, {"device_id": ".."}, {"topic_full_name": "#"},
]


@pytest.fixture(scope="module")
def logs() -> Iterator[LogCapture]:
    with captured_logs() as handler:
        yield handler


@pytest.fixture(scope="module")
def emu(logs: LogCapture) -> Iterator[Emulator]:
    e = Emulator(command_timeout=2.0).start()
    try:
        yield e
    finally:
        e.stop()


class Api:
    """requests against ``/v5/iot/p1`` that check every answer is an answer (no 500, IoTDA's error shape)."""

    def __init__(self, emu: Emulator) -> None:
        self.root = emu.http_url
        self.base = emu.http_url + "/v5/iot/p1"
        self.session = requests.Session()
        self.secrets: set = set()       # every secret-like value an answer carried (for the log check)

    def raw(self, method: str, path: str, body: Optional[bytes] = None, params: Any = None,
            session: Optional[requests.Session] = None) -> requests.Response:
        url = path if path.startswith("http") else self.base + path
        r = (session or self.session).request(method, url, data=body, params=params,
                                              headers=JSON if body is not None else None, timeout=TIMEOUT)
        what = f"{method} {path} {params or ''} body={(body or b'')[:160]!r}"
        assert r.status_code < 500, f"{what} -> {r.status_code} {r.text[:300]}"
        if r.status_code >= 400:
            try:
                err = r.json()
            except ValueError:
                raise AssertionError(f"{what} -> {r.status_code} not JSON: {r.text[:200]}") from None
            assert isinstance(err, dict) and isinstance(err.get("error_code"), str) \
                and isinstance(err.get("error_msg"), str), f"{what} -> {r.status_code} {err}"
            assert "Traceback" not in r.text, f"{what} -> {r.text[:300]}"
        elif r.content and r.headers.get("Content-Type", "").startswith("application/json"):
            self._collect(r.json())
        return r

    def call(self, method: str, path: str, obj: Any = None, params: Any = None, **kw: Any) -> requests.Response:
        return self.raw(method, path, None if obj is None else json.dumps(obj).encode(), params, **kw)

    def ok(self, method: str, path: str, obj: Any = None) -> Any:
        """The JSON of a call that must succeed."""
        r = self.call(method, path, obj)
        assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text[:300]}"
        return r.json() if r.content else None

    def _collect(self, obj: Any) -> None:
        if isinstance(obj, dict):
            for k, v in obj.items():
                if isinstance(v, str) and len(v) >= 8 and re.search(r"secret|token|verify_code|password", k, re.I):
                    self.secrets.add(v)
                if isinstance(v, str) and "Signature=" in v:
                    self.secrets.add(v.split("Signature=", 1)[1].split("&")[0])
                self._collect(v)
        elif isinstance(obj, list):
            for v in obj:
                self._collect(v)


def _mutations(body: Any) -> Iterator[Any]:
    """``body`` with one field (at any depth) replaced by each hostile value, or removed."""
    if isinstance(body, dict):
        for key, value in body.items():
            rest = {k: v for k, v in body.items() if k != key}
            yield rest
            for bad in HOSTILE:
                yield dict(body, **{key: bad})
            for inner in _mutations(value):
                yield dict(body, **{key: inner})
    elif isinstance(body, list) and body:
        for bad in HOSTILE:
            yield [bad] + body[1:]
        for inner in _mutations(body[0]):
            yield [inner] + body[1:]


class _Ca:
    """A device CA for AddCertificate (EC P-256, self-signed, CA:TRUE)."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hostile-ca-" + uuid.uuid4().hex[:6])])
        now = _dt.datetime.now(_dt.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number()).not_valid_before(now - _dt.timedelta(hours=1))
                     .not_valid_after(now + _dt.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))

    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def world(emu: Emulator) -> Dict[str, Any]:
    """Objects of every kind the operations below need, made through the REST API itself."""
    api = Api(emu)
    w: Dict[str, Any] = {"api": api}
    w["product"] = api.ok("POST", "/products", {"name": "hostile", "product_id": "hostile_prod",
                                                  "device_type": "t", "protocol_type": "MQTT",
                                                  "service_capabilities": []})["product_id"]
    gw = api.ok("POST", "/devices", {"node_id": "hgw", "product_id": w["product"]})
    child = api.ok("POST", "/devices", {"node_id": "hchild", "product_id": w["product"],
                                          "gateway_id": gw["device_id"]})
    dev = api.ok("POST", "/devices", {"node_id": "hdev", "product_id": w["product"]})
    w.update(gw=gw["device_id"], child=child["device_id"], did=dev["device_id"])
    w["group"] = api.ok("POST", "/device-group", {"name": "hostile-static"})["group_id"]
    w["dyn"] = api.ok("POST", "/device-group", {"name": "hostile-dyn", "group_type": "DYNAMIC",
                                                   "dynamic_group_rule": "node_id like 'h%'"})["group_id"]
    w["policy"] = api.ok("POST", "/device-policies", {
        "policy_name": "hostile", "statement": [{"effect": "ALLOW", "actions": ["iotda:devices:publish"],
                                                 "resources": ["topic:a/b"]}]})["policy_id"]
    w["bridge"] = api.ok("POST", "/bridges", {"bridge_name": "hostile"})["bridge_id"]
    w["tunnel"] = api.ok("POST", "/tunnels", {"device_id": w["did"]})["tunnel_id"]
    w["config_task"] = api.ok("POST", "/device-config-tasks", {"config_content": {"a": 1},
                                                                 "targets": [w["did"]]})["task_id"]
    w["batch"] = api.ok("POST", "/batchtasks", {"task_name": "h", "task_type": "unfreezeDevices",
                                                  "targets": [w["did"]]})["task_id"]
    w["async"] = api.ok("POST", f"/devices/{w['did']}/async-commands", {"paras": {"x": 1}})["command_id"]
    w["module"] = api.ok("POST", "/ota-upgrades/modules", {"product_id": w["product"],
                                                             "module_name": "mcu"})["module_id"]
    ca = _Ca()
    cert = api.ok("POST", "/certificates", {"content": ca.pem()})
    w["cert"], w["ca_pem"] = cert["certificate_id"], ca.pem()
    return w


def _operations(w: Dict[str, Any]) -> List[Tuple[str, str, Any]]:
    """(method, path, a valid body) of the operations under attack; bodies get mutated field by field."""
    did, gw, grp = w["did"], w["gw"], w["group"]
    tags = {"resource_type": "device", "resource_id": did, "tags": [{"tag_key": "k1", "tag_value": "v1"}]}
    statement = [{"effect": "ALLOW", "actions": ["iotda:devices:publish"], "resources": ["topic:a/b"]}]
    return [
        ("POST", f"/devices/{did}/change-gateway", {"gateway_id": gw}),
        ("POST", "/search/query-devices", {"sql": "select * from device where node_id = 'hdev' limit 5"}),
        ("POST", f"/devices/{did}/async-commands", {"service_id": "s", "command_name": "c", "paras": {"a": [1]},
                                                    "expire_time": 60, "send_strategy": "delay"}),
        ("POST", f"/devices/{did}/async-commands-history/count", {}),
        ("POST", "/device-group", {"name": "g-" + uuid.uuid4().hex[:6], "description": "d",
                                   "super_group_id": grp, "group_type": "STATIC"}),
        ("POST", "/device-group", {"name": "d-" + uuid.uuid4().hex[:6], "group_type": "DYNAMIC",
                                   "dynamic_group_rule": "device_id = 'x' or tag_key in ('a', 'b')"}),
        ("PUT", f"/device-group/{grp}", {"name": "hostile-static", "description": "dd"}),
        ("POST", f"/devices/{did}/list-device-group", {}),
        ("POST", "/tags/bind-resource", tags),
        ("POST", "/tags/query-resources", {"resource_type": "device", "tags": [{"tag_key": "k1", "tag_value": "v1"}]}),
        ("POST", "/tags/unbind-resource", {"resource_type": "device", "resource_id": did, "tag_keys": ["k1"]}),
        ("POST", "/broadcast-messages", {"topic_full_name": "$oc/broadcast/h", "message": "aGk=", "ttl": 0,
                                         "message_id": "m1", "app_id": "a1"}),
        ("POST", "/device-config-tasks", {"config_content": {"interval": 5, "n": {"x": [1]}}, "targets": [did],
                                          "timeout": 1, "task_name": "t"}),
        ("POST", "/certificates", {"content": w["ca_pem"], "app_id": "a1"}),
        ("PUT", f"/certificates/{w['cert']}", {"provision_enable": True, "template_id": "t1",
                                                "ocsp_enable": False}),
        ("POST", f"/certificates/{w['cert']}/action?action_id=verify", {"verify_content": w["ca_pem"]}),
        ("POST", f"/devices/{did}/reset-fingerprint", {"fingerprint": "ab" * 20, "fingerprint_type": "PRIMARY",
                                                       "force_disconnect": False}),
        ("POST", "/batchtasks", {"task_name": "t", "task_type": "freezeDevices", "targets": [w["child"]],
                                 "task_ext_info": {"a": 1}}),
        ("POST", f"/batchtasks/{w['batch']}/stop", {"targets": [did]}),
        ("POST", f"/batchtasks/{w['batch']}/retry", {"targets": [did]}),
        ("POST", f"/batchtasks/{w['batch']}/confirm", {"targets": [did]}),
        ("POST", "/ota-upgrades/modules", {"product_id": w["product"], "module_name": "m2", "alias_name": "a",
                                           "description": "d"}),
        ("PUT", f"/ota-upgrades/modules/{w['module']}", {"alias_name": "b", "description": "e"}),
        ("POST", "/device-policies", {"policy_name": "p-" + uuid.uuid4().hex[:6], "statement": statement}),
        ("PUT", f"/device-policies/{w['policy']}", {"policy_name": "hostile", "statement": statement}),
        ("POST", f"/device-policies/{w['policy']}/bind", {"target_type": "device", "target_ids": [did]}),
        ("POST", f"/device-policies/{w['policy']}/unbind", {"target_type": "device", "target_ids": [did]}),
        ("POST", f"/device-policies/{w['policy']}/list-targets", {"target_type": "device", "limit": 10,
                                                                  "offset": 0, "marker": "0" * 24}),
        ("POST", "/bridges", {"bridge_name": "b", "bridge_id": "b-" + uuid.uuid4().hex[:6]}),
        ("POST", f"/bridges/{w['bridge']}/reset-secret", {"force_disconnect": False}),
        ("POST", "/tunnels", {"device_id": gw}),
        ("POST", f"/devices/{did}/messages", {"message": {"a": 1}, "message_id": "mid1", "name": "n",
                                              "topic": "t1", "ttl": 5, "encoding": "none",
                                              "payload_format": "standard", "properties": {"user_properties": []}}),
        ("POST", "/ota-upgrades/packages", {"package_type": "firmwarePackage", "version": "9.9",
                                            "product_id": w["product"], "custom_info": "c",
                                            "support_source_versions": ["1.0"],
                                            "file_location": {"obs_location": {"bucket_name": "b", "object_key": "k"}}}),
        ("PUT", f"/devices/{did}", {"device_name": "n", "description": "d", "extension_info": {"a": 1},
                                    "auth_info": {"secure_access": True}}),
        ("POST", f"/devices/{w['child']}/freeze", {}),
        ("POST", f"/devices/{w['child']}/unfreeze", {}),
    ]


def _gets(w: Dict[str, Any]) -> List[str]:
    did = w["did"]
    return ["/device-group", f"/device-group/{w['group']}", f"/device-group/{w['group']}/devices",
            f"/device-group/{w['dyn']}/devices", f"/devices/{did}/async-commands",
            f"/devices/{did}/async-commands/{w['async']}", f"/devices/{did}/async-commands-history",
            "/broadcast-messages", "/device-config-tasks", f"/device-config-tasks/{w['config_task']}",
            "/certificates", f"/certificates/{w['cert']}", "/batchtasks", f"/batchtasks/{w['batch']}",
            "/batchtask-files", "/ota-upgrades/modules", f"/ota-upgrades/modules/{w['module']}",
            "/device-policies", f"/device-policies/{w['policy']}", "/bridges", "/tunnels",
            f"/tunnels/{w['tunnel']}", f"/devices/{did}/messages", "/devices", f"/devices/{did}"]


def test_every_field_of_every_new_operation_with_hostile_values(world: Dict[str, Any]) -> None:
    api: Api = world["api"]
    sent = 0
    for method, path, body in _operations(world):
        for raw in RAW_BODIES:
            api.raw(method, path, raw)
            sent += 1
        for mutated in _mutations(body):
            api.call(method, path, mutated)
            sent += 1
        api.call(method, path, body)   # the valid body still gets an answer afterwards
    assert sent > 1500   # the generator really produced the mutations


def test_hostile_pagination_filters_and_path_segments(world: Dict[str, Any]) -> None:
    api: Api = world["api"]
    for path in _gets(world):
        for params in BAD_QUERIES:
            api.call("GET", path, params=params)
    # hostile ids in every position of the new routes (the real device id elsewhere), every method
    did = world["did"]
    templates = ["/device-group/{x}", "/device-group/{x}/devices", "/device-group/{x}/action?action_id=addDevice"
                 f"&device_id={did}", "/devices/{x}/async-commands", f"/devices/{did}/async-commands/{{x}}",
                 "/devices/{x}/list-device-group", "/device-config-tasks/{x}", "/certificates/{x}",
                 "/certificates/{x}/action?action_id=verify", "/devices/{x}/reset-fingerprint",
                 "/batchtasks/{x}/stop", "/ota-upgrades/modules/{x}", "/device-policies/{x}",
                 "/device-policies/{x}/bind", "/bridges/{x}", "/bridges/{x}/reset-secret", "/tunnels/{x}",
                 "/devices/{x}/freeze", "/devices/{x}/change-gateway", f"/devices/{did}/messages/{{x}}"]
    for side in ("device-connect", "source-connect"):   # the tunnel relay's WebSocket paths, without an upgrade
        for bad in BAD_IDS:
            r = api.raw("GET", f"{api.root}/v5/iot/tunnels/{bad}/{side}")
            assert r.status_code >= 400, (side, bad, r.status_code)
    for template in templates:
        for bad in BAD_IDS:
            url = api.base + template.replace("{x}", bad)
            for method in ("GET", "POST", "PUT", "DELETE"):
                r = api.raw(method, url, b"{}" if method in ("POST", "PUT") else None)
                assert r.status_code >= 400, (method, url, r.status_code)   # no such object exists


SEARCHES = [
    "select * from device where device_id = 'unterminated",
    "select * from device where device_id = '" + "a" * 359 + "'",               # 400 characters exactly
    "select * from device where device_id = '" + "a" * 360 + "'",               # 401
    "select * from device where " + " and ".join(f"node_id = '{i}'" for i in range(6)),
    "select * from device where " + " or ".join(f"node_id = '{i}'" for i in range(5)),
    "select * from device where node_id in ()",
    "select * from device where node_id not in ('a',)",
    "select * from device where node_id = 'x' or 1=1; drop table devices; --",
    "select * from device where node_id = 'x'' or ''1''=''1'",
    "select * from device where node_id = \"x\"",
    "select * from device where (node_id = 'x')",
    "select * from device where node_id like '%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%'",
    "select count(*) from device where status = 'ONLINE'",
    "select count(2) from device",
    "select device_id, __class__, node_id from device limit 501, 10",
    "select * from device limit 0",
    "select * from device limit 99999999999999999999999999999999999999",
    "select * from device order by marker desc limit 3",
    "select * from device order by device_id",
    "select * from devices",
    "SELECT * FROM device WHERE create_time > 1e309",
    "select * from device where node_id = 中文",
    "select * from device where node_id = '\u0000\u202e'",
    "select",
    "   ",
    "select * from device where marker > -99999999999999999999999999",
]


def test_search_devices_statements_malformed_hostile_and_edge(world: Dict[str, Any]) -> None:
    api: Api = world["api"]
    assert (len(SEARCHES[1]), len(SEARCHES[2])) == (400, 401)
    for sql in SEARCHES:
        r = api.call("POST", "/search/query-devices", {"sql": sql})
        assert r.status_code in (200, 400), (sql, r.status_code, r.text[:200])
    ok = api.call("POST", "/search/query-devices", {"sql": SEARCHES[1]})
    assert ok.status_code == 200 and ok.json()["count"] == 0
    assert api.call("POST", "/search/query-devices", {"sql": SEARCHES[2]}).status_code == 400
    assert api.call("POST", "/search/query-devices", {"sql": SEARCHES[3]}).status_code == 400   # 6 conditions


def test_a_backtracking_like_pattern_neither_hangs_nor_misses(emu: Emulator, world: Dict[str, Any]) -> None:
    """``%a%a...%b`` as a regex (``.*a.*a...b``) backtracks exponentially against a long run of ``a``: with 12
    of them one SearchDevices call blocked the HTTP server's event loop for minutes, and a dynamic group whose
    rule holds it would block every group listing. Now each LIKE is a linear-time wildcard match."""
    api: Api = world["api"]
    runs = "a" * 48
    rec = api.call("POST", "/devices", {"node_id": runs, "product_id": world["product"]}).json()
    evil = "%a" * 20 + "%b"
    statement = f"select device_id from device where node_id like '{evil}'"
    found = api.call("POST", "/search/query-devices", {"sql": statement}).json()
    assert found["count"] == 0
    fine = api.call("POST", "/search/query-devices",
                    {"sql": "select device_id from device where node_id like '" + "%a" * 20 + "%'"}).json()
    assert rec["device_id"] in [d["device_id"] for d in fine["devices"]]
    under = api.call("POST", "/search/query-devices",
                     {"sql": "select device_id from device where node_id like '" + "_" * 48 + "'"}).json()
    assert rec["device_id"] in [d["device_id"] for d in under["devices"]]
    group = api.call("POST", "/device-group", {"name": "evil-dyn", "group_type": "DYNAMIC",
                                               "dynamic_group_rule": f"node_id like '{evil}'"}).json()
    members = api.call("GET", f"/device-group/{group['group_id']}/devices").json()
    assert members["page"]["count"] == 0
    assert api.call("POST", f"/devices/{rec['device_id']}/list-device-group", {}).status_code == 200
    assert api.call("GET", "/devices").status_code == 200   # the server is still answering


def test_unanswered_async_commands_hold_no_thread_each(emu: Emulator, world: Dict[str, Any]) -> None:
    """An application may send any number of asynchronous commands to an online device that never answers;
    each used to start a threading.Timer (one OS thread, alive for the 180 s response timeout)."""
    from tests.emulator.bare_device import BareDevice

    api: Api = world["api"]
    rec = emu.create_device()
    silent = BareDevice(emu.host, emu.mqtt_port, rec["device_id"], rec["secret"]).connect()
    try:
        assert emu.wait_online(rec["device_id"])
        before = threading.active_count()
        for i in range(150):
            assert api.call("POST", f"/devices/{rec['device_id']}/async-commands",
                            {"paras": {"i": i}}).json()["status"] == "SENT"
        assert threading.active_count() - before <= 5, threading.active_count() - before
        listed = api.call("GET", f"/devices/{rec['device_id']}/async-commands", params={"limit": "50"}).json()
        assert listed["page"]["count"] == 150
    finally:
        silent.close()


def _parallel(n: int, fn: Any) -> List[Any]:
    with cf.ThreadPoolExecutor(n) as pool:
        return list(pool.map(fn, range(n)))


def test_parallel_create_and_delete_of_the_same_objects(emu: Emulator, world: Dict[str, Any]) -> None:
    api: Api = world["api"]
    local = threading.local()

    def session() -> requests.Session:
        if not hasattr(local, "s"):
            local.s = requests.Session()
        return local.s

    for round_ in range(4):
        name = f"race-{round_}-{uuid.uuid4().hex[:4]}"
        codes = _parallel(12, lambda i: api.call("POST", "/device-group", {"name": name},
                                                 session=session()).status_code)
        assert codes.count(201) == 1 and set(codes) <= {201, 400}, codes
        groups = api.call("GET", "/device-group", params={"name": name}).json()["device_groups"]
        assert len(groups) == 1
        gid = groups[0]["group_id"]
        codes = _parallel(12, lambda i: api.call("DELETE", f"/device-group/{gid}", session=session()).status_code)
        assert codes.count(204) >= 1 and set(codes) <= {204, 400, 404}, codes

        device_id = f"race_dev_{round_}_{uuid.uuid4().hex[:4]}"
        body = {"device_id": device_id, "node_id": device_id, "product_id": world["product"]}
        codes = _parallel(10, lambda i: api.call("POST", "/devices", body, session=session()).status_code)
        assert codes.count(201) == 1 and set(codes) <= {201, 409}, codes

        def tag_or_untag(i: int) -> int:
            if i % 2:
                return api.call("POST", "/tags/bind-resource", {"resource_type": "device", "resource_id": device_id,
                                                                "tags": [{"tag_key": f"k{i % 5}", "tag_value": "v"}]},
                                session=session()).status_code
            return api.call("POST", "/tags/unbind-resource", {"resource_type": "device", "resource_id": device_id,
                                                              "tag_keys": [f"k{i % 5}"]}, session=session()).status_code

        assert set(_parallel(12, tag_or_untag)) <= {200}
        codes = _parallel(8, lambda i: (api.call("DELETE", f"/devices/{device_id}", session=session())
                                        if i % 2 else api.call("POST", "/tags/bind-resource", {
                                            "resource_type": "device", "resource_id": device_id,
                                            "tags": [{"tag_key": "late", "tag_value": "v"}]},
                                            session=session())).status_code)
        assert set(codes) <= {200, 204, 404}, codes
        assert api.call("GET", f"/devices/{device_id}").status_code == 404


def test_tornado_log_lines_lose_their_query_strings(emu: Emulator, logs: LogCapture) -> None:
    """Tornado writes the request URI (query included) into its own warnings and "Uncaught exception" errors;
    a presigned URL carries its signature there. The HTTP server masks every query in tornado's loggers."""
    marker = "Signature=" + uuid.uuid4().hex
    for name in ("tornado.general", "tornado.application"):
        logging.getLogger(name).warning("400 GET /objects/b/k?X-Expires=1&X-%s (127.0.0.1): bad", marker)
        logging.getLogger(name).error("(synthetic) %s\n%r", "GET /x?a=1",
                                      f"HTTPServerRequest(uri='/objects/b/k?{marker}', version='HTTP/1.1')")
    mine = [line for name, _, line in logs.lines if name.startswith("tornado") and "/objects/b/k" in line]
    assert len(mine) == 4 and not [line for line in mine if marker in line], mine


def test_no_uncaught_exception_and_no_secret_in_any_log_line(logs: LogCapture, world: Dict[str, Any],
                                                             emu: Emulator) -> None:
    """Runs last in this module (pytest keeps file order): everything above happened under DEBUG logging."""
    api: Api = world["api"]
    # secrets of every kind the REST side hands out, plus a presigned URL used with a broken path
    dev = api.call("POST", "/devices", {"node_id": "logsecret", "product_id": world["product"],
                                        "auth_info": {"secret": "S3cretVal_" + uuid.uuid4().hex[:12]}}).json()
    api.call("POST", f"/devices/{dev['device_id']}/action?action_id=resetSecret",
             {"secret": "N3wSecret_" + uuid.uuid4().hex[:12]})
    api.call("POST", f"/bridges/{world['bridge']}/reset-secret", {})
    api.call("POST", "/certificates", {"content": _Ca().pem()})
    api.call("POST", "/tunnels", {"device_id": dev["device_id"]})
    up = api.call("POST", emu.http_url + "/emulator/objects/upload-url",
                  {"bucket_name": "b1", "object_key": "k/x.bin", "size": 3}).json()
    url = up.get("url") or next(v for v in up.values() if isinstance(v, str) and "Signature=" in v)
    signature = url.split("Signature=", 1)[1].split("&")[0]
    query = url.split("?", 1)[1]
    for path in ("/objects/b1/%ff", "/objects/%ff/k", "/objects/b1/k/x.bin"):
        r = requests.request("PATCH" if path.endswith(".bin") else "GET", f"{emu.http_url}{path}?{query}",
                             timeout=TIMEOUT)
        assert r.status_code in (400, 403, 404, 405), (path, r.status_code)
    assert signature in api.secrets or len(signature) >= 16
    api.secrets.add(signature)
    secrets = {s for s in api.secrets if len(s) >= 8}
    kinds = " ".join(sorted(secrets))
    assert len(secrets) >= 5, kinds
    lines = list(logs.lines)
    assert any(level == logging.DEBUG and name.startswith("iotda_emulator") for name, level, _ in lines)
    uncaught = [line[:400] for name, _, line in lines if "Uncaught exception" in line or
                (name.startswith("tornado") and "Traceback" in line)]
    assert not uncaught, uncaught
    leaks = [(name, line[:300]) for name, _, line in lines for s in secrets if s in line]
    assert not leaks, leaks
