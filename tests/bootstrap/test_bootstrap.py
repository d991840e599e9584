"""Device provisioning against the emulator's bootstrap endpoint (real TLS, real Mosquitto).

Every mode provisions and then connects to the emulator's IoTDA MQTTS port; tampered or failed answers
are refused; the cache lives where configured, is 0600, is re-used, and can be bypassed.
"""
from __future__ import annotations

import json
import os
import stat
import uuid

import pytest

from iot_device_sdk_python.bootstrap import bootstrap_client
from iot_device_sdk_python.bootstrap.bootstrap_client import BootstrapError, bootstrap, clear_bootstrap_cache
from iot_device_sdk_python.client.connect_auth_info import ConnectAuthInfo


def new_id(prefix="bs") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def bs(emulator):
    return emulator.service("$bootstrap")


def bs_info(emulator, device_id, tmp_path, *, secret=None, cert=None, key=None, bs_mode=1, scope_id=None,
            message=None) -> ConnectAuthInfo:
    info = ConnectAuthInfo()
    info.id = device_id
    if cert:
        info.auth_type = ConnectAuthInfo.X509_AUTH
        info.cert_path, info.key_path = cert, key
    else:
        info.secret = secret
    info.server_uri = emulator.service("$bootstrap").host
    info.port = emulator.service("$bootstrap").port
    info.bs_mode = bs_mode
    info.scope_id = scope_id
    info.bs_cert_path = emulator.ca_file
    info.iot_cert_path = emulator.ca_file
    info.bs_message = message
    info.bs_cache_path = str(tmp_path / f"{device_id}.json")
    info.reconnect_on_failure = False
    return info


def connect_device(info):
    """Build a real IotDevice from ``info`` and connect it (bootstrap runs inside connect())."""
    from iot_device_sdk_python.client.client_conf import ClientConf
    from iot_device_sdk_python.iot_device import IotDevice
    device = IotDevice(ClientConf(info))
    rc = device.connect()
    return device, rc


def assert_connects_to_iotda(emulator, info, device_id):
    device, rc = connect_device(info)
    try:
        assert rc == 0
        assert emulator.wait_online(device_id, timeout=10)
        # the caller's object is left as it was: still a bootstrap configuration
        assert info.bs_mode in (1, 2) and info.port == emulator.service("$bootstrap").port
    finally:
        device.destroy()


def _provisioned(bs, device_id):
    return sum(1 for r in bs.requests if r["device_id"] == device_id)


def _read_cache(info):
    with open(info.bs_cache_path) as fh:
        return json.load(fh)


def test_standard_secret_with_policy_keyword(emulator, bs, tmp_path):
    device_id = new_id()
    kw = new_id("kw")
    bs.add_policy(kw, init_config={"interval": 5})
    dev = bs.add_bootstrap_device(device_id)
    info = bs_info(emulator, device_id, tmp_path, secret=dev["secret"], message=json.dumps({"baseStrategyKeyword": kw}))
    result = bootstrap_client.bootstrap_with_result(info)
    new = result.connect_auth_info
    assert (new.server_uri, new.port, new.bs_mode) == (emulator.advertise_host, emulator.mqtts_port, 0)
    assert new.secret == dev["secret"] and new.iot_cert_path == emulator.ca_file
    assert json.loads(result.init_config) == {"interval": 5}
    assert emulator.get_device(device_id)["secret"] == dev["secret"]
    assert_connects_to_iotda(emulator, info, device_id)


def test_standard_x509(emulator, bs, tmp_path):
    device_id = new_id()
    cert, key, fp = emulator.issue_device_cert(device_id)
    bs.add_bootstrap_device(device_id, fingerprint=fp, require_policy=False)
    info = bs_info(emulator, device_id, tmp_path, cert=cert, key=key)
    assert_connects_to_iotda(emulator, info, device_id)
    rec = emulator.get_device(device_id)
    assert rec["fingerprint"] == fp and rec["auth_type"] == "CERTIFICATES"


def test_group_secret_gets_generated_device_secret(emulator, bs, tmp_path):
    group = bs.add_registration_group(new_id("scope").replace("_", "-"))
    device_id = new_id("grp")
    info = bs_info(emulator, device_id, tmp_path, secret=group["secret"], bs_mode=2, scope_id=group["scope_id"])
    new = bootstrap(info)
    issued = bs.answers[-1]["answer"]["deviceSecret"]
    assert new.secret == issued == emulator.get_device(device_id)["secret"]
    assert new.secret != group["secret"]
    assert_connects_to_iotda(emulator, info, device_id)  # from the cache, with the issued secret


