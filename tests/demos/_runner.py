"""Run demos as subprocesses (``python -m iot_device_demo.<x>.<y>``), a few at a time, and collect their results.

Each local-mode demo starts its own in-process emulator on free ports, so runs are independent and can overlap.
The demo writes the emulator's whole message trace to ``--trace-out``; tests assert on that trace.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[2]


@dataclass
class DemoRun:
    """What one demo process did: exit code, output and the emulator's trace (local mode)."""

    module: str
    returncode: Optional[int]
    stdout: str
    stderr: str
    trace: Dict = field(default_factory=dict)
    workdir: Optional[Path] = None

    @property
    def entries(self) -> List[dict]:
        return self.trace.get("entries", [])

    @property
    def device_id(self) -> Optional[str]:
        return self.trace.get("device_id")

    def select(self, direction: Optional[str] = None, kind: Optional[str] = None,
               topic_contains: Optional[str] = None) -> List[dict]:
        out = []
        for e in self.entries:
            if direction and e["direction"] != direction:
                continue
            if kind and e["kind"] != kind:
                continue
            if topic_contains and topic_contains not in e["topic"]:
                continue
            out.append(e)
        return out

    def payloads(self, direction: Optional[str] = None, kind: Optional[str] = None, **kw) -> List[dict]:
        """JSON payloads (objects only) of the selected entries."""
        out = []
        for e in self.select(direction, kind, **kw):
            try:
                obj = json.loads(e["payload"]) if e["payload"] else None
            except ValueError:
                continue
            if isinstance(obj, dict):
                out.append(obj)
        return out

    def events(self, direction: str, service_id: str, event_type: Optional[str] = None) -> List[dict]:
        """The ``services[]`` items of events/up or events/down with this service id (and event type)."""
        kind = "events_up" if direction == "up" else "events_down"
        out = []
        for p in self.payloads(direction, kind):
            for item in p.get("services") or []:
                if item.get("service_id") != service_id:
                    continue
                if event_type is None or item.get("event_type") == event_type:
                    out.append(item)
        return out

    def describe(self) -> str:
        kinds: Dict[str, int] = {}
        for e in self.entries:
            key = f"{e['direction']}:{e['kind']}"
            kinds[key] = kinds.get(key, 0) + 1
        return (f"{self.module} rc={self.returncode}\n--- trace kinds: {kinds}\n--- stdout:\n{self.stdout[-4000:]}"
                f"\n--- stderr:\n{self.stderr[-4000:]}")


def demo_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOTDA_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def run_demo(module: str, args: List[str], workdir: Path, *, local: bool = True, timeout: float = 90,
             env: Optional[Dict[str, str]] = None) -> DemoRun:
    """Run ``python -m iot_device_demo.<module> [--local --trace-out ...] args`` in ``workdir`` and wait."""
    workdir.mkdir(parents=True, exist_ok=True)
    trace_file = workdir / "trace.json"
    cmd = [sys.executable, "-m", f"iot_device_demo.{module}"]
    if local:
        cmd += ["--local", "--trace-out", str(trace_file)]
    cmd += list(args)
    proc = subprocess.Popen(cmd, cwd=str(workdir), env=demo_env(env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)   # only the group this call started
        out, err = proc.communicate()
        err += f"\n[test] killed after {timeout} s"
    trace: Dict = {}
    if trace_file.exists():
        try:
            trace = json.loads(trace_file.read_text(encoding="utf-8"))
        except ValueError:
            trace = {}
    return DemoRun(module, proc.returncode, out, err, trace, workdir)


class DemoPool:
    """Runs many demos concurrently (a small pool: the machine has 2 cores) and hands out their results."""

    def __init__(self, base: Path, workers: int = 4) -> None:
        self.base = base
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="demo-run")
        self._futures: Dict[str, Future] = {}

    def submit(self, key: str, module: str, args: List[str], **kw) -> None:
        if key not in self._futures:
            self._futures[key] = self._pool.submit(run_demo, module, args, self.base / key.replace(".", "_"), **kw)

    def __contains__(self, key: str) -> bool:
        return key in self._futures

    def result(self, key: str, timeout: float = 240) -> DemoRun:
        return self._futures[key].result(timeout=timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def wait_for_text(path: Path, text: str, timeout: float, proc: Optional[subprocess.Popen] = None) -> str:
    """Poll the file ``path`` (a process's redirected output) until it contains ``text``; raises TimeoutError."""
    deadline = time.monotonic() + timeout
    content = ""
    while time.monotonic() < deadline:
        content = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
        if text in content:
            return content
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.1)
    raise TimeoutError(f"{text!r} not seen; output so far:\n{content}")
