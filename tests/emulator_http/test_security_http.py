"""The emulator's HTTP side against a hostile client (issue 13, items 1 and 5-8).

Real emulator, real Mosquitto, real sockets: poisoned topics, swapped signed bodies, browser-forgeable
requests (CSRF / DNS rebinding), secrets in the served trace, and malformed or oversized requests.
"""
from __future__ import annotations

import hashlib
import json
import socket
import uuid

import pytest
import requests

from iot_device_sdk_python.protocol import topics
from iotda_emulator import Emulator
from tests.emulator_http.conftest import RawDevice, wait_until

AK, SK = "sec-ak", "sec-sk-" + "x" * 16
NOSNIFF = "X-Content-Type-Options"


def _iotda_error(resp: requests.Response, status: int) -> dict:
    """The body of an IoTDA-shaped JSON error answer with ``status`` (and nosniff)."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers.get(NOSNIFF) == "nosniff", resp.headers
    assert resp.headers.get("Content-Type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert isinstance(body.get("error_code"), str) and body["error_code"]
    assert isinstance(body.get("error_msg"), str) and body["error_msg"]
    return body


@pytest.fixture(scope="module")
def keyed():
    """A private emulator whose HTTP API requires SDK-HMAC signatures (one application key)."""
    emu = Emulator(command_timeout=5.0, app_keys={AK: SK}).start()
    try:
        yield emu
    finally:
        emu.stop()


# ---- item 1: strings that reach the MQTT wire ---------------------------------------------------------

BAD_TOPICS = {
    "newline": "user/a\nb",
    "nul": "user/a\x00b",
    "noncharacter": "user/a\uffffb",
    "surrogate": "user/a\ud800b",
    "plus": "user/+/b",
    "hash": "user/#",
    "empty": "",
    "too long": "user/" + "x" * 130,
}


def test_poisoned_topics_get_400_and_the_platform_keeps_working(fresh_emulator):
    emu = fresh_emulator
    rec = emu.create_device()
    device = RawDevice(emu.host, emu.mqtt_port, rec["device_id"], rec["secret"])
    device.responders[topics.COMMAND] = lambda info, req: {"result_code": 0, "paras": {"echo": req.get("paras")}}
    device.connect()
    try:
        assert emu.wait_online(rec["device_id"], timeout=10)
        base = f"http://{emu.host}:{emu.http_port}"
        url = f"{base}/v5/iot/p/devices/{rec['device_id']}/messages"
        for label, topic in BAD_TOPICS.items():
            for field in ("topic", "topic_full_name"):
                value = topic if field == "topic" else f"$oc/devices/{rec['device_id']}/{topic}"
                if label == "empty" and field == "topic_full_name":
                    value = ""
                # json.dumps escapes the lone surrogate; the server sees it after json.loads
                resp = requests.post(url, data=json.dumps({"message": "hi", field: value}), timeout=10,
                                     headers={"Content-Type": "application/json"})
                body = _iotda_error(resp, 400)
                assert field in body["error_msg"], (label, field, body)
        console = f"{base}/console/api/devices/{rec['device_id']}/messages"
        resp = requests.post(console, data=json.dumps({"payload": "hi", "topic": "user/a\x00b"}), timeout=10,
                             headers={"Content-Type": "application/json"})
        assert resp.status_code == 400 and "topic" in resp.text

        # the core itself refuses what its broker would refuse, before paho queues it
        for topic in ("a\x00b", "a/+/b", "a\uffff", ""):
            with pytest.raises(ValueError):
                emu.core.publish(topic, b"x")
        with pytest.raises(ValueError):
            emu.send_message(rec["device_id"], "x", topic=f"$oc/devices/{rec['device_id']}/user/\x00")

        # afterwards: reports still reach the platform and commands are still answered
        token = uuid.uuid4().hex
        device.publish(topics.properties_report(rec["device_id"]),
                       {"services": [{"service_id": "s", "properties": {"token": token}}]})
        emu.wait_for_trace(lambda e: e.direction == "up" and token.encode() in e.payload, timeout=10)
        resp = requests.post(f"{base}/v5/iot/p/devices/{rec['device_id']}/commands", timeout=15,
                             json={"service_id": "s", "command_name": "go", "paras": {"t": token}})
        assert resp.status_code == 200, resp.text
        assert resp.json()["response"]["paras"] == {"echo": {"t": token}}
        good = requests.post(url, json={"message": "fine", "topic": "ok"}, timeout=10)
        assert good.status_code == 201, good.text
        device.wait_message(lambda m: m.topic == topics.user_topic(rec["device_id"], "ok"), timeout=10)
    finally:
        device.close()


# ---- item 5: the body hash is the body's -----------------------------------------------------------

def _signed_headers(url_host: str, path: str, body: bytes) -> dict:
    """Headers the official SDK's signer produces for ``POST path`` with ``body`` (the captured request)."""
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.sdk_request import SdkRequest
    from huaweicloudsdkcore.signer.signer import Signer

    req = SdkRequest(method="POST", schema="http", host=url_host, resource_path=path, uri=path, query_params=[],
                     header_params={"Content-Type": "application/json;charset=UTF-8"}, body=body)
    Signer(BasicCredentials(AK, SK, "p")).sign(req)
    return dict(req.header_params)