def test_group_x509(emulator, bs, tmp_path):
    group = bs.add_registration_group(new_id("scope").replace("_", "-"), certificate=True)
    device_id = new_id("grpc")
    cert, key, fp = bs.issue_group_device_cert(device_id)
    info = bs_info(emulator, device_id, tmp_path, cert=cert, key=key, bs_mode=2, scope_id=group["scope_id"])
    assert_connects_to_iotda(emulator, info, device_id)
    assert emulator.get_device(device_id)["fingerprint"] == fp


def test_group_secret_wrong_secret_refused(emulator, bs, tmp_path):
    group = bs.add_registration_group(new_id("scope").replace("_", "-"))
    info = bs_info(emulator, new_id(), tmp_path, secret="d3Jvbmcgc2VjcmV0", bs_mode=2, scope_id=group["scope_id"])
    with pytest.raises(BootstrapError) as err:
        bootstrap(info, timeout=5)
    assert err.value.code == bootstrap_client.ERR_REFUSED


@pytest.mark.parametrize("answer", [
    {"address": "evil.example.com:8883/steal"},
    {"address": "ssl://evil.example.com:8883"},
    {"address": "user:pw@evil.example.com:8883"},
    {"address": "evil.example.com:0"},
    {"address": "evil.example.com:99999"},
    {"address": "evil.example.com"},
    {"address": "evil .example.com:8883"},
    {"address": 8883},
    {"deviceSecret": 12345},
    {"deviceSecret": "has space"},
])
def test_tampered_answer_is_refused_and_not_cached(emulator, bs, tmp_path, answer):
    device_id = new_id()
    dev = bs.add_bootstrap_device(device_id, require_policy=False)
    info = bs_info(emulator, device_id, tmp_path, secret=dev["secret"])
    bs.tamper_next_answer(answer)
    with pytest.raises(BootstrapError) as err:
        bootstrap(info, timeout=5)
    assert err.value.code == bootstrap_client.ERR_ANSWER
    assert not os.path.exists(info.bs_cache_path)
    bs.tamper_next_answer(answer)
    device, rc = connect_device(info)  # through DeviceClient.connect(): a failure code, no connection
    try:
        assert rc == -1
        assert device.get_client().last_bootstrap_error.code == bootstrap_client.ERR_ANSWER
        assert not emulator.is_online(device_id)
    finally:
        device.destroy()


def test_local_configuration_error_is_reported_as_such(emulator, bs, tmp_path):
    """A group secret that is not base64 is the device's own mistake: connect() says -2 (not worth retrying)."""
    device_id = new_id()
    info = bs_info(emulator, device_id, tmp_path, secret="not base64 !!", bs_mode=2, scope_id="scope1")
    device, rc = connect_device(info)
    try:
        assert rc == -2
        assert device.get_client().last_bootstrap_error.code == bootstrap_client.ERR_CONFIG
    finally:
        device.destroy()


def test_platform_error_answer(emulator, bs, tmp_path):
    device_id = new_id()
    dev = bs.add_bootstrap_device(device_id, require_policy=True)
    info = bs_info(emulator, device_id, tmp_path, secret=dev["secret"],
                   message=json.dumps({"baseStrategyKeyword": new_id("nomatch")}))
    with pytest.raises(BootstrapError) as err:
        bootstrap(info, timeout=5)
    assert err.value.code == "100414"


def test_server_not_trusted_is_refused(emulator, bs, tmp_path):
    device_id = new_id()
    dev = bs.add_bootstrap_device(device_id, require_policy=False)
    info = bs_info(emulator, device_id, tmp_path, secret=dev["secret"])
    info.bs_cert_path = emulator.device_ca_file  # a CA that did not sign the server certificate
    with pytest.raises(BootstrapError) as err:
        bootstrap(info, timeout=5)
    assert err.value.code == bootstrap_client.ERR_CONNECT
    assert _provisioned(bs, device_id) == 0


def test_no_answer_times_out(emulator, bs, tmp_path):
    device_id = new_id()
    dev = bs.add_bootstrap_device(device_id, require_policy=False)
    info = bs_info(emulator, device_id, tmp_path, secret=dev["secret"])
    emulator.delay(device_id, 3.0)  # every packet of the link is held back longer than the wait
    try:
        with pytest.raises(BootstrapError) as err:
            bootstrap(info, timeout=0.5)
        assert err.value.code == bootstrap_client.ERR_TIMEOUT
    finally:
        emulator.delay(device_id, 0)


