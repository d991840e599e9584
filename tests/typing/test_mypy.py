"""``mypy --strict`` passes on the SDK and on a typed user program that calls every public API (issue 17).

Both runs share one mypy cache in a temporary directory (nothing is written into the tree); the first run
takes a few seconds, the second reuses the analysed SDK.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = Path(__file__).with_name("typed_program.py")

mypy_api = pytest.importorskip("mypy.api", reason="mypy is not installed (requirements/requirements-dev.txt)")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mypy_cache")


def _strict(cache_dir: Path, *targets: str) -> subprocess.CompletedProcess[str]:
    # a subprocess (not mypy.api in-process): a clean interpreter, and the SDK is checked from the
    # checkout (cwd), exactly as CI and a developer run it
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--cache-dir", str(cache_dir),
         "--config-file", "", *targets],
        cwd=ROOT, capture_output=True, text=True, timeout=300)


def _errors(result: subprocess.CompletedProcess[str]) -> str:
    return "\n".join(line for line in (result.stdout + result.stderr).splitlines() if ": error:" in line)


def test_sdk_passes_mypy_strict(cache_dir: Path) -> None:
    result = _strict(cache_dir, "iot_device_sdk_python")
    assert result.returncode == 0, f"mypy --strict iot_device_sdk_python:\n{_errors(result) or result.stdout + result.stderr}"


def test_typed_user_program_passes_mypy_strict(cache_dir: Path) -> None:
    result = _strict(cache_dir, str(PROGRAM.relative_to(ROOT)))
    assert result.returncode == 0, f"mypy --strict {PROGRAM.name}:\n{_errors(result) or result.stdout + result.stderr}"


def test_the_check_catches_a_typing_mistake(cache_dir: Path, tmp_path: Path) -> None:
    """The same command fails on a program that misuses the SDK (so a passing run means something)."""
    bad = tmp_path / "bad_program.py"
    bad.write_text(
        "from iot_device_sdk_python import IotDevice\n"
        "device = IotDevice.create_by_secret('host', '8883', 'id', 'secret')\n"   # port must be an int
        "handle = device.get_client().report_properties([])\n"
        "mid: str = handle.result()\n"                                           # result() is Optional[int]
        "device.get_client().get_device_info_conf = 1\n"                         # no such attribute
        "from iot_device_sdk_python import ConnectAuthInfo\n"
        "auth = ConnectAuthInfo()\n"
        "auth.port = '8883'\n",                                                  # a typed field: int
        encoding="utf-8")
    result = _strict(cache_dir, str(bad))
    errors = _errors(result)
    assert result.returncode != 0
    for line in (2, 4, 5, 8):
        assert f"bad_program.py:{line}:" in errors, errors
    assert "bad_program.py:3:" not in errors, errors