def test_signed_body_cannot_be_swapped(keyed):
    host = f"{keyed.host}:{keyed.http_port}"
    path = "/v5/iot/p/devices"
    product = keyed.create_product("sec_" + uuid.uuid4().hex[:8])["product_id"]
    original = json.dumps({"node_id": "n_" + uuid.uuid4().hex[:8], "product_id": product}).encode()
    headers = _signed_headers(host, path, original)
    evil_id = "evil_" + uuid.uuid4().hex[:8]
    evil = json.dumps({"device_id": evil_id, "node_id": "evil", "product_id": product,
                       "auth_info": {"secret": "attacker_chosen_1"}}).encode()
    replay = dict(headers, **{"X-Sdk-Content-Sha256": hashlib.sha256(original).hexdigest()})
    resp = requests.post(f"http://{host}{path}", data=evil, headers=replay, timeout=10)
    _iotda_error(resp, 401)
    assert keyed.get_device(evil_id) is None
    # an UNSIGNED-PAYLOAD claim does not lift the body out of the signature either
    unsigned = dict(headers, **{"X-Sdk-Content-Sha256": "UNSIGNED-PAYLOAD"})
    _iotda_error(requests.post(f"http://{host}{path}", data=evil, headers=unsigned, timeout=10), 401)
    assert keyed.get_device(evil_id) is None
    # the captured request itself is fine
    resp = requests.post(f"http://{host}{path}", data=original, headers=headers, timeout=10)
    assert resp.status_code == 201, resp.text


# ---- item 6: requests a browser could forge ---------------------------------------------------------

def test_browser_forgeable_requests_are_refused(emulator, base_url, device_record):
    did = device_record["device_id"]
    node = "csrf_" + uuid.uuid4().hex[:8]
    body = json.dumps({"node_id": node, "product_id": "emu_product"})
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
        headers = {"Content-Type": ctype} if ctype else {}
        resp = requests.post(f"{base_url}/v5/iot/p/devices", data=body.encode(), headers=headers, timeout=10)
        _iotda_error(resp, 415)
        resp = requests.post(f"{base_url}/v5/iot/p/devices/{did}/action?action_id=resetSecret",
                             data=b'{"secret": "Attacker_1234"}', headers=headers, timeout=10)
        _iotda_error(resp, 415)
        resp = requests.post(f"{base_url}/console/api/devices/{did}/messages", data=b'{"payload": "x"}',
                             headers=headers, timeout=10)
        _iotda_error(resp, 415)
    assert emulator.get_device(f"emu_product_{node}") is None
    assert emulator.get_device(did)["secret"] == device_record["secret"]

    # DNS rebinding: a foreign Host name; a foreign Origin
    for path in (f"/v5/iot/p/devices/{did}", "/console/api/devices", "/console", "/no/such/route"):
        _iotda_error(requests.get(base_url + path, headers={"Host": "evil.example:80"}, timeout=10), 403)
    foreign = {"Host": "evil.example", "Origin": "http://evil.example"}
    _iotda_error(requests.post(f"{base_url}/v5/iot/p/devices", json={"node_id": node, "product_id": "emu_product"},
                               headers=foreign, timeout=10), 403)
    _iotda_error(requests.post(f"{base_url}/v5/iot/p/devices", json={"node_id": node, "product_id": "emu_product"},
                               headers={"Origin": "http://evil.example"}, timeout=10), 403)
    _iotda_error(requests.post(f"{base_url}/console/api/devices/{did}/messages", json={"payload": "x"},
                               headers={"Origin": "http://evil.example"}, timeout=10), 403)
    assert emulator.get_device(f"emu_product_{node}") is None

    # what a well-behaved client sends still works: loopback names, same origin, JSON
    port = emulator.http_port
    for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
        resp = requests.get(f"{base_url}/v5/iot/p/devices/{did}", headers={"Host": host}, timeout=10)
        assert resp.status_code == 200, resp.text
    resp = requests.post(f"{base_url}/v5/iot/p/devices", json={"node_id": node, "product_id": "emu_product"},
                         headers={"Origin": base_url}, timeout=10)
    assert resp.status_code == 201, resp.text
    emulator.delete_device(f"emu_product_{node}")


