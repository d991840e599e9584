"""Install the project's Python requirements into the running interpreter.

Usage: ``python requirements/install_requirements.py [runtime|emulator|dev]`` (default ``dev``).
"""
import subprocess
import sys
from pathlib import Path

_FILES = {
    "runtime": "requirements.txt",
    "emulator": "requirements-emulator.txt",
    "dev": "requirements-dev.txt",
}


def main(argv: list) -> int:
    kind = argv[1] if len(argv) > 1 else "dev"
    if kind not in _FILES:
        print(f"unknown set {kind!r}; choose one of {', '.join(_FILES)}", file=sys.stderr)
        return 2
    req = Path(__file__).resolve().parent / _FILES[kind]
    return subprocess.call([sys.executable, "-m", "pip", "install", "-r", str(req)])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
