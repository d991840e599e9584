"""Putting the package on a board with ``mip``: ``iot_device_sdk_micropython/package.json`` lists every file,
and MicroPython's own ``mip`` installs the package from it (served over HTTP here, as GitHub serves it) into
a ``lib`` folder from which it imports and works."""
from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.micropython._mp import REPO, require_micropython

PACKAGE = REPO / "iot_device_sdk_micropython"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:   # one line per file on stderr is noise in a test log
        pass


def test_package_json_lists_every_module():
    listed = json.loads((PACKAGE / "package.json").read_text())["urls"]
    files = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py"))
    assert sorted(src for _, src in listed) == files
    assert all(dest == "iot_device_sdk_micropython/" + src for dest, src in listed)


def test_mip_installs_a_working_package(tmp_path):
    exe = require_micropython()
    handler = functools.partial(_QuietHandler, directory=str(REPO))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    lib = tmp_path / "lib"
    try:
        url = f"http://127.0.0.1:{server.server_port}/iot_device_sdk_micropython/package.json"
        out = subprocess.run([exe, "-c", f"import mip; mip.install({url!r}, target={str(lib)!r})"],
                             capture_output=True, text=True, timeout=60, cwd=tmp_path,
                             env={"MICROPYPATH": ".frozen"})
    finally:
        server.shutdown()
        server.server_close()
    assert out.returncode == 0 and "Done" in out.stdout, out.stdout + out.stderr
    # only the installed copy is on the path: the repository is not
    code = ("from iot_device_sdk_micropython.client import IotClient, IotClientConfig\n"
            "from iot_device_sdk_micropython.utils import get_password\n"
            "import iot_device_sdk_micropython as p; print(p.__file__)\n"
            "print(get_password('12345678', '2025041401'))\n")
    out = subprocess.run([exe, "-c", code], capture_output=True, text=True, timeout=30, cwd=tmp_path,
                         env={"MICROPYPATH": ".frozen:" + str(lib)})
    assert out.returncode == 0, out.stdout + out.stderr
    where, password = out.stdout.split()[:2]
    assert where.startswith(str(lib))
    assert password == "c75150e6cb841417396819e4d2ee4358a416344a03a083e3a8567074ddec820a"


def test_precompiled_package_runs_in_a_64k_heap(tmp_path):
    """Compiled with ``mpy-cross`` (the README's advice for small boards), the package and a TLS link work in a
    64 KB heap - where compiling the sources on the device would not fit (see test_micropython_device)."""
    from iotda_emulator import Emulator
    from tests.micropython._mp import HERE, MpProcess

    require_micropython()
    compiler = shutil.which("mpy-cross", path=str(Path(sys.executable).parent)) or shutil.which("mpy-cross")
    if compiler is None:
        pytest.skip("no `mpy-cross` command: install the dev requirements (mpy-cross)")
    lib = tmp_path / "lib"
    for src in PACKAGE.rglob("*.py"):
        out = lib / src.relative_to(REPO).with_suffix(".mpy")
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([compiler, "-o", str(out), str(src)], check=True, timeout=60)
    script = tmp_path / "mp_device.py"
    shutil.copy(HERE / "mp_device.py", script)
    with Emulator(command_timeout=5.0) as emu:
        record = emu.create_device()
        proc = MpProcess(script, ["host=127.0.0.1", f"device_id={record['device_id']}", f"secret={record['secret']}",
                                  f"port={emu.mqtts_port}", f"ca_file={emu.ca_file}"], heap="64K", path=[lib])
        try:
            proc.expect("READY")
            for level in range(10):
                reply = emu.send_command(record["device_id"], "Sensor", "set_level", {"level": level})
                assert reply["paras"] == {"applied": level}
            emu.send_message(record["device_id"], "stats")
            _, alloc, free, _ = proc.expect("STATS").split()
        finally:
            proc.stop()
    print("64K heap with .mpy and TLS: allocated", alloc, "free", free)