def test_console_requires_login_when_app_keys_are_set(keyed):
    base = f"http://{keyed.host}:{keyed.http_port}"
    rec = keyed.create_device()
    try:
        _iotda_error(requests.get(f"{base}/console/api/devices", timeout=10), 401)
        _iotda_error(requests.post(f"{base}/console/api/devices/{rec['device_id']}/messages", json={"payload": "x"},
                                   timeout=10), 401)
        _iotda_error(requests.get(f"{base}/console/api/trace", timeout=10), 401)
        page = requests.get(f"{base}/console", timeout=10, allow_redirects=False)
        assert page.status_code in (302, 303) and "/console/login" in page.headers["Location"]
        assert requests.get(f"{base}/console/login", timeout=10).status_code == 200

        session = requests.Session()
        _iotda_error(session.post(f"{base}/console/api/login", json={"access_key": AK, "secret_key": "wrong"},
                                  timeout=10), 401)
        _iotda_error(session.post(f"{base}/console/api/login", json={"access_key": "nobody", "secret_key": SK},
                                  timeout=10), 401)
        resp = session.post(f"{base}/console/api/login", json={"access_key": AK, "secret_key": SK}, timeout=10)
        assert resp.status_code == 200, resp.text
        cookie = resp.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and SK not in cookie
        listing = session.get(f"{base}/console/api/devices", timeout=10)
        assert listing.status_code == 200
        assert rec["device_id"] in [d["device_id"] for d in listing.json()["devices"]]
        assert session.get(f"{base}/console", timeout=10, allow_redirects=False).status_code == 200

        # a key removed at run time ends its sessions
        keyed.app_keys = {"other": "key"}
        try:
            _iotda_error(session.get(f"{base}/console/api/devices", timeout=10), 401)
        finally:
            keyed.app_keys = {AK: SK}
        assert session.post(f"{base}/console/api/logout", json={}, timeout=10).status_code == 200
        _iotda_error(session.get(f"{base}/console/api/devices", timeout=10), 401)
    finally:
        keyed.delete_device(rec["device_id"])


# ---- item 7: secrets in the served trace -----------------------------------------------------------

def test_served_trace_redacts_secrets_tokens_and_presigned_urls(emulator, base_url, tmp_path, device_record,
                                                               raw_device):
    from iot_device_sdk_python.bootstrap.bootstrap_client import bootstrap
    from tests.bootstrap.test_bootstrap import bs_info

    bs = emulator.service("$bootstrap")
    group = bs.add_registration_group("scope-" + uuid.uuid4().hex[:8])
    device_id = "grp_" + uuid.uuid4().hex[:10]
    info = bs_info(emulator, device_id, tmp_path, secret=group["secret"], bs_mode=2, scope_id=group["scope_id"])
    issued = bootstrap(info).secret
    # the raw trace (Python API) has it: so the served one had something to hide
    emulator.wait_for_trace(lambda e: e.device_id == device_id and issued.encode() in e.payload, timeout=10)

    # a presigned URL and a token in a downlink the platform sends (as OTA and file upload events do)
    rec = device_record
    raw_device(rec)
    presigned = f"{base_url}/objects/b/k?X-Expires=99&X-Signature=deadbeef{uuid.uuid4().hex}"
    token = "tok_" + uuid.uuid4().hex
    emulator.send_message(rec["device_id"], {"url": presigned, "access_token": token, "note": "keep me"})

    def served(dev: str) -> list:
        resp = requests.get(f"{base_url}/console/api/trace", params={"device_id": dev}, timeout=10)
        assert resp.status_code == 200, resp.text
        return resp.json()["entries"]

    entries = wait_until(lambda: served(device_id) or None, timeout=10, what="the bootstrap exchange served")
    text = json.dumps(entries)
    assert issued not in text and "deviceSecret" in text
    entries = wait_until(lambda: served(rec["device_id"]) or None, timeout=10, what="the message served")
    text = json.dumps(entries)
    assert token not in text and "X-Signature=deadbeef" not in text and "keep me" in text
    assert f"{base_url}/objects/b/k" in text