def test_cache_is_private_reused_and_can_be_forced(emulator, bs, tmp_path):
    device_id = new_id()
    dev = bs.add_bootstrap_device(device_id, require_policy=False)
    info = bs_info(emulator, device_id, tmp_path, secret=dev["secret"])
    info.bs_cache_path = str(tmp_path / "sub" / "server.json")

    first = bootstrap(info)
    assert _provisioned(bs, device_id) == 1
    st = os.stat(info.bs_cache_path)
    assert stat.S_IMODE(st.st_mode) == 0o600
    cached = _read_cache(info)
    assert cached["address"] == f"{emulator.advertise_host}:{emulator.mqtts_port}" and cached["device_id"] == device_id
    assert [p for p in os.listdir(tmp_path / "sub") if p.endswith(".tmp")] == []  # atomic write left nothing

    second = bootstrap_client.bootstrap_with_result(info)
    assert second.from_cache and _provisioned(bs, device_id) == 1
    assert (second.connect_auth_info.server_uri, second.connect_auth_info.port) == (first.server_uri, first.port)
    assert_connects_to_iotda(emulator, info, device_id)  # connect() used the cache as well
    assert _provisioned(bs, device_id) == 1

    info.bs_force = True
    bootstrap(info)
    assert _provisioned(bs, device_id) == 2
    info.bs_force = False
    assert clear_bootstrap_cache(info) and not os.path.exists(info.bs_cache_path)
    bootstrap(info)
    assert _provisioned(bs, device_id) == 3


def test_cache_of_another_server_is_ignored(emulator, bs, tmp_path):
    device_id = new_id()
    dev = bs.add_bootstrap_device(device_id, require_policy=False)
    info = bs_info(emulator, device_id, tmp_path, secret=dev["secret"])
    with open(info.bs_cache_path, "w") as fh:
        json.dump({"format": 1, "device_id": device_id, "bootstrap_server": "other:8883", "bs_mode": 1,
                   "scope_id": None, "address": "elsewhere:8883", "secret": None}, fh)
    new = bootstrap(info)
    assert new.port == emulator.mqtts_port


