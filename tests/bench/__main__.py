"""``make bench``: the SDK against raw paho-mqtt 2.x on the local emulator (Mosquitto + access front).

Prints one JSON document. Every SDK figure comes with the same work done by raw paho in the same run
and their ratio. The emulator runs in its own process. ``--quick`` shrinks every part (a smoke run).
Never part of ``make test``; see doc/performance.md for the figures and how to read them.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List

import paho.mqtt

from iot_device_sdk_python import CommandListener, CommandRsp
from iot_device_sdk_python.client.request.device_message import DeviceMessage
from iot_device_sdk_python.client.request.service_property import ServiceProperty
from iot_device_sdk_python.protocol import topics
from tests.bench.common import RawDevice, raise_nofile, sdk_device
from tests.bench.emu_server import EmulatorProcess, percentiles


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def _median(xs: List[float]) -> float:
    return round(statistics.median(xs), 3) if xs else float("nan")


# ---- import and connect time ----------------------------------------------------------------------

def bench_import(reps: int) -> Dict[str, Any]:
    # Both imports from cached bytecode, as an installed package runs: with PYTHONDONTWRITEBYTECODE set
    # (some machines and CI images set it) the SDK, installed editable, was compiled on every import while
    # paho's wheel came with its .pyc files. A private cache prefix plus one uncounted import of each fills
    # the cache for both without writing into the source tree.
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="iot-bench-pycache-")

    def timed(stmt: str) -> float:
        code = f"import time;t=time.perf_counter();{stmt};print(time.perf_counter()-t)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
        return float(out.stdout.strip()) * 1000

    try:
        timed("import iot_device_sdk_python")
        timed("import paho.mqtt.client")
        sdk = [timed("import iot_device_sdk_python") for _ in range(reps)]
        paho_ = [timed("import paho.mqtt.client") for _ in range(reps)]
        # the five heaviest modules by cumulative time (python -X importtime)
        out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import iot_device_sdk_python"],
                             capture_output=True, text=True, check=True, env=env).stderr
    finally:
        shutil.rmtree(env["PYTHONPYCACHEPREFIX"], ignore_errors=True)
    rows = []
    for line in out.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    top = [{"module": m.strip(), "cumulative_ms": round(us / 1000, 1)}
           for us, m in sorted(rows, reverse=True)[:6]]
    return {"sdk_import_ms": _median(sdk), "paho_import_ms": _median(paho_),
            "ratio": round(_median(sdk) / _median(paho_), 2), "heaviest": top}


def bench_connect(emu: EmulatorProcess, reps: int) -> Dict[str, Any]:
    sdk, raw = [], []
    for _ in range(reps):
        rec_a, rec_b = emu.create_devices(2)
        t = time.perf_counter()
        r = RawDevice(emu.host, emu.mqtt_port, rec_a)
        r.connect()
        raw.append((time.perf_counter() - t) * 1000)
        r.close()
        t = time.perf_counter()
        d = sdk_device(emu.host, emu.mqtt_port, rec_b)
        sdk.append((time.perf_counter() - t) * 1000)
        d.destroy()
    return {"what": "construct + connect + CONNACK + 6 downlink SUBACKs, ms (median)",
            "sdk_ms": _median(sdk), "raw_paho_ms": _median(raw),
            "overhead_ms": round(_median(sdk) - _median(raw), 3)}


# ---- report throughput ----------------------------------------------------------------------------

def _props(i: int) -> dict:
    return {"services": [{"service_id": "bench", "properties": {"temperature": 21.5, "humidity": 40, "seq": i}}]}


def _msg(i: int) -> dict:
    return {"content": f"bench message number {i} with some text in it"}


class _CpuSplit:
    """CPU used during one measured run, per process: this one (the device), the emulator process (access
    front + platform core, one GIL) and Mosquitto. In microseconds per message."""

    def __init__(self, emu: EmulatorProcess) -> None:
        # every run starts from a collected heap: a full collection of the garbage a previous run left
        # (≈ 10-20 ms) otherwise lands in whichever run comes next, which moved single QoS 0 runs by ±10 %
        gc.collect()
        self._emu = emu
        self._t0 = emu.cpu()
        self._p0 = time.process_time()

    def device_done(self) -> None:
        """The device's work is over (all acknowledged): its CPU is read now, the emulator's later."""
        self._p1 = time.process_time()

    def stop(self, n: int) -> Dict[str, float]:
        """Call once the platform has traced every message (the emulator's work for them is done)."""
        p1 = self._p1
        t1 = self._emu.cpu()
        per = 1e6 / n
        return {"device_us": round((p1 - self._p0) * per, 1),
                "emulator_us": round((t1["emulator"] - self._t0["emulator"]) * per, 1),
                "mosquitto_us": round((t1["mosquitto"] - self._t0["mosquitto"]) * per, 1)}


def _sdk_run(emu, kind: str, qos: int, n: int) -> Dict[str, Any]:
    rec = emu.create_devices(1)[0]
    d = sdk_device(emu.host, emu.mqtt_port, rec, qos=qos)
    client = d.get_client()
    since = emu.last_id()
    try:
        cpu = _CpuSplit(emu)
        t = time.perf_counter()
        if kind == "report_properties":
            handles = [client.report_properties([ServiceProperty("bench", _props(i)["services"][0]["properties"])])
                       for i in range(n)]
        else:
            handles = []
            for i in range(n):
                m = DeviceMessage()
                m.content = _msg(i)["content"]
                handles.append(client.report_device_message(m))
        # One wait, as raw paho waits on one Event for its count: handles resolve in publish order (writes
        # and PUBACKs come in order), so once the last is done the others are too. Waiting on each in turn
        # instead made the main thread sleep and wake once per message (an Event and a thread switch per
        # handle), which the raw run did not pay. Every handle is still checked below.
        if handles:
            handles[-1].exception(120)
        dt = time.perf_counter() - t
        cpu.device_done()
        failed = sum(1 for h in handles if h.exception(120) is not None)
    finally:
        d.destroy()
    tk = topics.PROPERTIES_REPORT if kind == "report_properties" else topics.MESSAGES_UP
    got = emu.wait_count([rec["device_id"]], tk, since, n, timeout=120)
    return {"rate": n / dt, "failed": failed, "received": got, "cpu": cpu.stop(n)}


def _raw_run(emu, kind: str, qos: int, n: int) -> Dict[str, Any]:
    rec = emu.create_devices(1)[0]
    r = RawDevice(emu.host, emu.mqtt_port, rec)
    r.connect()
    since = emu.last_id()
    dev = rec["device_id"]
    topic = topics.properties_report(dev) if kind == "report_properties" else topics.messages_up(dev)
    build = _props if kind == "report_properties" else _msg
    r.expect(n)
    try:
        cpu = _CpuSplit(emu)
        t = time.perf_counter()
        for i in range(n):  # the same work a hand-written device does: build the JSON, publish it
            r.client.publish(topic, json.dumps(build(i), separators=(",", ":")), qos)
        r.done.wait(120)
        dt = time.perf_counter() - t
        cpu.device_done()
    finally:
        r.close()
    tk = topics.PROPERTIES_REPORT if kind == "report_properties" else topics.MESSAGES_UP
    got = emu.wait_count([dev], tk, since, n, timeout=120)
    return {"rate": n / dt, "failed": n - r.published, "received": got, "cpu": cpu.stop(n)}


def bench_throughput(emu: EmulatorProcess, n: int, reps: int) -> Dict[str, Any]:
    out = {}
    for kind in ("report_properties", "report_device_message"):
        for qos in (0, 1):
            sdk, raw = [], []
            _raw_run(emu, kind, qos, min(n, 300))  # warm-up (first connection, caches), not counted
            _sdk_run(emu, kind, qos, min(n, 300))
            for i in range(reps):  # interleaved, alternating who goes first, so that drift hits both alike
                if i % 2 == 0:
                    raw.append(_raw_run(emu, kind, qos, n))
                    sdk.append(_sdk_run(emu, kind, qos, n))
                else:
                    sdk.append(_sdk_run(emu, kind, qos, n))
                    raw.append(_raw_run(emu, kind, qos, n))
            s, r = _median([x["rate"] for x in sdk]), _median([x["rate"] for x in raw])
            key = f"{kind}_qos{qos}"
            cpu = {who: {part: _median([x["cpu"][part] for x in runs]) for part in runs[0]["cpu"]}
                   for who, runs in (("sdk", sdk), ("raw_paho", raw))}
            out[key] = {"sdk_msg_s": round(s), "raw_paho_msg_s": round(r), "ratio": round(s / r, 3),
                        "cpu_us_per_msg_median": cpu,
                        "sdk_runs": [round(x["rate"]) for x in sdk], "raw_runs": [round(x["rate"]) for x in raw],
                        "sdk_failed": sum(x["failed"] for x in sdk),
                        "platform_received_sdk": [x["received"] for x in sdk],
                        "platform_received_raw": [x["received"] for x in raw]}
            log(f"{key}: sdk {s:.0f}/s raw {r:.0f}/s ratio {s / r:.3f}; CPU us/msg device/emulator/mosquitto "
                f"sdk {'/'.join(str(v) for v in cpu['sdk'].values())} "
                f"raw {'/'.join(str(v) for v in cpu['raw_paho'].values())}")
    out["messages_per_run"] = n
    out["runs"] = reps
    out["raw_tcp_nodelay"] = True  # like the SDK's socket (tests/bench/common.py RawDevice)
    return out


# ---- command round trip ---------------------------------------------------------------------------

class _Echo(CommandListener):
    def __init__(self, device):
        self._client = device.get_client()

    def on_command(self, request_id, service_id, command_name, paras):
        self._client.respond_command(request_id, CommandRsp(0, command_name, paras))


def bench_rtt(emu: EmulatorProcess, n: int) -> Dict[str, Any]:
    rec_raw, rec_sdk = emu.create_devices(2)
    r = RawDevice(emu.host, emu.mqtt_port, rec_raw, echo_commands=True)
    r.connect()
    d = sdk_device(emu.host, emu.mqtt_port, rec_sdk)
    d.get_client().set_command_listener(_Echo(d))
    emu.call("wait_online", rec_raw["device_id"], 10)
    emu.call("wait_online", rec_sdk["device_id"], 10)
    try:
        half = max(1, n // 2)  # two interleaved halves each
        raw_lat, sdk_lat, errors = [], [], 0
        for _ in range(2):
            a = emu.rtt(rec_raw["device_id"], half)
            b = emu.rtt(rec_sdk["device_id"], half)
            raw_lat += a["latencies_ms"]
            sdk_lat += b["latencies_ms"]
            errors += a["errors"] + b["errors"]
    finally:
        r.close()
        d.destroy()
    s, w = percentiles(sdk_lat), percentiles(raw_lat)
    res = {"commands": len(sdk_lat), "sdk_ms": s, "raw_paho_ms": w, "errors": errors,
           "overhead_p50_ms": round(s["p50"] - w["p50"], 3), "overhead_p99_ms": round(s["p99"] - w["p99"], 3)}
    log(f"rtt: sdk p50 {s['p50']} p99 {s['p99']}, raw p50 {w['p50']} p99 {w['p99']}")
    return res


# ---- many devices per process ---------------------------------------------------------------------

def bench_scale(emu: EmulatorProcess, counts: List[int], duration: int) -> List[Dict[str, Any]]:
    runs = []
    plan = [(n, "shared") for n in counts] + [(n, "default") for n in counts if n <= 100]
    for n, mode in plan:
        records = emu.create_devices(n)
        since = emu.last_id()
        spec = {"host": emu.host, "port": emu.mqtt_port, "records": records, "mode": mode, "duration": duration,
                "dispatcher_threads": 4}
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "tests.bench.scale", json.dumps(spec)], capture_output=True,
                             text=True, timeout=600)
        if out.returncode != 0:
            runs.append({"devices": n, "mode": mode, "error": out.stderr[-2000:]})
            log(f"scale {n} {mode}: FAILED")
            continue
        res = json.loads(out.stdout.strip().splitlines()[-1])
        res["platform_received_reports"] = emu.wait_count(None, topics.PROPERTIES_REPORT, since,
                                                          res["reports_sent"], timeout=60)
        res["wall_s"] = round(time.perf_counter() - t, 1)
        runs.append(res)
        log(f"scale {n} {mode}: {res['rss_kb_per_device']} KB/device, {res['threads_reporting']} threads, "
            f"{res['reports_acked']}/{res['reports_sent']} acked")
    return runs


