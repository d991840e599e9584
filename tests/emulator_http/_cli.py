"""What the CLI tests share: the repository root and the reader of `iotda-emulator start`'s banner."""
from __future__ import annotations

import os
import subprocess
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read_banner(proc: subprocess.Popen, timeout: float = 60.0) -> str:
    """The banner ``start`` prints, up to its "Press Ctrl-C" line (what arrived when ``timeout`` ran out)."""
    lines = []
    done = threading.Event()

    def reader():
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        done.set()

    threading.Thread(target=reader, daemon=True).start()
    done.wait(timeout)
    return "".join(lines)
