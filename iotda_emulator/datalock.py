"""One data directory, one emulator: an exclusive lock on ``{data_dir}/emulator.lock``.

The lock is an OS file lock (``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows), so the kernel
releases it when the holding process ends in any way, SIGKILL included: a stale lock file never blocks a
later start. The file holds the holder's pid and start time, for the refusal message only.
"""
from __future__ import annotations

import os
import socket
import time
from typing import IO, Optional

from iotda_emulator.errors import EmulatorError

LOCK_FILE = "emulator.lock"

try:  # POSIX
    import fcntl as _fcntl
except ImportError:  # pragma: no cover - Windows
    _fcntl = None  # type: ignore[assignment]
try:  # Windows
    import msvcrt as _msvcrt  # type: ignore[import-not-found]
except ImportError:
    _msvcrt = None  # type: ignore[assignment]


class DataDirInUse(EmulatorError):
    """Another emulator (process or object) holds the data directory."""


class DataDirLock:
    """An exclusive, non-blocking lock on a data directory. :meth:`acquire` raises :class:`DataDirInUse`."""

    def __init__(self, data_dir: str) -> None:
        self.data_dir = os.path.abspath(data_dir)
        self.path = os.path.join(self.data_dir, LOCK_FILE)
        self._fh: Optional[IO[str]] = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fh is not None

    def acquire(self) -> "DataDirLock":
        """Take the lock or raise :class:`DataDirInUse` naming the holder; returns self."""
        if self._fh is not None:
            return self
        os.makedirs(self.data_dir, exist_ok=True)
        # "a+" never truncates: the holder's pid stays readable while we find out we lost
        fh = open(self.path, "a+", encoding="utf-8")
        try:
            _lock(fh)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip()
            fh.close()
            raise DataDirInUse(
                f"the data directory {self.data_dir} is in use by another emulator"
                f"{' (' + holder + ')' if holder else ''}; stop it or choose another --data-dir") from None
        except BaseException:
            fh.close()
            raise
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()} since "
                 f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n")
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        """Give the lock up (idempotent). The file stays; an unlocked file means a free directory."""
        fh, self._fh = self._fh, None
        if fh is None:
            return
        try:
            fh.seek(0)
            fh.truncate()
            fh.flush()
            _unlock(fh)
        except OSError:
            pass
        finally:
            fh.close()


def _lock(fh: IO[str]) -> None:
    if _fcntl is not None:
        _fcntl.flock(fh.fileno(), _fcntl.LOCK_EX | _fcntl.LOCK_NB)
    elif _msvcrt is not None:  # pragma: no cover - Windows: lock the first byte, non-blocking
        fh.seek(0)
        _msvcrt.locking(fh.fileno(), _msvcrt.LK_NBLCK, 1)
    # neither: no locking available on this platform; the emulator runs unguarded


def _unlock(fh: IO[str]) -> None:
    if _fcntl is not None:
        _fcntl.flock(fh.fileno(), _fcntl.LOCK_UN)
    elif _msvcrt is not None:  # pragma: no cover
        fh.seek(0)
        _msvcrt.locking(fh.fileno(), _msvcrt.LK_UNLCK, 1)
