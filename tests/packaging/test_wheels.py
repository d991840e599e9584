"""The repository's two distributions, built as a user would build them.

The SDK wheel (root ``pyproject.toml``) holds ``iot_device_sdk_python`` only; the emulator wheel
(``iotda_emulator/pyproject.toml``) holds ``iotda_emulator`` only, with the ``iotda-emulator`` command; the demos
are in neither. The emulator wheel is then installed without its dependencies into a throwaway venv, where the
command must still answer ``--version`` and must report the missing dependency in one line, not a traceback.
"""
from __future__ import annotations

import email
import email.message
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict, List, Set

import pytest

ROOT = Path(__file__).resolve().parents[2]
SDK, EMU = "iot_device_sdk_python", "iotda_emulator"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _version(package: str) -> str:
    text = (ROOT / package / "__init__.py").read_text(encoding="utf-8")
    found = re.search(r'^__version__ = "([^"]+)"', text, re.M)
    assert found, f"{package}/__init__.py has no __version__ literal"
    return found.group(1)


def _requirements(path: Path) -> Set[str]:
    """Requirement lines of a file, normalised (name lower-case, specifiers sorted) for comparison."""
    out = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            out.add(_normalise(line))
    return out


def _normalise(req: str) -> str:
    req = req.split(";")[0].replace(" ", "")
    name = re.match(r"[A-Za-z0-9._-]+", req).group(0)
    specs = req[len(name):].strip("()")
    return name.lower().replace("_", "-") + ",".join(sorted(s for s in specs.split(",") if s))


def _sources(package: str) -> Set[str]:
    """The package's files a wheel must carry: every module and data file, minus caches and project files."""
    base = ROOT / package
    project_files = {"pyproject.toml", "requirements.txt", "README.md", "LICENSE"}  # the emulator's project root
    out = set()
    for path in base.rglob("*"):
        rel = path.relative_to(base)
        if (path.is_dir() or "__pycache__" in rel.parts or path.suffix == ".pyc" or rel.parts[0] in {"build", "dist"}
                or rel.parts[0].endswith(".egg-info") or str(rel) in project_files):
            continue
        out.add(f"{package}/{rel.as_posix()}")
    return out


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> Dict[str, Path]:
    """Both wheels, built with pip (isolated build, as `pip install` does) from a copy of the working tree."""
    base = tmp_path_factory.mktemp("wheels")
    tree = base / "repo"
    # a copy: builds write build/ and *.egg-info next to the sources, which the shared checkout must not get
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "__pycache__", "*.pyc", "build", "dist", "*.egg-info", ".hypothesis", ".pytest_cache",
        ".emulator-data", ".ruff_cache", ".mypy_cache", "*.log"))
    out = base / "dist"
    built = {}
    for name, project in (("sdk", tree), ("emulator", tree / EMU)):
        proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out / name),
                               str(project)], capture_output=True, text=True, timeout=240)
        assert proc.returncode == 0, f"building the {name} wheel failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        found = list((out / name).glob("*.whl"))
        assert len(found) == 1, found
        built[name] = found[0]
    return built


def _names(wheel: Path) -> List[str]:
    with zipfile.ZipFile(wheel) as zf:
        return zf.namelist()


def _dist_file(wheel: Path, name: str) -> str:
    with zipfile.ZipFile(wheel) as zf:
        info = [n for n in zf.namelist() if n.endswith(".dist-info/" + name)]
        assert info, f"{wheel.name} has no dist-info/{name}"
        return zf.read(info[0]).decode("utf-8")


def _metadata(wheel: Path) -> email.message.Message:
    return email.message_from_string(_dist_file(wheel, "METADATA"))


def _check_common_metadata(meta: email.message.Message, names: List[str], version: str) -> None:
    assert meta["Version"] == version
    assert meta["Requires-Python"] == ">=3.10"
    classifiers = meta.get_all("Classifier") or []
    for minor in (10, 11, 12, 13):
        assert f"Programming Language :: Python :: 3.{minor}" in classifiers
    assert "Typing :: Typed" in classifiers
    assert meta["License-Expression"] == "BSD-3-Clause"
    assert "LICENSE" in (meta.get_all("License-File") or [])
    licence = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    assert licence, "the licence text is not in the wheel"
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    assert urls and all(u.startswith("https://") for u in urls.values()), urls
    assert meta.get_all("Author") or meta.get_all("Author-email"), "no authors"
    assert meta.get_payload().strip(), "no long description"