def test_default_cache_location_is_per_user(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    info = ConnectAuthInfo()
    info.id = "prod_node-1"
    path = bootstrap_client.cache_path(info)
    assert path == str(tmp_path / "xdg" / "iot_device_sdk_python" / "prod_node-1.json")


def test_address_validation_unit():
    ok = {"localhost:8883": ("localhost", 8883), "10.0.0.1:1": ("10.0.0.1", 1),
          "[::1]:65535": ("::1", 65535), "a-b.example.com:443": ("a-b.example.com", 443)}
    for text, expected in ok.items():
        assert bootstrap_client.parse_address(text) == expected
    for bad in ["", "host", "host:", ":8883", "host:+1", "host:08", "-host:1", "host-:1", "1.2.3.4.5:1",
                "300.1.1.1:1", "[zz]:1", "[::1]8883", "h_st:1", "host:1:2", "tcp://h:1", "h:1#x", "h:1?x", "h/1:1"]:
        with pytest.raises(ValueError):
            bootstrap_client.parse_address(bad)


def test_group_secret_derivation_matches_protocol():
    import base64
    import hashlib
    import hmac
    group_secret = base64.b64encode(b"group-key").decode()
    expected = hmac.new(b"dev_1", b"group-key", hashlib.sha256).hexdigest()
    assert bootstrap_client.derive_group_secret("dev_1", group_secret) == expected
    with pytest.raises(BootstrapError):
        bootstrap_client.derive_group_secret("dev_1", "not base64!!")


def test_device_name_policies_by_priority(emulator, bs, tmp_path):
    tag = uuid.uuid4().hex[:8]
    # IoTDP ranks static policies 0 (lowest) .. 4 (highest)
    bs.add_policy(f"floor{tag}", keyword_source="device_name", priority=1, init_config={"from": "low"})
    bs.add_policy(f"lamp{tag}", keyword_source="device_name", priority=3, init_config={"from": "high"})
    device_id = f"lamp{tag}_floor{tag}"
    dev = bs.add_bootstrap_device(device_id, require_policy=True)
    info = bs_info(emulator, device_id, tmp_path, secret=dev["secret"])
    result = bootstrap_client.bootstrap_with_result(info)
    assert json.loads(result.init_config) == {"from": "high"}


# ---- cached credentials refused by IoTDA: drop the cache and provision again, once --------------------

def _refused_cache_scenario(emulator, bs, tmp_path):
    """A group-secret device provisions (IoTDA secret issued by the platform, cached) and connects; then the
    platform re-issues that device's secret, so the cached one is refused (CONNACK 4). A new device object
    must connect anyway with exactly one more provisioning. Returns every secret the run handled."""
    group = bs.add_registration_group(new_id("scope").replace("_", "-"))
    device_id = new_id("reiss")
    info = bs_info(emulator, device_id, tmp_path, secret=group["secret"], bs_mode=2, scope_id=group["scope_id"])

    device, rc = connect_device(info)
    try:
        assert rc == 0 and emulator.wait_online(device_id, timeout=10)
    finally:
        device.destroy()
    assert emulator.wait_offline(device_id, timeout=10)
    first = _read_cache(info)["secret"]
    assert first and first == emulator.get_device(device_id)["secret"]
    assert _provisioned(bs, device_id) == 1

    reissued = uuid.uuid4().hex  # the platform resets the device secret: the cached one no longer works
    emulator.reset_device_secret(device_id, reissued)

    device, rc = connect_device(info)
    try:
        assert rc == 0
        assert emulator.wait_online(device_id, timeout=10)
        assert _provisioned(bs, device_id) == 2  # exactly one more provisioning request
        cached = _read_cache(info)
        second = bs.answers[-1]["answer"]["deviceSecret"]
        assert cached["secret"] == second == emulator.get_device(device_id)["secret"]
        assert second not in (first, reissued)
        assert cached["address"] == f"{emulator.advertise_host}:{emulator.mqtts_port}"
        assert device.get_client().last_bootstrap_error is None
        assert info.bs_mode == 2 and not info.bs_force  # the caller's object is left as it was
    finally:
        device.destroy()
    derived = bootstrap_client.derive_group_secret(device_id, group["secret"])
    return {group["secret"], derived, first, reissued, second}


def test_refused_cached_credentials_are_provisioned_again_once(emulator, bs, tmp_path, caplog):
    with caplog.at_level("WARNING", logger="iot_device_sdk_python"):
        _refused_cache_scenario(emulator, bs, tmp_path)
    warnings = [r for r in caplog.records if r.name.startswith("iot_device_sdk_python")
                and r.levelname == "WARNING" and "cached bootstrap credentials" in r.getMessage()]
    assert len(warnings) == 1


def test_reprovisioning_logs_no_secret_at_debug(emulator, bs, tmp_path, caplog):
    from iot_device_sdk_python.utils import iot_util
    with caplog.at_level("DEBUG"):
        found = _refused_cache_scenario(emulator, bs, tmp_path)
    stamp = iot_util.get_timestamp()
    found |= {iot_util.sha256_mac(s, stamp) for s in list(found)}  # the MQTT passwords of this hour too
    assert len(found) >= 8
    sdk = [r for r in caplog.records if not r.name.startswith("iotda_emulator")]
    assert any("cached bootstrap credentials" in r.getMessage() for r in sdk)  # the log really was captured
    leaks = [(r.name, r.getMessage()[:200]) for r in sdk for s in found
             if s in r.getMessage() or s in (r.exc_text or "")]
    assert leaks == []


@pytest.mark.parametrize("refusal", ["bad_secret", "frozen"])
def test_fresh_provisioning_refused_by_iotda_is_returned_without_retry(emulator, bs, tmp_path, refusal):
    device_id = new_id("fresh")
    dev = bs.add_bootstrap_device(device_id, require_policy=False)
    info = bs_info(emulator, device_id, tmp_path, secret=dev["secret"])
    if refusal == "bad_secret":
        bs.tamper_next_answer({"deviceSecret": "0" * 32})  # the answer names a secret IoTDA does not know
        expected = 4
    else:
        emulator.create_device(device_id, dev["secret"])
        emulator.freeze_device(device_id)
        expected = 5
    try:
        device, rc = connect_device(info)
        try:
            assert rc == expected
            assert _provisioned(bs, device_id) == 1  # no second provisioning, no loop
            assert not emulator.is_online(device_id)
        finally:
            device.destroy()
    finally:
        if refusal == "frozen":
            emulator.freeze_device(device_id, False)


def test_reprovisioned_credentials_refused_again_stop_after_one_round(emulator, bs, tmp_path):
    """Cached credentials refused, the fresh ones refused too: connect() returns the refusal after exactly one
    re-provisioning (and the next connect() does the same, never a storm)."""
    device_id = new_id("twice")
    dev = bs.add_bootstrap_device(device_id, require_policy=False)
    info = bs_info(emulator, device_id, tmp_path, secret=dev["secret"])
    bootstrap(info)  # cache written
    assert _provisioned(bs, device_id) == 1
    emulator.freeze_device(device_id)
    try:
        for round_ in (1, 2):
            device, rc = connect_device(info)
            try:
                assert rc == 5
                assert _provisioned(bs, device_id) == 1 + round_
            finally:
                device.destroy()
    finally:
        emulator.freeze_device(device_id, False)
