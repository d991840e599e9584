"""Every ```python block of README.md and README_CN.md runs against a real emulator, as written.

How a README reads and how it runs here:

* **One session per README.** The python blocks run in order in one namespace, as a reader who pastes them
  into one interpreter would: ``device`` from "Device initialization" is the device the later sections use.
  Markers (HTML comments before a block, invisible on GitHub; defined in ``readme_blocks.py``):
  ``<!-- example: NAME -->`` names the block for its check; ``... isolated`` runs it in a copy of the namespace
  (an alternative set-up: X.509, bootstrap); ``... new-device`` gives it a fresh unconnected ``device``/``auth``
  (profile-oriented programming, which must not share a device with the listeners of earlier sections);
  ``<!-- fragment -->`` blocks are only compiled. Every other python block runs.
* **Placeholders.** The README is written for the cloud, with the placeholders a reader replaces. Before a
  block runs, the test replaces exactly these literals (``ReadmeSession.prepare`` holds the table):

  ==========================================  ======================================================
  ``"iot-mqtts.cn-north-4.myhuaweicloud.com"``  the emulator's host (``"your access address"`` too)
  ``"iot-bs.cn-north-4.myhuaweicloud.com"``     the emulator's bootstrap host
  ``8883`` (the number)                         the emulator's MQTTS port (bootstrap block: its port)
  ``"your device id"``/``"your device secret"`` a registered device (X.509/bootstrap blocks: theirs)
  ``"your gateway id"``/``"... secret"``        a registered gateway; ``"child_device_id"``: its child
  ``your keyword`` (in the bootstrap JSON)      a bootstrap policy keyword registered on the emulator
  ``"./resources/root.pem"``, ``bsroot.pem``,   the emulator's CA file
  ``obs_ca.pem``
  ``"device.crt"``/``"device.key"``             a client certificate issued by the emulator's device CA
  ==========================================  ======================================================

  No other text of a block is changed; a ``"your ..."`` literal left after the substitution fails the test.
* **Platform side.** What the README says is configured on the platform (a topic policy, an OTA package and
  task, a bootstrap policy, the gateway's child device) is done here through the emulator's Python API, in
  ``ReadmeSession.prepare`` and in the checks.
* **Effects.** A block marked ``<!-- example: NAME -->`` is followed by ``CHECKS[NAME]``, which asserts what
  the README says the block does (through the emulator's trace, shadow and service records, and the
  block's printed output). Relative paths in blocks are relative to a temporary working directory.
"""
from __future__ import annotations

import contextlib
import io
import re
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List

import pytest

from iotda_emulator import Emulator
from tests.docs.readme_blocks import REPO, Block, python_blocks

READMES = ["README.md", "README_CN.md"]