def test_the_sdk_wheel_holds_the_sdk_only(wheels):
    names = _names(wheels["sdk"])
    version = _version(SDK)
    dist_info = f"iot_device_sdk_python-{version}.dist-info/"
    stray = [n for n in names if not (n.startswith(SDK + "/") or n.startswith(dist_info))]
    assert stray == [], f"the SDK wheel carries more than the SDK: {stray[:10]}"
    assert set(n for n in names if n.startswith(SDK + "/")) == _sources(SDK)
    assert f"{SDK}/py.typed" in names
    meta = _metadata(wheels["sdk"])
    assert meta["Name"] == "iot-device-sdk-python"
    _check_common_metadata(meta, names, version)
    requires = {_normalise(r) for r in meta.get_all("Requires-Dist") or []}
    assert requires == _requirements(ROOT / "requirements" / "requirements.txt")
    assert not any(n.endswith(".dist-info/entry_points.txt") for n in names), "the SDK installs no command"


def test_the_emulator_wheel_holds_the_emulator_and_its_command(wheels):
    names = _names(wheels["emulator"])
    version = _version(EMU)
    dist_info = f"iotda_emulator-{version}.dist-info/"
    stray = [n for n in names if not (n.startswith(EMU + "/") or n.startswith(dist_info))]
    assert stray == [], f"the emulator wheel carries more than the emulator: {stray[:10]}"
    # every module, sub-package and console asset on disk (the sub-package list in its pyproject is by hand)
    assert set(n for n in names if n.startswith(EMU + "/")) == _sources(EMU)
    assert f"{EMU}/py.typed" in names and f"{EMU}/web/index.html" in names
    meta = _metadata(wheels["emulator"])
    assert meta["Name"] == "iotda-emulator"
    _check_common_metadata(meta, names, version)
    requires = {_normalise(r) for r in meta.get_all("Requires-Dist") or []}
    assert requires == _requirements(ROOT / EMU / "requirements.txt")
    assert "cryptography" in {r.split(">")[0].split("<")[0] for r in requires}
    entry_points = _dist_file(wheels["emulator"], "entry_points.txt")
    assert re.search(r"^\[console_scripts\]\s*\niotda-emulator\s*=\s*iotda_emulator\.cli:main\s*$", entry_points, re.M)


def test_emulator_requirements_are_the_dev_setup_ones():
    # requirements/requirements-emulator.txt (used by `make setup`) includes the distribution's own list
    text = (ROOT / "requirements" / "requirements-emulator.txt").read_text(encoding="utf-8")
    assert "-r ../iotda_emulator/requirements.txt" in text.splitlines()


def test_the_emulator_licence_is_the_repository_licence():
    # the emulator's project root is iotda_emulator/, which needs its own copy to ship the licence text
    assert (ROOT / EMU / "LICENSE").read_bytes() == (ROOT / "LICENSE").read_bytes()


def test_the_installed_command_answers_version_and_reports_a_missing_dependency(wheels, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    py = venv / "bin" / "python"
    # --no-deps on purpose: the throwaway venv has none of cryptography, tornado and paho-mqtt
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
                           "--no-index", str(wheels["emulator"])], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    command = venv / "bin" / "iotda-emulator"
    assert command.exists()
    probe = subprocess.run([str(py), "-c", "import importlib.util as u; print(u.find_spec('cryptography'))"],
                           capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip() == "None", "the throwaway venv unexpectedly has cryptography"

    version = subprocess.run([str(command), "--version"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"iotda-emulator {_version(EMU)}"

    start = subprocess.run([str(command), "start", "--data-dir", str(tmp_path / "data"), "--mqtt-port", "0",
                            "--mqtts-port", "0", "--http-port", "0", "--https-port", "0"],
                           capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert start.returncode == 1
    assert "Traceback" not in start.stderr
    lines = start.stderr.strip().splitlines()
    assert len(lines) == 1, start.stderr
    assert re.match(r"iotda-emulator: missing or too old dependency (cryptography|tornado|paho-mqtt) ", lines[0])
    assert "pip install '" in lines[0]
