"""The emulator's own CPU per QoS 1 uplink, by component, and what one emulator holds (devices, messages/s).

``bench_emulator`` (part ``emulator`` of ``make bench``): one raw paho device (in the bench process, so its CPU is
not counted) publishes QoS 1 ``properties/report`` and ``messages/up`` messages as fast as its inflight window
lets it; the emulator process reports, per run, the CPU its components used (thread CPU clocks: access front,
platform core, sqlite store) and Mosquitto's (``/proc/<pid>/stat``), divided by the messages. The run ends when
every message is acknowledged, traced and handled by the platform.

``bench_emulator_scale`` (part ``emulator_scale``, not in the default run): connects many devices (helper
processes of raw asyncio sockets, :mod:`tests.bench.emu_swarm`) and has them report at fixed total rates, measuring
what the emulator keeps up with. See doc/performance.md, "The emulator".
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List

from iot_device_sdk_python.protocol import topics
from tests.bench.common import RawDevice
from tests.bench.emu_server import EmulatorProcess, proc_cpu

_PARTS = ("front", "core", "store")


def _log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def _payload(kind: str, i: int) -> bytes:
    if kind == "report_properties":
        body: Dict[str, Any] = {"services": [{"service_id": "bench", "properties": {
            "temperature": 21.5, "humidity": 40, "seq": i}}]}
    else:
        body = {"content": f"bench message number {i} with some text in it"}
    return json.dumps(body, separators=(",", ":")).encode()


def _one_run(emu: EmulatorProcess, kind: str, n: int) -> Dict[str, Any]:
    rec = emu.create_devices(1)[0]
    dev = RawDevice(emu.host, emu.mqtt_port, rec)
    dev.connect()
    emu.call("wait_online", rec["device_id"], 10)
    topic = (topics.properties_report if kind == "report_properties" else topics.messages_up)(rec["device_id"])
    payloads = [_payload(kind, i) for i in range(n)]
    since = emu.last_id()
    dev.expect(n)
    try:
        c0 = emu.cpu_split()
        t = time.perf_counter()
        for p in payloads:
            dev.client.publish(topic, p, 1)
        dev.done.wait(120)
        acked_s = time.perf_counter() - t
        tk = topics.PROPERTIES_REPORT if kind == "report_properties" else topics.MESSAGES_UP
        got = emu.wait_count([rec["device_id"]], tk, since, n, timeout=120)
        c1 = emu.cpu_split()
    finally:
        dev.close()
    per = 1e6 / n
    us = {part: round((c1[part] - c0[part]) * per, 1) for part in _PARTS}
    us["emulator_total"] = round(sum(us[p] for p in _PARTS), 1)
    us["mosquitto"] = round((c1["mosquitto"] - c0["mosquitto"]) * per, 1)
    us["process_other"] = round((c1["other"] - c0["other"]) * per, 1)
    us["of_which_gc"] = round((c1["gc"] - c0["gc"]) * per, 1)
    if os.environ.get("BENCH_EMU_THREADS"):  # per-thread detail (µs/msg) on stderr, for profiling
        _log(str({k: round((v - c0["threads"].get(k, 0.0)) * per, 1) for k, v in c1["threads"].items()}))
    return {"us": us, "acked": dev.published, "traced": got, "msg_s": round(n / acked_s)}


def bench_emulator(emu: EmulatorProcess, n: int, runs: int) -> Dict[str, Any]:
    """µs of CPU per QoS 1 uplink in the emulator, by component; median and spread over ``runs`` runs."""
    out: Dict[str, Any] = {"what": "emulator CPU per QoS 1 uplink, us (front + core + store = emulator_total; "
                                   "mosquitto separately); one raw paho device, inflight 20",
                           "messages_per_run": n, "runs": runs}
    for kind in ("report_properties", "report_device_message"):
        _one_run(emu, kind, min(n, 300))  # warm-up: first connection, caches
        res = [_one_run(emu, kind, n) for _ in range(runs)]
        keys = list(res[0]["us"])
        row: Dict[str, Any] = {
            "median_us": {k: round(statistics.median(r["us"][k] for r in res), 1) for k in keys},
            "min_us": {k: min(r["us"][k] for r in res) for k in keys},
            "max_us": {k: max(r["us"][k] for r in res) for k in keys},
            "runs_total_us": [r["us"]["emulator_total"] for r in res],
            "msg_s": [r["msg_s"] for r in res],
            "acked": [r["acked"] for r in res], "traced": [r["traced"] for r in res],
        }
        # a direct uplink's platform work (trace insert, shadow update) runs on the front's thread and so counts in
        # "front": the same calls timed alone, on a registered device, give the core's share of it
        rec = emu.create_devices(1)[0]
        topic = (topics.properties_report if kind == "report_properties" else topics.messages_up)(rec["device_id"])
        alone = [_payload(kind, i) for i in range(n)]
        row["core_part_of_front_us"] = [round(emu.call("take_uplink_cost", topic, alone), 1) for _ in range(3)]
        out[f"{kind}_qos1"] = row
        m = row["median_us"]
        _log(f"emulator {kind} qos1: total {m['emulator_total']} us/msg (front {m['front']}, core {m['core']}, "
             f"store {m['store']}; mosquitto {m['mosquitto']}); runs {row['runs_total_us']}; "
             f"core's part of front, alone: {row['core_part_of_front_us']}")
    return out


def _raise_nofile_for(fds: int) -> Dict[str, Any]:
    """Give this process (and so the emulator process and Mosquitto it spawns) ``fds`` descriptors.

    The soft limit goes up to the hard limit as any process may; above the hard limit only root can go
    (CAP_SYS_RESOURCE), which the bench then does and says so in the result.
    """
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    out: Dict[str, Any] = {"before": [soft, hard], "needed": fds, "hard_raised": False}
    if hard != resource.RLIM_INFINITY and hard < fds and os.geteuid() == 0:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (fds, fds))
            out["hard_raised"] = True
        except (ValueError, OSError) as exc:
            out["hard_raise_error"] = str(exc)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < fds:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(fds, hard) if hard != resource.RLIM_INFINITY else fds, hard))
    out["after"] = list(resource.getrlimit(resource.RLIMIT_NOFILE))
    return out


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        pass
    return 0.0


def bench_emulator_scale(devices: int, rates: List[float], duration: float, procs: int = 4,
                         gc_freeze: bool = False) -> Dict[str, Any]:
    """Connect ``devices`` devices to a fresh emulator, then for each rate send that many QoS 1 reports/s for
    ``duration`` s (one phase per rate, same connections).

    Per phase: reports acknowledged and traced, how long after the start the last PUBACK came (≈ ``duration``
    when the emulator keeps up), and the emulator's CPU by component (µs per message, % of one core).
    """
    # emulator: 1 descriptor per brokerless link, 2 per device with a broker link (BENCH_EMU_DIRECT=0 or a
    # device that subscribes), Mosquitto 1 per broker link, a margin for the rest: ask for the larger need
    limits = _raise_nofile_for(2 * devices + 1024)
    emu = EmulatorProcess()
    res: Dict[str, Any] = {"devices": devices, "phase_s": duration, "swarm_processes": procs, "nofile": limits}
    swarm: List[subprocess.Popen] = []
    try:
        t = time.perf_counter()
        records: List[dict] = []
        while len(records) < devices:
            records += emu.create_devices(min(1000, devices - len(records)))
        res["register_s"] = round(time.perf_counter() - t, 1)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")]))
        for k in range(procs):
            p = subprocess.Popen([sys.executable, "-m", "tests.bench.emu_swarm"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True, env=env)
            p.stdin.write(json.dumps({"host": emu.host, "port": emu.mqtt_port, "records": records[k::procs],
                                      "concurrency": 32}) + "\n")
            p.stdin.flush()
            swarm.append(p)
        t = time.perf_counter()
        connected = [json.loads(p.stdout.readline()) for p in swarm]
        res["connect_s"] = round(time.perf_counter() - t, 1)
        res["connected"] = sum(c["connected"] for c in connected)
        errors: Dict[str, int] = {}
        for c in connected:
            for k, v in c["errors"].items():
                errors[k] = errors.get(k, 0) + v
        res["connect_errors"] = errors
        emu_pid = emu._proc.pid
        res["emulator_rss_mb_connected"] = _rss_mb(emu_pid)
        res["emulator_fds_connected"] = len(os.listdir(f"/proc/{emu_pid}/fd"))   # brokerless links: ~1 per device
        _log(f"emulator scale: {res['connected']}/{devices} devices connected in {res['connect_s']} s "
             f"(errors {errors}), emulator RSS {res['emulator_rss_mb_connected']} MB")
        # what every full collection has to traverse with all links up (top types: BENCH_EMU_GC_TYPES=N)
        res["gc_tracked_objects_connected"] = emu.call("gc_objects", int(os.environ.get("BENCH_EMU_GC_TYPES", "0")))
        if gc_freeze:  # experiment (--emulator-gc-freeze): what the collector costs with every link alive
            res["gc_frozen_objects"] = emu.call("gc_freeze")
        # warm-up, not counted: one report per device (first-message work: per-link topic decisions, the
        # core's topic cache, the shadow row), as devices report once they are online
        warm_rate = min(2000.0, float(devices))
        res["warmup"] = _scale_phase(emu, swarm, warm_rate, res["connected"] / warm_rate)
        res["phases"] = [_scale_phase(emu, swarm, rate, duration) for rate in rates]
        res["emulator_rss_mb_after"] = _rss_mb(emu_pid)
        res["front_counters"] = emu.call("front_counters")
        res["gc_tracked_objects_after"] = emu.call("gc_objects", int(os.environ.get("BENCH_EMU_GC_TYPES", "0")))
        res["broker_drop_notices"] = emu.call("broker_drops")
    finally:
        for p in swarm:
            try:
                p.stdin.close()
                p.wait(30)
            except Exception:  # noqa: BLE001 - best effort
                p.kill()
        emu.stop()
    return res


def _scale_phase(emu: EmulatorProcess, swarm: List[subprocess.Popen], rate: float, duration: float) -> Dict[str, Any]:
    since = emu.last_id()
    c0 = emu.cpu_split()
    s0 = sum(proc_cpu(p.pid) for p in swarm)
    t = time.perf_counter()
    for p in swarm:
        p.stdin.write(f"go {rate / len(swarm)} {duration}\n")
        p.stdin.flush()
    done = [json.loads(p.stdout.readline()) for p in swarm]
    sent = sum(d["sent"] for d in done)
    emu.call("wait_last_id", since + sent, 120)   # every report traced (no SQL while waiting)
    traced_after = time.perf_counter() - t
    c1 = emu.cpu_split()
    swarm_cpu = sum(proc_cpu(p.pid) for p in swarm) - s0
    out: Dict[str, Any] = {
        "target_msg_s": rate, "sent": sent, "acked": sum(d["acked"] for d in done),
        "traced": emu.wait_count(None, topics.PROPERTIES_REPORT, since, sent, timeout=1),
        "send_s": max(d["send_s"] for d in done), "all_acked_after_s": max(d["acked_after_s"] for d in done),
        "all_traced_after_s": round(traced_after, 2), "closed_by_peer": sum(d["closed_by_peer"] for d in done)}
    per = 1e6 / max(1, sent)
    us = {k: round((c1[k] - c0[k]) * per, 1) for k in (*_PARTS, "mosquitto")}
    us["emulator_total"] = round(sum(us[k] for k in _PARTS), 1)
    us["of_which_gc"] = round((c1["gc"] - c0["gc"]) * per, 1)
    out["cpu_us_per_msg"] = us
    g0, g1 = c0.get("gc_by_generation", {}), c1.get("gc_by_generation", {})
    out["gc_collections"] = {f"gen{g}": [n - g0.get(g, [0, 0.0])[0], round(sec - g0.get(g, [0, 0.0])[1], 3)]
                             for g, (n, sec) in sorted(g1.items())}   # [collections, seconds] in the phase
    out["cpu_percent_of_one_core"] = {k: round((c1[k] - c0[k]) / traced_after * 100, 1)
                                      for k in ("front", "core", "store", "mosquitto", "process")}
    # the device processes share the 2 cores with the emulator: what they used bounds what was left for it
    out["cpu_percent_of_one_core"]["device_processes"] = round(swarm_cpu / traced_after * 100, 1)
    out["device_processes_cpu_us_per_msg"] = round(swarm_cpu * per, 1)
    _log(f"emulator scale {rate:.0f}/s: {out['acked']}/{sent} acked (last after {out['all_acked_after_s']} s), "
         f"{out['traced']} traced after {out['all_traced_after_s']} s; CPU us/msg {us}")
    return out