class _Output(io.TextIOBase):
    """A thread-safe stdout stand-in: listeners print on the SDK's dispatcher threads."""

    def __init__(self) -> None:
        self._buf: List[str] = []
        self._cond = threading.Condition()

    def write(self, s: str) -> int:
        with self._cond:
            self._buf.append(s)
            self._cond.notify_all()
        return len(s)

    def text(self) -> str:
        with self._cond:
            return "".join(self._buf)

    def wait_for(self, needle: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        with self._cond:
            while needle not in "".join(self._buf):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{needle!r} never printed; output so far:\n{''.join(self._buf)[-2000:]}")
                self._cond.wait(left)
            return "".join(self._buf)


class ReadmeSession:
    """The emulator-side set-up for one README run, the placeholder values and the per-example checks."""

    def __init__(self, emu: Emulator, workdir: Path) -> None:
        self.emu = emu
        self.workdir = workdir
        self.out = _Output()
        self.ns: Dict[str, object] = {"__name__": "__readme__"}
        self.devices: List[object] = []   # every IotDevice a block made, destroyed at the end

    def prepare(self) -> None:
        emu = self.emu
        self.dev = emu.create_device()
        self.dev2 = emu.create_device()
        self.gw = emu.create_device()
        self.child = emu.create_device(gateway_id=self.gw["device_id"])
        x509_id = f"readme_x509_{time.time_ns()}"
        cert, key, fingerprint = emu.issue_device_cert(x509_id)
        self.x509 = emu.create_device(x509_id, fingerprint=fingerprint)
        bs = emu.service("$bootstrap")
        self.bs_keyword = "readme"
        bs.add_policy(self.bs_keyword)
        self.bs_device = bs.add_bootstrap_device(emu.create_device()["device_id"])
        # Messages: the README's policy topic is allowed by a topic policy configured on the platform
        emu.add_topic_policy("/policy/topic/#")
        host = "127.0.0.1"
        # on its own host the endpoint keeps IoTDA's port, as on the cloud; where 127.0.0.2 cannot be bound
        # (stock macOS) it falls back to another port, which the bootstrap block then gets for 8883
        self.bs_port = bs.port
        self.placeholders = {
            '"iot-mqtts.cn-north-4.myhuaweicloud.com"': repr(host),
            '"iot-bs.cn-north-4.myhuaweicloud.com"': repr(bs.host),
            '"your access address"': repr(host),
            "8883": str(emu.mqtts_port),
            '"your device id"': None,       # per block: the main device, the X.509 or the bootstrap device
            '"your device secret"': None,
            '"your gateway id"': repr(self.gw["device_id"]),
            '"your gateway secret"': repr(self.gw["secret"]),
            '"child_device_id"': repr(self.child["device_id"]),
            '"your keyword"': self.bs_keyword,
            '"./resources/root.pem"': repr(emu.ca_file),
            '"./resources/bsroot.pem"': repr(emu.ca_file),
            '"./resources/obs_ca.pem"': repr(emu.ca_file),
            '"device.crt"': repr(cert),
            '"device.key"': repr(key),
        }

    # ---- running ------------------------------------------------------------------------------------
    def source(self, block: Block) -> str:
        """The block with the placeholders replaced, padded so tracebacks show the README's line numbers."""
        who = {"x509": self.x509, "bootstrap": self.bs_device}.get(block.name or "", self.dev)
        values = dict(self.placeholders)
        values['"your device id"'] = repr(who["device_id"])
        values['"your device secret"'] = repr(who.get("secret"))
        if block.name == "bootstrap":
            values["8883"] = str(self.bs_port)
        code = block.code
        for literal, value in values.items():
            if literal == "8883":
                code = re.sub(r"\b8883\b", value, code)
            elif literal == '"your keyword"':
                code = code.replace("your keyword", value)
            else:
                code = code.replace(literal, value)
        left = re.findall(r"[\"']your [^\"']*[\"']", code)
        assert not left, f"{block.where}: placeholder(s) the test does not know: {left}"
        return "\n" * (block.line - 1) + code

    def run(self, block: Block) -> None:
        ns = dict(self.ns) if block.isolated else self.ns
        code = compile(self.source(block), str(REPO / block.path), "exec")
        saved = {k: ns.get(k) for k in ("auth", "device")}
        if block.new_device:
            ns["auth"], ns["device"] = self._new_device()
        try:
            exec(code, ns)  # noqa: S102 - the README's own example code
        finally:
            self._collect(ns)
            if block.new_device:
                block_ns = dict(ns)   # the check sees the block's own device
                ns.update(saved)
                ns = block_ns
        check = CHECKS.get(block.name or "")
        if check is not None:
            check(self, ns)

    def _new_device(self):
        """``(auth, device)`` for a ``new-device`` block: as "Device initialization" builds them, unconnected."""
        from iot_device_sdk_python.client.client_conf import ClientConf
        from iot_device_sdk_python.client.connect_auth_info import ConnectAuthInfo
        from iot_device_sdk_python.iot_device import IotDevice

        auth = ConnectAuthInfo()
        auth.server_uri, auth.port = "127.0.0.1", self.emu.mqtts_port
        auth.id, auth.secret = self.dev2["device_id"], self.dev2["secret"]
        auth.iot_cert_path = self.emu.ca_file
        device = IotDevice(ClientConf(auth))
        self.devices.append(device)
        return auth, device

    def _collect(self, ns: Dict[str, object]) -> None:
        from iot_device_sdk_python.iot_device import IotDevice

        for v in list(ns.values()):
            if isinstance(v, IotDevice) and not any(v is d for d in self.devices):
                self.devices.append(v)

    def close(self) -> None:
        for d in self.devices:
            with contextlib.suppress(Exception):
                d.destroy()

    # ---- helpers for checks -------------------------------------------------------------------------
    def uplinks(self, device_id: str, topic_part: str) -> List[object]:
        return [e for e in self.emu.trace(device_id, direction="up") if topic_part in e.topic]


def _wait(pred: Callable[[], object], what: str, timeout: float = 10.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


# ---- what each example claims ---------------------------------------------------------------------------
def check_init(s: ReadmeSession, ns: dict) -> None:
    assert s.emu.wait_online(s.dev["device_id"], 5), "README device did not come online"


def check_x509(s: ReadmeSession, ns: dict) -> None:
    device = ns["device"]
    assert device.connect() == 0, "the X.509 device does not connect"
    assert s.emu.wait_online(s.x509["device_id"], 5), "the X.509 device is not online"
    device.destroy()


def check_commands(s: ReadmeSession, ns: dict) -> None:
    rsp = s.emu.send_command(s.dev["device_id"], "anyService", "anyCommand", {})
    assert rsp.get("result_code") == 0 and rsp.get("paras") == {"result": "done"}, rsp


def check_messages(s: ReadmeSession, ns: dict) -> None:
    dev = s.dev["device_id"]
    assert ns["handle"].done() and ns["handle"].exception() is None
    _wait(lambda: [e for e in s.uplinks(dev, "/sys/messages/up") if e.json() == {"content": "Hello Huawei"}],
          "the system-format message")
    _wait(lambda: [e for e in s.uplinks(dev, f"{dev}/user/wpy") if e.payload == b"hello raw message"],
          "the custom-topic message")
    # a policy pattern without %u names no device, so the emulator traces it without one (see the report)
    _wait(lambda: [e for e in s.emu.trace(direction="up") if e.topic == "/policy/topic/a"
                   and e.payload == b"\x01\x02\x03"], "the binary message on the policy topic")


def check_action_listener(s: ReadmeSession, ns: dict) -> None:
    s.out.wait_for("sent ")


def check_custom_topic(s: ReadmeSession, ns: dict) -> None:
    dev = s.dev["device_id"]
    # subscribe_topic() does not wait for the SUBACK: send until the subscription is in place (a few tries)
    for attempt in range(20):
        s.emu.send_message(dev, b"down on a custom topic", topic="readme")   # -> $oc/devices/{id}/user/readme
        try:
            s.out.wait_for(f"$oc/devices/{dev}/user/readme b'down on a custom topic'", timeout=0.5)
            return
        except AssertionError:
            if attempt == 19:
                raise


def check_properties(s: ReadmeSession, ns: dict) -> None:
    dev = s.dev["device_id"]

    def reported():
        for svc in s.emu.shadow(dev):
            if svc["service_id"] == "smokeDetector":
                return svc.get("reported", {}).get("properties") == {"alarm": 1, "temperature": 23.5}
        return False

    _wait(reported, "the reported properties in the shadow")
    answer = s.emu.set_properties(dev, [{"service_id": "smokeDetector", "properties": {"alarm": 0}}])
    assert answer.get("result_code") == 0, answer
    s.out.wait_for("set smokeDetector {'alarm': 0}")
    got = s.emu.get_properties(dev, "smokeDetector")
    assert got["services"][0]["properties"] == {"alarm": 1, "temperature": 23.5}, got


def check_shadow(s: ReadmeSession, ns: dict) -> None:
    s.out.wait_for("smokeDetector {} {'alarm': 1, 'temperature': 23.5}")


def check_profile(s: ReadmeSession, ns: dict) -> None:
    dev = s.dev2["device_id"]
    rsp = s.emu.send_command(dev, "smokeDetector", "ringAlarm", {"duration": 3})
    assert rsp.get("result_code") == 0, rsp
    s.out.wait_for("ring the alarm for 3 s")
    ok = s.emu.set_properties(dev, [{"service_id": "smokeDetector", "properties": {"alarm": 50}}])
    assert ok.get("result_code") == 0 and ns["service"].smoke_alarm == 50, ok
    bad = s.emu.set_properties(dev, [{"service_id": "smokeDetector", "properties": {"alarm": 500}}])
    assert bad.get("result_code") != 0 and ns["service"].smoke_alarm == 50, bad
    ro = s.emu.set_properties(dev, [{"service_id": "smokeDetector", "properties": {"smokeConcentration": 1.0}}])
    assert ro.get("result_code") != 0, ro
    got = s.emu.get_properties(dev, "smokeDetector")
    assert got["services"][0]["properties"] == {"alarm": 50, "smokeConcentration": 0.0}, got


def check_ota(s: ReadmeSession, ns: dict) -> None:
    ota = s.emu.service("$ota")
    package = ota.upload_package(b"new firmware image", "v2.0", file_name="fw-v2.bin")
    task = ota.wait_task(ota.start_task(s.dev["device_id"], package), timeout=20)
    assert task["status"] == "success", task
    assert task["versions"] and task["versions"][0].get("fw_version") == "v1.0", task
    s.out.wait_for("installing ")
    assert (s.workdir / "download" / "fw-v2.bin").read_bytes() == b"new firmware image"


def check_file_transfer(s: ReadmeSession, ns: dict) -> None:
    files = s.emu.service("$file_manager")
    assert files.get_file(s.dev["device_id"], "upload_test.txt") == b"hello file manager"
    assert (s.workdir / "download" / "download.txt").read_bytes() == b"hello file manager"
    for kind in ("upload", "download"):   # the SDK reported both results to the platform
        assert files.wait_result(s.dev["device_id"], kind, "upload_test.txt")["result_code"] == 0


def check_time_sync(s: ReadmeSession, ns: dict) -> None:
    text = s.out.wait_for("platform time:")
    synced = [float(x) for x in re.findall(r"^(\d{12,}(?:\.\d+)?)$", text, re.M)]
    assert synced and abs(synced[-1] - time.time() * 1000) < 60_000, text[-500:]


def check_gateway(s: ReadmeSession, ns: dict) -> None:
    gw, child = s.gw["device_id"], s.child["device_id"]
    assert s.emu.wait_online(gw, 5), "the gateway is not online with its own credentials"
    _wait(lambda: (s.emu.get_device(child) or {}).get("online"), "the child device ONLINE")

    def child_alarm():
        return any(svc["service_id"] == "smokeDetector" and svc["reported"]["properties"] == {"alarm": 1}
                   for svc in s.emu.shadow(child))

    _wait(child_alarm, "the child's batch-reported property in its shadow")
    rsp = s.emu.send_command(child, "smokeDetector", "ringAlarm", {})
    assert rsp.get("result_code") == 0, rsp
    s.out.wait_for(f"command for {child} ringAlarm")


def check_device_info(s: ReadmeSession, ns: dict) -> None:
    def reported():
        info = s.emu.service("$sdk_info").info(s.dev["device_id"]) or {}
        return info.get("fw_version") == "v1.0" and info.get("sw_version") == "v1.0"

    _wait(reported, "the device info report")


def check_device_log(s: ReadmeSession, ns: dict) -> None:
    logs = s.emu.service("$log")
    _wait(lambda: [e for e in logs.logs(s.dev["device_id"], "DEVICE_STATUS") if e["content"] == "booted"],
          "the 'booted' log entry")
    # the connection events the README mentions, reported by the SDK itself
    assert any(e["content"].startswith("connect complete") for e in logs.logs(s.dev["device_id"]))


def check_bootstrap(s: ReadmeSession, ns: dict) -> None:
    assert ns["device"].get_client() is not None
    assert s.emu.wait_online(s.bs_device["device_id"], 10), "the provisioned device is not online on IoTDA"
    ns["device"].destroy()


def check_offline_queue(s: ReadmeSession, ns: dict) -> None:
    text = s.out.text()
    assert "queued" in text and "dropped" in text, text[-500:]


def check_emulator(s: ReadmeSession, ns: dict) -> None:
    s.out.wait_for("result_code")
    last = [ln for ln in s.out.text().splitlines() if "result_code" in ln][-1]
    assert "'result_code': 0" in last, last


def check_transfer_progress(s: ReadmeSession, ns: dict) -> None:
    text = s.out.wait_for("True False")       # cancelled, partial file removed
    size = 8 * 1024 * 1024
    assert f"{size} of {size} bytes" in text, text[-800:]
    assert s.emu.service("$file_manager").get_file(s.dev["device_id"], "big.bin") == \
        (s.workdir / "big.bin").read_bytes()
    assert not (s.workdir / "download" / "big.bin").exists()


def check_context_manager(s: ReadmeSession, ns: dict) -> None:
    lines = s.out.text().splitlines()
    assert "False" in lines and "refused, CONNACK 4" in lines, lines[-5:]


def check_errors(s: ReadmeSession, ns: dict) -> None:
    lines = s.out.text().splitlines()
    assert "refused, CONNACK 5" in lines and "True True" in lines, lines[-5:]


def check_asyncio(s: ReadmeSession, ns: dict) -> None:
    text = s.out.text()
    assert "[{'rang': 3}, {'rang': 3}, {'rang': 3}]" in text and "write {'alarm': 0}" in text, text[-800:]
    assert re.search(r"'result_code': 0", text.splitlines()[-1]), text[-300:]


def check_device_config(s: ReadmeSession, ns: dict) -> None:
    configs = s.emu.service("$device_config")
    task = configs.create_task({"sample_rate": 10}, [s.dev["device_id"]])
    assert configs.wait_task(task["task_id"])["status"] == "Success"
    s.out.wait_for("new configuration:")


def check_compressed_report(s: ReadmeSession, ns: dict) -> None:
    dev = s.dev["device_id"]
    _wait(lambda: [e for e in s.uplinks(dev, "/sys/properties/report") if "encoding=gzip" in e.topic],
          "a gzip property report")

    def inflated():
        return any(svc["service_id"] == "smokeDetector" and svc["reported"]["properties"].get("alarm") == 0
                   for svc in s.emu.shadow(dev))

    _wait(inflated, "the compressed report in the shadow")


def check_broadcast(s: ReadmeSession, ns: dict) -> None:
    # subscribe_broadcast() does not wait for the SUBACK: broadcast until the subscription is in place
    broadcasts = s.emu.service("$broadcast")
    for attempt in range(20):
        broadcasts.broadcast("$oc/broadcast/test", b"hello all")
        try:
            s.out.wait_for("broadcast on $oc/broadcast/test b'hello all'", timeout=0.5)
            return
        except AssertionError:
            if attempt == 19:
                raise


def check_tunnel(s: ReadmeSession, ns: dict) -> None:
    tunnels = s.emu.service("$tunnel_manager")
    tunnel = tunnels.create_tunnel(s.dev["device_id"])      # AddTunnel
    try:
        s.out.wait_for(f"remote login requested: {tunnel['tunnel_id']}")
        tunnels.wait_state(tunnel["tunnel_id"], "device", "CONNECTED")   # the device side joined the relay
    finally:
        tunnels.delete_tunnel(tunnel["tunnel_id"])


CHECKS: Dict[str, Callable[[ReadmeSession, dict], None]] = {
    "tunnel": check_tunnel,
    "device-config": check_device_config,
    "compressed-report": check_compressed_report,
    "broadcast": check_broadcast,
    "transfer-progress": check_transfer_progress,
    "context-manager": check_context_manager,
    "errors": check_errors,
    "asyncio": check_asyncio,
    "init": check_init,
    "x509": check_x509,
    "commands": check_commands,
    "messages": check_messages,
    "action-listener": check_action_listener,
    "custom-topic": check_custom_topic,
    "properties": check_properties,
    "shadow": check_shadow,
    "profile": check_profile,
    "ota": check_ota,
    "file-transfer": check_file_transfer,
    "time-sync": check_time_sync,
    "gateway": check_gateway,
    "device-info": check_device_info,
    "device-log": check_device_log,
    "bootstrap": check_bootstrap,
    "offline-queue": check_offline_queue,
    "emulator": check_emulator,
}


@pytest.fixture(scope="module")
def readme_emulator():
    """One emulator for the README runs; bootstrap on its own host with IoTDA's port, as on the cloud."""
    emu = Emulator(command_timeout=5.0, bootstrap_host="127.0.0.2").start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.mark.parametrize("readme", READMES)
def test_every_python_block_compiles(readme):
    """Fragments included: a README block with a syntax error fails here, with its line."""
    blocks = python_blocks(REPO / readme)
    assert blocks, f"{readme} has no python block"
    for b in blocks:
        compile("\n" * (b.line - 1) + b.code, str(REPO / readme), "exec")


@pytest.mark.parametrize("readme", READMES)
def test_readme_examples_run(readme, readme_emulator, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    session = ReadmeSession(readme_emulator, tmp_path)
    session.prepare()
    ran = 0
    # for the whole run: listeners print later, on the SDK's threads
    with contextlib.redirect_stdout(session.out):
        ran = _run_all(session, readme)
    assert ran >= 10, f"only {ran} blocks ran"


def _run_all(session: ReadmeSession, readme: str) -> int:
    ran = 0
    try:
        for block in python_blocks(REPO / readme):
            if block.fragment:
                continue
            try:
                session.run(block)
            except BaseException as exc:
                out = session.out.text()[-1500:]
                raise AssertionError(f"{block.where} ({block.name or 'unnamed'}) failed: {exc!r}\n"
                                     f"output:\n{out}") from exc
            ran += 1
    finally:
        session.close()
    return ran
