"""One scale run in a fresh process (clean RSS/thread figures): ``python -m tests.bench.scale SPEC_JSON``.

SPEC: host, port, records (list of device records), mode ("shared" or "default"), duration (s),
dispatcher_threads. Prints one JSON line with the figures.
"""
from __future__ import annotations

import gc
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from tests.bench.common import os_threads, raise_nofile, rss_mb, sdk_device


def main() -> None:
    spec = json.loads(sys.argv[1])
    nofile = raise_nofile(max(4096, 8 * len(spec["records"]) + 256))
    from iot_device_sdk_python.client.request.service_property import ServiceProperty
    from iot_device_sdk_python.transport.mqtt.shared_loop import SharedNetworkLoop

    gc.collect()
    base_rss, base_threads = rss_mb(), os_threads()
    loop = SharedNetworkLoop(dispatcher_threads=spec.get("dispatcher_threads", 4)) if spec["mode"] == "shared" else None
    host, port, records = spec["host"], spec["port"], spec["records"]
    t0 = time.perf_counter()
    devices = [None] * len(records)
    errors = []

    def connect(i):
        try:
            devices[i] = sdk_device(host, port, records[i], qos=1, network_loop=loop)
        except Exception as exc:  # noqa: BLE001 - reported
            errors.append(str(exc))

    with ThreadPoolExecutor(max_workers=min(16, len(records))) as pool:  # connects in parallel, then gone
        list(pool.map(connect, range(len(records))))
    connect_s = time.perf_counter() - t0
    live = [d for d in devices if d is not None]
    gc.collect()
    connected_rss, connected_threads = rss_mb(), os_threads()

    sent = ok = failed = 0
    handles = []
    start = time.monotonic()
    for second in range(int(spec["duration"])):
        tick = start + second
        time.sleep(max(0.0, tick - time.monotonic()))
        for n, d in enumerate(live):
            handles.append(d.get_client().report_properties([ServiceProperty("bench", {"seq": second, "n": n})]))
            sent += 1
        late = time.monotonic() - tick
    for h in handles:
        try:
            h.result(30)
            ok += 1
        except Exception:  # noqa: BLE001 - counted
            failed += 1
    report_rss, report_threads = rss_mb(), os_threads()
    sdk_threads = sorted({t.name.rsplit("-", 1)[0] if t.name[-1:].isdigit() else t.name
                          for t in threading.enumerate()})
    t1 = time.perf_counter()
    for d in live:
        d.destroy()
    destroy_s = time.perf_counter() - t1
    if loop is not None:
        loop.close()
    n = max(1, len(records))
    print(json.dumps({
        "devices": len(records), "mode": spec["mode"], "connected": len(live), "connect_errors": errors[:3],
        "connect_s": round(connect_s, 2), "destroy_s": round(destroy_s, 2), "nofile_soft_limit": nofile,
        "rss_mb_baseline": round(base_rss, 1), "rss_mb_connected": round(connected_rss, 1),
        "rss_mb_after_reporting": round(report_rss, 1),
        "rss_kb_per_device": round((report_rss - base_rss) * 1024 / n, 1),
        "threads_baseline": base_threads, "threads_connected": connected_threads,
        "threads_reporting": report_threads,
        "threads_per_device": round((report_threads - base_threads) / n, 3),
        "reports_sent": sent, "reports_acked": ok, "reports_failed": failed,
        "last_round_send_s": round(late, 3), "thread_kinds": sdk_threads[:12],
    }))


if __name__ == "__main__":
    main()
