"""Mosquitto as a subprocess on a loopback port, with the emulator's generated config and ACL.

Devices never reach this port directly: the access front authenticates them and forwards their
bytes. The ACL confines each username (= device id) to ``$oc/devices/{id}/#``; the platform core
uses the service account :data:`SERVICE_ACCOUNT`, which may use every topic.
"""
from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import List, Optional

logger = logging.getLogger(__name__)

SERVICE_ACCOUNT = "platform"
DEFAULT_BINARY = "/usr/sbin/mosquitto"



def _exit_with_parent():
    """A ``preexec_fn`` asking Linux to SIGTERM the child when this process dies (None elsewhere).

    ``prctl`` is looked up here, before the fork, so the child only makes one system call. Linux ties the
    death signal to the spawning *thread*, so it is only asked for from the main thread (a broker restarted
    from a short-lived worker thread must not die with that thread).
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def set_death_signal() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return set_death_signal

class BrokerError(RuntimeError):
    """Mosquitto is missing or did not start."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def find_mosquitto() -> str:
    """Path of the mosquitto binary (``$IOTDA_EMULATOR_MOSQUITTO``, /usr/sbin, PATH)."""
    for cand in (os.environ.get("IOTDA_EMULATOR_MOSQUITTO"), DEFAULT_BINARY, shutil.which("mosquitto"),
                 "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto", "/usr/local/opt/mosquitto/sbin/mosquitto"):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    raise BrokerError("mosquitto not found: install it (apt-get install mosquitto / brew install mosquitto) "
                      "or set IOTDA_EMULATOR_MOSQUITTO")


class MosquittoBroker:
    """One Mosquitto process; ``start`` picks a free port once and ``restart`` reuses it."""

    def __init__(self, data_dir: str, host: str = "127.0.0.1", port: int = 0,
                 binary: Optional[str] = None) -> None:
        self.data_dir = data_dir
        self.host = host
        self.port = port
        self.binary = binary or find_mosquitto()
        self.conf_file = os.path.join(data_dir, "mosquitto.conf")
        self.acl_file = os.path.join(data_dir, "mosquitto.acl")
        self.log_file = os.path.join(data_dir, "mosquitto.log")
        self._proc: Optional[subprocess.Popen] = None
        #: extra ACL patterns every device may publish and subscribe to (``%u`` = its id): topic policies
        self.topic_policies: List[str] = []

    # ---- config ---------------------------------------------------------------------------------
    def _write_config(self) -> None:
        os.makedirs(self.data_dir, exist_ok=True)
        with open(self.acl_file, "w") as fh:
            fh.write(f"user {SERVICE_ACCOUNT}\n"
                     "topic readwrite $oc/#\n"
                     "topic readwrite #\n"
                     "\n"
                     "pattern readwrite $oc/devices/%u/#\n"
                     + "".join(f"pattern readwrite {p}\n" for p in self.topic_policies))
        lines = [
            "per_listener_settings false",
            "persistence false",
            "allow_anonymous true",
            "set_tcp_nodelay true",   # small request/response packets: no Nagle/delayed-ACK stalls on loopback
            f"acl_file {self.acl_file}",
            f"log_dest file {self.log_file}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",   # includes "Reloading config.", which reload_acl() waits for
            "max_queued_messages 10000",
            f"listener {self.port} {self.host}",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            # as root Mosquitto drops to user "mosquitto" before reading the ACL in our private dir
            lines.insert(0, "user root")
        with open(self.conf_file, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        for f in (self.conf_file, self.acl_file):
            os.chmod(f, 0o644)

    # ---- life cycle -----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 10.0) -> "MosquittoBroker":
        """Start Mosquitto and return once it accepts TCP connections (raises BrokerError otherwise)."""
        if self.running:
            return self
        attempts = 3 if self.port == 0 else 1
        for attempt in range(attempts):
            if self.port == 0 or attempt:
                self.port = free_port(self.host)
            self._write_config()
            self._proc = self._spawn()
            if self._wait_ready(timeout):
                logger.info("mosquitto pid %s listening on %s:%s", self._proc.pid, self.host, self.port)
                return self
            err = self._reap()
            logger.warning("mosquitto did not start on port %s: %s", self.port, err)
        raise BrokerError(f"mosquitto did not start (see {self.log_file})")

    def reload_acl(self, timeout: float = 5.0) -> None:
        """Rewrite the ACL (e.g. after a topic policy was added) and make the running broker apply it.

        Returns once Mosquitto logged that it reloaded its configuration (SIGHUP); raises BrokerError otherwise.
        """
        self._write_config()
        if not self.running:
            return
        seen = self._log_count("Reloading config")
        self._proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while self._log_count("Reloading config") <= seen:
            if time.monotonic() >= deadline:
                raise BrokerError("mosquitto did not reload its configuration")
            time.sleep(0.01)

    def _log_count(self, text: str) -> int:
        try:
            with open(self.log_file, encoding="utf-8", errors="replace") as fh:
                return fh.read().count(text)
        except OSError:
            return 0

    def _spawn(self) -> subprocess.Popen:
        """Start Mosquitto; on Linux it is told to exit with us, so a SIGKILLed emulator leaves no broker."""
        return subprocess.Popen([self.binary, "-c", self.conf_file], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                preexec_fn=_exit_with_parent())

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        delay = 0.002
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                return False
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        return False

    def _reap(self) -> str:
        proc, self._proc = self._proc, None
        if proc is None:
            return ""
        if proc.poll() is None:
            proc.kill()
        try:
            _, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            err = b""
        return (err or b"").decode("utf-8", "replace").strip()[-500:]

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate Mosquitto (SIGTERM, then SIGKILL after ``timeout``) and reap it."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
        self._reap()

    def kill(self) -> None:
        """SIGKILL Mosquitto (a crash, for fault tests); every connection drops at once."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        self._reap()

    def restart(self, timeout: float = 10.0) -> "MosquittoBroker":
        """Start again on the same port (after :meth:`kill` or :meth:`stop`)."""
        self.stop()
        deadline = time.monotonic() + timeout
        while True:  # the port may be in TIME_WAIT briefly; Mosquitto sets SO_REUSEADDR so this is rare
            self._write_config()
            self._proc = self._spawn()
            if self._wait_ready(max(0.5, deadline - time.monotonic())):
                return self
            err = self._reap()
            if time.monotonic() >= deadline:
                raise BrokerError(f"mosquitto did not restart on port {self.port}: {err}")
            time.sleep(0.1)