# ---- item 8: every bad request gets a JSON 4xx -----------------------------------------------------

def _raw_http(port: int, head: bytes, body: bytes = b"") -> bytes:
    """Send ``head`` (+ ``body``) on a fresh socket; the whole answer until the server closes or 5 s pass."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        sock.settimeout(5)
        out = b""
        try:
            while b"\r\n\r\n" not in out or len(out.split(b"\r\n\r\n", 1)[1]) < _length(out):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                out += chunk
        except socket.timeout:
            pass
        return out


def _length(answer: bytes) -> int:
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 1 << 30


def test_oversized_bodies_get_json_413(emulator, base_url):
    port = emulator.http_port
    # announced 50 MB: answered at once, without reading (or buffering) the body
    head = (f"POST /v5/iot/p/devices HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {50 * 1024 * 1024}\r\n\r\n").encode()
    answer = _raw_http(port, head, b"{" * 65536)
    status_line, rest = answer.split(b"\r\n", 1)
    assert b" 413 " in status_line, answer[:300]
    assert b"x-content-type-options: nosniff" in rest.lower()
    assert json.loads(rest.split(b"\r\n\r\n", 1)[1])["error_code"]
    # a client sending the whole 50 MB gets the answer too
    resp = requests.post(f"{base_url}/v5/iot/p/devices", data=b"x" * (50 * 1024 * 1024), timeout=60,
                         headers={"Content-Type": "application/json"})
    _iotda_error(resp, 413)
    # chunked, no length announced
    resp = requests.post(f"{base_url}/console/api/devices/x/messages", timeout=60,
                         data=(b"x" * 65536 for _ in range(40)), headers={"Content-Type": "application/json"})
    _iotda_error(resp, 413)
    # the server is still fine
    assert requests.get(f"{base_url}/console/api/devices", timeout=10).status_code == 200


def test_malformed_requests_get_json_4xx_with_nosniff(emulator, base_url, device_record):
    did = device_record["device_id"]
    deep = b"[" * 100000 + b"]" * 100000
    json_headers = {"Content-Type": "application/json"}
    _iotda_error(requests.post(f"{base_url}/v5/iot/p/devices", data=deep, headers=json_headers, timeout=10), 400)
    _iotda_error(requests.post(f"{base_url}/v5/iot/p/devices/{did}/messages", timeout=10, headers=json_headers,
                               data=b'{"message": ' + deep + b"}"), 400)
    _iotda_error(requests.post(f"{base_url}/console/api/devices/{did}/messages", data=deep, headers=json_headers,
                               timeout=10), 400)
    for after in ("1e309", "-1e309", "nan", "inf", "abc", "-5"):
        _iotda_error(requests.get(f"{base_url}/console/api/trace", params={"after": after}, timeout=10), 400)
    _iotda_error(requests.get(f"{base_url}/console/api/trace", params={"limit": "1e999"}, timeout=10), 400)
    _iotda_error(requests.post(f"{base_url}/v5/iot/p/devices", data=b"{not json", headers=json_headers,
                               timeout=10), 400)
    _iotda_error(requests.post(f"{base_url}/v5/iot/p/devices", data=b"\xff\xfe", headers=json_headers,
                               timeout=10), 400)
    body = _iotda_error(requests.get(f"{base_url}/no/such/route", timeout=10), 404)
    assert body["error_code"] == "APIGW.0101"
    _iotda_error(requests.patch(f"{base_url}/v5/iot/p/devices/{did}", json={}, timeout=10), 404)
    _iotda_error(requests.get(f"{base_url}/console/static/no-such-file.js", timeout=10), 404)
    _iotda_error(requests.delete(f"{base_url}/console/api/devices", timeout=10), 405)
    # successful answers carry nosniff too
    for path in ("/console", "/console/static/console.js", "/console/api/devices", f"/v5/iot/p/devices/{did}"):
        resp = requests.get(base_url + path, timeout=10)
        assert resp.status_code == 200 and resp.headers.get(NOSNIFF) == "nosniff", path
    # and the server is still fine
    assert requests.get(f"{base_url}/v5/iot/p/devices/{did}", timeout=10).json()["device_id"] == did
