"""Every log record of the process at DEBUG, formatted (with tracebacks), for the hostile-input hygiene checks."""
from __future__ import annotations

import contextlib
import logging
import threading
from typing import Iterator, List, Tuple


class LogCapture(logging.Handler):
    """Keeps ``(logger name, level, formatted line)`` of every record it is handed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: List[Tuple[str, int, str]] = []
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # noqa: BLE001 - a broken record must not break the capture
            line = repr(record.msg)
        with self._lock:
            self.lines.append((record.name, record.levelno, line))


@contextlib.contextmanager
def captured_logs() -> Iterator[LogCapture]:
    """A :class:`LogCapture` on the root logger, which is set to DEBUG meanwhile (its level restored after)."""
    handler = LogCapture()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
