"""Soak test (``make soak`` = ``python -m tests.soak``; not part of ``make test``).

One device against a local emulator (real Mosquitto) for ``--minutes`` (default 30): QoS 1 property
reports at ``--rate`` per second, a platform command every second answered by the device, and the link
cut every ``--cut-every`` seconds. Samples threads, RSS and open file descriptors of the process every
``--sample-every`` seconds; fails (exit 1) when they grow past a warm-up baseline, or when a report is
lost (neither delivered nor reported failed). Prints one JSON document.

The emulator runs in the same process, so the samples include it (its trace lives in sqlite on disk).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import threading
import time

from iot_device_sdk_python.client.client_conf import ClientConf
from iot_device_sdk_python.client.connect_auth_info import ConnectAuthInfo
from iot_device_sdk_python.client.listener.command_listener import CommandListener
from iot_device_sdk_python.client.mqtt_connect_conf import MqttConnectConf
from iot_device_sdk_python.client.request.command_response import CommandRsp
from iot_device_sdk_python.client.request.service_property import ServiceProperty
from iot_device_sdk_python.iot_device import IotDevice
from iot_device_sdk_python.protocol import codec, topics
from iotda_emulator import Emulator


def _rss_kb() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class _Answer(CommandListener):
    def __init__(self, client):
        self.client = client
        self.count = 0

    def on_command(self, request_id, service_id, command_name, paras):
        self.count += 1
        self.client.respond_command(request_id, CommandRsp(0, "ok", {"echo": paras}))


def run(minutes: float, rate: float, cut_every: float, sample_every: float, quiet: bool = True) -> dict:
    logging.basicConfig(level=logging.ERROR if quiet else logging.INFO)
    duration = minutes * 60.0
    with Emulator(command_timeout=5.0, http=False) as emu:
        rec = emu.create_device()
        did = rec["device_id"]
        info = ConnectAuthInfo()
        info.id, info.secret, info.server_uri, info.port, info.tls = did, rec["secret"], emu.host, emu.mqtt_port, False
        info.max_buffer_message = 100000
        info.min_backoff, info.max_backoff = 200, 2000
        info.ack_timeout = 5
        device = IotDevice(ClientConf(info, MqttConnectConf()))
        client = device.get_client()
        answer = _Answer(client)
        client.set_command_listener(answer)
        if device.connect() != 0:
            raise SystemExit("soak: the device could not connect")
        stop = threading.Event()
        counts = {"sent": 0, "acked": 0, "failed": 0, "cuts": 0, "commands_ok": 0, "commands_failed": 0}
        lock = threading.Lock()

        def done(h):
            with lock:
                counts["acked" if h.succeeded() else "failed"] += 1

        def reporter():
            interval = 1.0 / rate
            nxt = time.monotonic()
            while not stop.is_set():
                seq = counts["sent"]
                client.report_properties([ServiceProperty("soak", {"seq": seq})]).add_done_callback(done)
                counts["sent"] += 1
                nxt += interval
                stop.wait(max(0.0, nxt - time.monotonic()))

        def commander():
            n = 0
            while not stop.wait(1.0):
                n += 1
                try:
                    rsp = emu.send_command(did, "soak", "ping", {"n": n}, timeout=5)
                    counts["commands_ok" if rsp.get("result_code") == 0 else "commands_failed"] += 1
                except Exception:  # noqa: BLE001 - offline during a cut, timeout: counted
                    counts["commands_failed"] += 1

        def cutter():
            while not stop.wait(cut_every):
                if emu.cut(did):
                    counts["cuts"] += 1

        workers = [threading.Thread(target=f, daemon=True, name=f"soak-{f.__name__}")
                   for f in (reporter, commander, cutter)]
        for w in workers:
            w.start()
        samples = []
        start = time.monotonic()
        while True:
            now = time.monotonic() - start
            samples.append({"t": round(now, 1), "threads": threading.active_count(), "rss_kb": _rss_kb(),
                            "fds": _fds(), "buffered": client.get_buffer_metrics().size})
            if now >= duration:
                break
            time.sleep(min(sample_every, max(0.1, duration - now)))
        stop.set()
        for w in workers:
            w.join(10)
        # let the last reports settle, then count what the platform received
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and counts["acked"] + counts["failed"] < counts["sent"]:
            time.sleep(0.1)
        seqs = []
        for e in emu.trace(did, "up", topics.PROPERTIES_REPORT):
            try:
                seqs.append(int(codec.loads_object(e.payload)["services"][0]["properties"]["seq"]))
            except (ValueError, KeyError, IndexError, TypeError):
                pass
        device.destroy()
    unique = set(seqs)
    first = []
    seen = set()
    for s in seqs:
        if s not in seen:
            seen.add(s)
            first.append(s)
    lost = counts["sent"] - len(unique) - counts["failed"]
    warm = [s for s in samples if s["t"] >= min(60.0, duration * 0.2)] or samples
    base = warm[: max(1, len(warm) // 3)]
    tail = warm[-max(1, len(warm) // 3):]
    growth = {
        "threads": max(s["threads"] for s in tail) - statistics.median(s["threads"] for s in base),
        "fds": max(s["fds"] for s in tail) - statistics.median(s["fds"] for s in base),
        "rss_kb": statistics.median(s["rss_kb"] for s in tail) - statistics.median(s["rss_kb"] for s in base),
    }
    base_rss = statistics.median(s["rss_kb"] for s in base)
    problems = []
    if growth["threads"] > 3:
        problems.append(f"threads grew by {growth['threads']}")
    if growth["fds"] > 10:
        problems.append(f"open fds grew by {growth['fds']}")
    if growth["rss_kb"] > max(20 * 1024, base_rss * 0.25):
        problems.append(f"RSS grew by {growth['rss_kb']} kB")
    if lost > 0:
        problems.append(f"{lost} report(s) lost")
    if first != sorted(first):
        problems.append("reports delivered out of order")
    return {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "minutes": minutes, "rate_per_s": rate, "cut_every_s": cut_every,
        "faults_injected": counts["cuts"],
        "reports": {"sent": counts["sent"], "acked": counts["acked"], "failed_reported": counts["failed"],
                    "delivered": len(unique), "duplicated": len(seqs) - len(unique), "lost": lost,
                    "in_order": first == sorted(first)},
        "commands": {"answered_ok": counts["commands_ok"], "failed_or_offline": counts["commands_failed"],
                     "seen_by_device": answer.count},
        "growth": growth, "baseline": base[0] if base else None, "final": samples[-1],
        "samples": len(samples), "ok": not problems, "problems": problems,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--rate", type=float, default=20.0, help="property reports per second")
    ap.add_argument("--cut-every", type=float, default=20.0, help="seconds between link cuts")
    ap.add_argument("--sample-every", type=float, default=10.0)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    result = run(args.minutes, args.rate, args.cut_every, args.sample_every, quiet=not args.verbose)
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
