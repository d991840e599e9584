"""The emulator for the benchmark, in its own process (so it does not share the GIL with the code measured).

Controlled through a ``multiprocessing`` pipe with small request tuples; see :class:`EmulatorProcess`.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import statistics
import threading
import time
from typing import Any, Dict, List, Optional

from iot_device_sdk_python.protocol import codec, topics


def _serve(conn, options: Dict[str, Any]) -> None:
    cpus = options.get("cpus")
    if cpus and hasattr(os, "sched_setaffinity"):  # before Mosquitto starts: it inherits the CPU set
        os.sched_setaffinity(0, set(cpus))
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("iotda_emulator").setLevel(logging.ERROR)
    from iotda_emulator import Emulator
    import gc
    gc.callbacks.append(_gc_timer)
    if os.environ.get("BENCH_EMU_GC_THRESHOLD"):   # experiment: the collector's thresholds, e.g. "700,10,10"
        gc.set_threshold(*(int(x) for x in os.environ["BENCH_EMU_GC_THRESHOLD"].split(",")))
    else:   # a process that runs only the emulator, as `iotda-emulator start` does
        from iotda_emulator.cli import tune_collector
        tune_collector()

    # BENCH_EMU_DIRECT=0: every device uplink through Mosquitto, as before the direct path (for comparisons)
    emu = Emulator(http=False, command_timeout=10.0,
                   direct_uplinks=os.environ.get("BENCH_EMU_DIRECT", "1") != "0").start()
    # the store's share of the core threads' CPU, if wanted: two thread-clock reads per Store call, which on the
    # measured VM (a syscall each) doubled the figures, so the default split counts those calls in "core"
    emu.store.account_cpu = bool(os.environ.get("BENCH_STORE_ACCOUNTING"))
    core = emu.core
    conn.send({"host": emu.host, "mqtt_port": emu.mqtt_port})
    while True:
        try:
            req = conn.recv()
        except EOFError:
            break
        op, args = req[0], req[1:]
        try:
            if op == "stop":
                conn.send(None)
                break
            elif op == "create_devices":
                n, kwargs = args
                out = [emu.create_device(**kwargs) for _ in range(n)]
                conn.send([{"device_id": r["device_id"], "secret": r["secret"]} for r in out])
            elif op == "count_up":
                device_ids, kind, since = args
                conn.send(_count(core, device_ids, kind, since))
            elif op == "wait_count":
                device_ids, kind, since, want, timeout = args
                deadline = time.monotonic() + timeout
                n = _count(core, device_ids, kind, since)
                while n < want and time.monotonic() < deadline:
                    time.sleep(0.05)
                    n = _count(core, device_ids, kind, since)
                conn.send(n)
            elif op == "children_received":
                gateway_id, since = args
                rows = core.db.query("SELECT payload FROM trace WHERE id > ? AND device_id = ? AND kind = ? "
                                     "AND direction = 'up'", (since, gateway_id, topics.GATEWAY_PROPERTIES_REPORT))
                ids = set()
                for r in rows:
                    for d in codec.loads_object(bytes(r["payload"])).get("devices", []):
                        ids.add(d.get("device_id"))
                conn.send({"messages": len(rows), "children": len(ids)})
            elif op == "cpu":  # CPU seconds so far: this process (access front + platform core) and Mosquitto
                proc = getattr(emu.broker, "_proc", None)
                conn.send({"emulator": time.process_time(), "mosquitto": proc_cpu(proc.pid) if proc else 0.0})
            elif op == "cpu_split":  # per component, after the platform handled everything queued
                conn.send(cpu_split(emu))
            elif op == "last_id":
                conn.send(core.last_trace_id)
            elif op == "broker_drops":  # Mosquitto's "Outgoing messages are being dropped" notices, per client
                drops: Dict[str, int] = {}
                try:
                    with open(emu.broker.log_file, encoding="utf-8", errors="replace") as fh:
                        for line in fh:
                            if "being dropped for client" in line:
                                who = line.rsplit(" ", 1)[-1].strip().rstrip(".")
                                drops[who] = drops.get(who, 0) + 1
                except OSError:
                    pass
                conn.send(drops)
            elif op == "gc_objects":  # objects the cyclic collector tracks, and the most common types of them
                import collections
                import gc
                objs = gc.get_objects()
                kinds = collections.Counter(type(o).__qualname__ for o in objs).most_common(args[0] if args else 0)
                conn.send({"tracked": len(objs), "threshold": list(gc.get_threshold()), "top_types": kinds})
                del objs
            elif op == "take_uplink_cost":  # the core's part of a direct uplink, timed alone (thread CPU, µs/call)
                topic, payloads = args
                t0 = time.thread_time()
                for payload in payloads:
                    core.take_uplink(topic, payload)
                conn.send((time.thread_time() - t0) * 1e6 / max(1, len(payloads)))
            elif op == "front_counters":  # how device uplinks went (doc/emulator.md, "Direct uplinks")
                conn.send({k: getattr(emu.front, k, None) for k in (
                    "direct_uplinks", "fast_uplinks", "direct_downlinks", "brokerless_accepted", "brokerless_opened")})
            elif op == "gc_freeze":  # experiment: move the heap as it is now out of the collector's way
                import gc
                gc.collect()
                gc.freeze()
                conn.send(gc.get_freeze_count())
            elif op == "wait_last_id":  # no SQL while waiting: the scale run must not load the store
                want, timeout = args
                deadline = time.monotonic() + timeout
                while core.last_trace_id < want and time.monotonic() < deadline:
                    time.sleep(0.1)
                conn.send(core.last_trace_id)
            elif op == "wait_online":
                device_id, timeout = args
                conn.send(emu.wait_online(device_id, timeout))
            elif op == "rtt":
                device_id, n, warmup = args
                lat: List[float] = []
                errors = 0
                for i in range(n + warmup):
                    t0 = time.perf_counter()
                    try:
                        emu.send_command(device_id, "bench", "echo", {"i": i}, timeout=10)
                    except Exception:  # noqa: BLE001 - counted and reported
                        errors += 1
                        continue
                    if i >= warmup:
                        lat.append((time.perf_counter() - t0) * 1000.0)
                conn.send({"latencies_ms": lat, "errors": errors})
            else:
                conn.send(RuntimeError(f"unknown op {op}"))
        except Exception as exc:  # noqa: BLE001 - sent back to the caller
            conn.send(exc)
    emu.stop()



_GC_TIME = [0.0, 0.0]   # total seconds in the cyclic garbage collector (all threads), start of the current one


_GC_BY_GEN: Dict[int, List[float]] = {}   # generation -> [collections, seconds]


def _gc_timer(phase: str, info: Dict[str, Any]) -> None:
    if phase == "start":
        _GC_TIME[1] = time.perf_counter()
    else:
        dt = time.perf_counter() - _GC_TIME[1]
        _GC_TIME[0] += dt
        g = _GC_BY_GEN.setdefault(info.get("generation", -1), [0, 0.0])
        g[0] += 1
        g[1] += dt


def _thread_cpu(thread: threading.Thread) -> float:
    """CPU seconds of one live thread (its own clock; 0.0 where the OS has none)."""
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    except (AttributeError, OSError, TypeError):
        return 0.0


def _component(name: str, front_name: str) -> str:
    if name == front_name or name.startswith("asyncio_"):   # the front's loop and its authenticator pool
        return "front"
    if name.startswith(("paho-mqtt-client", "emu-core")):   # the platform core's network thread, dispatcher, workers
        return "core"
    if name.startswith("emu-store"):
        return "store"
    return "other"


def cpu_split(emu) -> Dict[str, Any]:
    """CPU seconds so far, by component: ``front`` (access front), ``core`` (platform core), ``store`` (sqlite:
    its own thread plus the time the front and core threads spent in Store calls, when the store accounts it),
    ``mosquitto`` (the broker process), ``process`` (the whole emulator process).

    First waits until the core's dispatcher has handled everything queued, so that the figures include
    the work for every message already traced.
    """
    done = threading.Event()
    emu.core._dispatch(done.set)
    done.wait(60)
    out: Dict[str, Any] = {"front": 0.0, "core": 0.0, "store": 0.0, "other": 0.0, "threads": {}}
    accounted = getattr(emu.core.db, "cpu_by_thread", lambda: {})()
    for t in threading.enumerate():
        comp = _component(t.name, emu.front.name)
        cpu = _thread_cpu(t)
        out["threads"][t.name] = cpu
        if comp in ("front", "core"):
            spent = accounted.get(t.ident, 0.0)
            cpu -= spent
            out["store"] += spent
        out[comp] += cpu
    proc = getattr(emu.broker, "_proc", None)
    out["gc"] = _GC_TIME[0]
    out["gc_by_generation"] = {k: [v[0], round(v[1], 3)] for k, v in _GC_BY_GEN.items()}
    out["mosquitto"] = proc_cpu(proc.pid) if proc else 0.0
    out["process"] = time.process_time()
    return out


def proc_cpu(pid: int) -> float:
    """utime + stime of process ``pid`` in seconds (Linux /proc; 0.0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def _count(core, device_ids: Optional[List[str]], kind: str, since: int) -> int:
    sql = "SELECT COUNT(*) AS n FROM trace WHERE id > ? AND kind = ? AND direction = 'up'"
    params: list = [since, kind]
    if device_ids:
        sql += " AND device_id IN (%s)" % ",".join("?" * len(device_ids))
        params += list(device_ids)
    return int(core.db.query(sql, params)[0]["n"])


class EmulatorProcess:
    """Starts the emulator in a spawned process; each method is one request/response on the pipe."""

    def __init__(self, **options: Any) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, options), daemon=True, name="bench-emulator")
        self._proc.start()
        info = self._conn.recv()
        self.host: str = info["host"]
        self.mqtt_port: int = info["mqtt_port"]

    def call(self, *req: Any) -> Any:
        self._conn.send(req)
        out = self._conn.recv()
        if isinstance(out, Exception):
            raise out
        return out

    def create_devices(self, n: int, **kwargs: Any) -> List[dict]:
        return self.call("create_devices", n, kwargs)

    def cpu(self) -> Dict[str, float]:
        """CPU seconds used so far by the emulator process and by Mosquitto."""
        return self.call("cpu")

    def cpu_split(self) -> Dict[str, Any]:
        """CPU seconds so far by emulator component (see :func:`cpu_split`)."""
        return self.call("cpu_split")

    def last_id(self) -> int:
        return self.call("last_id")

    def wait_count(self, device_ids, kind: str, since: int, want: int, timeout: float = 60.0) -> int:
        return self.call("wait_count", device_ids, kind, since, want, timeout)

    def rtt(self, device_id: str, n: int, warmup: int = 50) -> Dict[str, Any]:
        return self.call("rtt", device_id, n, warmup)

    def stop(self) -> None:
        try:
            self.call("stop")
        except Exception:  # noqa: BLE001
            pass
        self._proc.join(15)
        if self._proc.is_alive():
            self._proc.terminate()


def percentiles(values: List[float]) -> Dict[str, float]:
    if not values:
        return {"p50": float("nan"), "p99": float("nan"), "n": 0}
    v = sorted(values)
    q = statistics.quantiles(v, n=100, method="inclusive")
    return {"p50": round(statistics.median(v), 3), "p99": round(q[98], 3), "n": len(v)}
