"""Shared pieces of the benchmark: SDK device and raw paho client builders, process figures."""
from __future__ import annotations

import json
import os
import resource
import socket
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from iot_device_sdk_python.client.client_conf import ClientConf
from iot_device_sdk_python.client.connect_auth_info import ConnectAuthInfo
from iot_device_sdk_python.client.mqtt_connect_conf import MqttConnectConf
from iot_device_sdk_python.iot_device import IotDevice
from iot_device_sdk_python.protocol import codec, topics
from iot_device_sdk_python.utils import iot_util


def raise_nofile(want: int = 65536) -> int:
    """Raise the RLIMIT_NOFILE soft limit towards ``want`` (bounded by the hard limit); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_mb() -> float:
    """Resident set size of this process in MB (Linux /proc; ru_maxrss elsewhere)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def os_threads() -> int:
    """OS threads of this process (includes threads not created by ``threading``)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def client_conf(host: str, port: int, record: dict, qos: int = 1, network_loop: Any = None) -> ClientConf:
    info = ConnectAuthInfo()
    info.id = record["device_id"]
    info.secret = record["secret"]
    info.server_uri = host
    info.port = port
    info.tls = False
    conf = MqttConnectConf()
    conf.qos = qos
    conf.timeout = 30.0
    if network_loop is not None:
        conf.network_loop = network_loop
    return ClientConf(info, conf)


def sdk_device(host: str, port: int, record: dict, qos: int = 1, network_loop: Any = None) -> IotDevice:
    device = IotDevice(client_conf(host, port, record, qos, network_loop))
    rc = device.connect()
    if rc != 0:
        raise RuntimeError(f"SDK device {record['device_id']} failed to connect: {rc}")
    return device


class RawDevice:
    """A raw paho 2.x client doing what a hand-written device would: IoTDA credentials, the same
    downlink subscriptions as the SDK, ``loop_start()``.

    ``tcp_nodelay`` (default True) switches Nagle off on its socket as the SDK does on its own: with
    Nagle on, the raw client's small writes were coalesced into fewer TCP segments (less kernel work on
    both ends) while the SDK's were not, so the two did not do the same work on the wire.
    """

    def __init__(self, host: str, port: int, record: dict, echo_commands: bool = False, tcp_nodelay: bool = True):
        self._tcp_nodelay = tcp_nodelay
        self.device_id = record["device_id"]
        stamp = codec.utc_hour_stamp()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{self.device_id}_0_1_{stamp}",
                                  clean_session=True, protocol=mqtt.MQTTv311, reconnect_on_failure=False)
        self.client.username_pw_set(self.device_id, iot_util.sha256_mac(record["secret"], stamp))
        self._connected = threading.Event()
        self._subs = set()
        self._subs_cond = threading.Condition()
        self.published = 0
        self.want = 0
        self.done = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: self._connected.set()
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish
        if echo_commands:
            self.client.on_message = self._echo
        self._host, self._port = host, port

    def connect(self, timeout: float = 30.0) -> None:
        self.client.connect(self._host, self._port, 120)
        if self._tcp_nodelay:
            sock = self.client.socket()
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client.loop_start()
        if not self._connected.wait(timeout):
            raise RuntimeError("raw paho: no CONNACK")
        with self._subs_cond:
            for t in topics.device_downlink_subscriptions(self.device_id):
                rc, mid = self.client.subscribe(t, 1)
                self._subs.add(mid)
            deadline = time.monotonic() + timeout
            while self._subs and time.monotonic() < deadline:
                self._subs_cond.wait(deadline - time.monotonic())

    def _on_subscribe(self, c, u, mid, codes, props) -> None:
        with self._subs_cond:
            self._subs.discard(mid)
            self._subs_cond.notify_all()

    def _on_publish(self, c, u, mid, rc, props) -> None:
        self.published += 1  # paho calls this from its one network thread
        if self.published >= self.want > 0:
            self.done.set()

    def expect(self, n: int) -> None:
        self.published, self.want = 0, n
        self.done.clear()

    def _echo(self, c, u, msg) -> None:
        rid = topics.request_id_of(msg.topic)
        cmd = json.loads(msg.payload)
        rsp = {"result_code": 0, "response_name": cmd.get("command_name", ""), "paras": cmd.get("paras")}
        c.publish(topics.command_response(self.device_id, rid), json.dumps(rsp, separators=(",", ":")), 1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