# ---- gateway batch --------------------------------------------------------------------------------

def bench_gateway(emu: EmulatorProcess, children: int) -> Dict[str, Any]:
    from iot_device_sdk_python.client.client_conf import ClientConf  # noqa: F401 - gateway imports lazily
    from iot_device_sdk_python.gateway.abstract_gateway import AbstractGateway
    from iot_device_sdk_python.gateway.requests.device_property import DeviceProperty
    from tests.bench.common import client_conf
    from tests.fixtures_sdk import _memory_persistence

    rec = emu.create_devices(1)[0]
    gw = AbstractGateway(_memory_persistence(), client_conf(emu.host, emu.mqtt_port, rec))
    if gw.connect() != 0:
        return {"error": "gateway did not connect"}
    since = emu.last_id()
    try:
        props = [DeviceProperty(f"bench_child_{i:05d}",
                                [ServiceProperty("bench", {"temperature": 20 + i % 10, "seq": i})])
                 for i in range(children)]
        t = time.perf_counter()
        handle = gw.report_batch_properties(props)
        build_s = time.perf_counter() - t
        handle.result(120)
        dt = time.perf_counter() - t
    finally:
        gw.destroy()
    messages = -(-children // 100)
    emu.wait_count([rec["device_id"]], topics.GATEWAY_PROPERTIES_REPORT, since, messages, timeout=120)
    got = emu.call("children_received", rec["device_id"], since)
    res = {"children": children, "messages": messages, "seconds": round(dt, 3), "encode_split_s": round(build_s, 3),
           "messages_per_s": round(messages / dt), "children_per_s": round(children / dt),
           "platform_messages": got["messages"], "platform_children": got["children"],
           "complete": got["children"] == children}
    log(f"gateway: {children} children in {dt:.2f}s, platform got {got['children']}")
    return res


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes everywhere (smoke run, ~1 min)")
    ap.add_argument("--messages", type=int, help="messages per throughput run (default 3000)")
    ap.add_argument("--runs", type=int, default=5, help="interleaved throughput runs per case (median; default 5)")
    ap.add_argument("--commands", type=int, help="commands for the round trip (default 2000)")
    ap.add_argument("--devices", default=None, help="comma list of device counts for the scale part (1,100,1000)")
    ap.add_argument("--children", type=int, help="gateway children (default 10000)")
    ap.add_argument("--only", default="", help="comma list of parts: import,connect,throughput,listener,rtt,scale,gateway,"
                                               "emulator (emulator_scale runs only when named or with --emulator-scale)")
    ap.add_argument("--emulator-scale", default="", metavar="DEVICES:RATE[,RATE...]",
                    help="also connect DEVICES devices to a fresh emulator and send each RATE of QoS 1 reports/s for "
                         "--emulator-phase-s seconds (e.g. 10000:1000,2000,3000; several minutes)")
    ap.add_argument("--emulator-phase-s", type=float, default=10.0, help="seconds per emulator scale rate (default 10)")
    ap.add_argument("--emulator-gc-freeze", action="store_true",
                    help="experiment: gc.freeze() in the emulator process once every device is connected")
    ap.add_argument("--pin", action="store_true",
                    help="run the emulator on the last CPU and the measured device code on the others")
    a = ap.parse_args()
    q = a.quick
    n_msg = a.messages or (300 if q else 3000)
    n_cmd = a.commands or (200 if q else 2000)
    counts = [int(x) for x in (a.devices or ("1,20" if q else "1,100,1000")).split(",")]
    n_children = a.children or (1000 if q else 10000)
    only = set(filter(None, a.only.split(",")))
    want: Callable[[str], bool] = lambda part: not only or part in only
    raise_nofile()

    result: Dict[str, Any] = {"machine": {"python": platform.python_version(), "paho": paho.mqtt.__version__,
                                          "cpus": os.cpu_count(), "platform": platform.platform()}}
    started = time.perf_counter()
    if want("import"):
        result["import"] = bench_import(3 if q else 7)
        log(f"import: {result['import']['sdk_import_ms']} ms")
    # --pin: the platform (emulator + Mosquitto) on the last CPU, the device code measured on the others,
    # as a device and a remote platform would be. Then a QoS 0 run is bound by the device's own CPU, and
    # the rate ratio shows the SDK's CPU cost per message; unpinned, it also depends on how the scheduler
    # splits the cores with the emulator's backlog (doc/performance.md).
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pinned = len(cpus) >= 2 and a.pin
    emu = EmulatorProcess(cpus=cpus[-1:] if pinned else None)
    if pinned:
        os.sched_setaffinity(0, set(cpus[:-1]))
    result["machine"]["platform_cpu"] = cpus[-1] if pinned else None
    result["machine"]["device_cpus"] = cpus[:-1] if pinned else cpus
    try:
        if want("connect"):
            result["connect"] = bench_connect(emu, 3 if q else 10)
            log(f"connect: sdk {result['connect']['sdk_ms']} ms raw {result['connect']['raw_paho_ms']} ms")
        if want("throughput"):
            result["throughput"] = bench_throughput(emu, n_msg, 1 if q else a.runs)
        if want("listener"):  # issue 15: ActionListener path vs raw paho vs handle path (tests/bench/listener.py)
            from tests.bench.listener import bench_listener
            result["listener"] = bench_listener(emu, n_msg, 1 if q else a.runs)
        if want("rtt"):
            result["command_round_trip"] = bench_rtt(emu, n_cmd)
        if want("scale"):
            result["scale"] = bench_scale(emu, counts, 3 if q else 5)
        if want("emulator"):  # issue 15: the emulator's own CPU per QoS 1 uplink, by component
            from tests.bench.emulator_cpu import bench_emulator
            result["emulator_cpu"] = bench_emulator(emu, n_msg, 1 if q else min(a.runs, 5))
        if want("gateway"):
            result["gateway_batch"] = bench_gateway(emu, n_children)
    finally:
        emu.stop()
    if a.emulator_scale or "emulator_scale" in only:  # a fresh emulator of its own (and more descriptors)
        from tests.bench.emulator_cpu import bench_emulator_scale
        spec = a.emulator_scale or ("200:500,1000" if q else "10000:1000,2000,3000")
        n_dev, rates = spec.split(":")
        result["emulator_scale"] = bench_emulator_scale(int(n_dev), [float(r) for r in rates.split(",")],
                                                        a.emulator_phase_s, gc_freeze=a.emulator_gc_freeze)
    result["total_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
