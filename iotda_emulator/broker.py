"""Mosquitto as a subprocess, reachable only by the emulator, with its generated config and ACL.

Devices never reach the broker directly: the access front authenticates them and forwards their
bytes. The ACL confines each username (= device id) to ``$oc/devices/{id}/#``; the platform core uses
a service account that may use every topic.

Because the broker trusts the username it is given, no other local process may reach it: it listens on
a unix socket in a private (0700) directory, and the service account's name is drawn at random for each
broker (``MosquittoBroker.service_account``), so knowing the design is not enough to act as the platform.
Where unix sockets are not available it falls back to a loopback TCP port.
"""
from __future__ import annotations

import ctypes
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Optional, Tuple

logger = logging.getLogger(__name__)

#: A name no device may take (kept reserved even though each broker's real service account is random).
SERVICE_ACCOUNT = "platform"
DEFAULT_BINARY = "/usr/sbin/mosquitto"
# sun_path holds 108 bytes on Linux (104 on macOS): longer socket paths go to a private temp dir
_MAX_UNIX_PATH = 100


@dataclass(frozen=True)
class BrokerAddress:
    """Where the broker listens: a unix socket ``path``, or ``host``/``port`` when there is none."""

    host: str
    port: int
    path: Optional[str] = None

    @classmethod
    def of(cls, address: "BrokerAddress | Tuple[str, int]") -> "BrokerAddress":
        """``address`` as a BrokerAddress (a (host, port) tuple names a TCP broker, e.g. an external one)."""
        return address if isinstance(address, BrokerAddress) else cls(*address)

    @property
    def transport(self) -> str:
        """``"unix"`` or ``"tcp"`` (paho's transport names)."""
        return "unix" if self.path else "tcp"



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
    """One Mosquitto process; ``start`` picks its socket (or free port) once and ``restart`` reuses it.

    ``use_unix_socket`` (default: where the OS has them) puts the only listener on a unix socket in a
    0700 directory; otherwise it listens on ``host``:``port``. ``epoch`` counts the processes started, so
    a client can tell whether what it subscribed on is still the running broker.
    """

    def __init__(self, data_dir: str, host: str = "127.0.0.1", port: int = 0,
                 binary: Optional[str] = None, use_unix_socket: Optional[bool] = None) -> None:
        self.data_dir = data_dir
        self.host = host
        self.port = port
        self.binary = binary or find_mosquitto()
        self.conf_file = os.path.join(data_dir, "mosquitto.conf")
        self.acl_file = os.path.join(data_dir, "mosquitto.acl")
        self.log_file = os.path.join(data_dir, "mosquitto.log")
        self._proc: Optional[subprocess.Popen] = None
        #: the platform core's username: random per broker, never a device id
        self.service_account = f"{SERVICE_ACCOUNT}-{secrets.token_hex(16)}"
        if use_unix_socket is None:
            use_unix_socket = hasattr(socket, "AF_UNIX") and sys.platform != "win32"
        self.socket_path: Optional[str] = self._pick_socket_path() if use_unix_socket else None
        self.epoch = 0

    def _pick_socket_path(self) -> str:
        path = os.path.join(os.path.abspath(self.data_dir), "mosquitto.sock")
        if len(path.encode()) <= _MAX_UNIX_PATH:
            return path
        import tempfile  # a deep data dir: the socket lives in a private dir of its own
        return os.path.join(tempfile.mkdtemp(prefix="iotda-mq-"), "mosquitto.sock")

    @property
    def address(self) -> BrokerAddress:
        """Where clients of the broker (the platform core, the access front) connect."""
        return BrokerAddress(self.host, self.port, self.socket_path)

    # ---- config ---------------------------------------------------------------------------------
    def _write_config(self) -> None:
        os.makedirs(self.data_dir, mode=0o700, exist_ok=True)
        os.chmod(self.data_dir, 0o700)  # the socket, config and ACL are nobody else's business
        if self.socket_path:
            os.makedirs(os.path.dirname(self.socket_path), mode=0o700, exist_ok=True)
        with open(self.acl_file, "w") as fh:
            fh.write(f"user {self.service_account}\n"
                     "topic readwrite $oc/#\n"
                     "topic readwrite #\n"
                     "\n"
                     "pattern readwrite $oc/devices/%u/#\n"
                     "pattern read $oc/broadcast/#\n"
                     # bridges (links named "bridge:{id}"): the access front keeps each to its own prefix
                     "pattern readwrite $oc/bridges/#\n"
                     # topics outside $oc ("#" matches no $ topic): the access front decides them by the
                     # device policies (iotda_emulator/device_policies.py), which the ACL syntax cannot express
                     "pattern readwrite #\n")
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
            # no count limit (the byte limit below still bounds every client): with a count of 10,000 the
            # platform core's queue overflowed during a burst of a few thousand uplinks/s and Mosquitto dropped
            # uplinks it had acknowledged to the devices (doc/performance.md, "The emulator")
            "max_queued_messages 0",
            # devices that never read their socket must not grow the broker without bound
            "max_queued_bytes 33554432",
            f"listener 0 {self.socket_path}" if self.socket_path else f"listener {self.port} {self.host}",
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
        attempts = 3 if self.port == 0 and not self.socket_path else 1
        for attempt in range(attempts):
            if not self.socket_path and (self.port == 0 or attempt):
                self.port = free_port(self.host)
            self._write_config()
            self._proc = self._spawn()
            if self._wait_ready(timeout):
                logger.info("mosquitto pid %s listening on %s", self._proc.pid,
                            self.socket_path or f"{self.host}:{self.port}")
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
        if self.socket_path and os.path.exists(self.socket_path):
            os.unlink(self.socket_path)  # left by a killed broker: Mosquitto will not bind over it
        self.epoch += 1
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
                if self.socket_path:
                    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                        probe.settimeout(0.5)
                        probe.connect(self.socket_path)
                else:
                    with socket.create_connection((self.host, self.port), timeout=0.5):
                        pass
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
        """Start again on the same socket or port (after :meth:`kill` or :meth:`stop`)."""
        self.stop()
        deadline = time.monotonic() + timeout
        while True:  # the port may be in TIME_WAIT briefly; Mosquitto sets SO_REUSEADDR so this is rare
            self._write_config()
            self._proc = self._spawn()
            if self._wait_ready(max(0.5, deadline - time.monotonic())):
                return self
            err = self._reap()
            if time.monotonic() >= deadline:
                raise BrokerError(f"mosquitto did not restart on {self.socket_path or self.port}: {err}")
            time.sleep(0.1)
