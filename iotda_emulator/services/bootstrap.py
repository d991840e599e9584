"""The provisioning server (IoTDP "bootstrap", ``doc/protocol.md`` §5) of the emulator.

A second access front, a service of its own: its own TLS listener on :attr:`BootstrapService.host` /
:attr:`BootstrapService.port` (CA ``emu.ca_file``). On the cloud IoTDP (``iot-bs.<region>...:8883``) and IoTDA
(``iot-mqtts.<region>...:8883``) differ by host name only; the emulator does the same when given a
``bootstrap_host`` distinct from its IoTDA host (e.g. ``127.0.0.2`` next to ``127.0.0.1``): the bootstrap
listener then takes the MQTTS port of IoTDA. On the same host (the default of the Python API) it takes a port
of its own (``bootstrap_port``, 0 = any free one). Connection rules as IoTDP documents them:

* pre-registered bootstrap devices (:meth:`BootstrapService.add_bootstrap_device`, secret or certificate),
  client id ``{device_id}_0_{sign_type}_{YYYYMMDDHH}``;
* registration groups (:meth:`BootstrapService.add_registration_group`): with a base64 group secret the
  device secret is HMAC-SHA256(key = device id, msg = base64-decoded group secret) and the client id
  ``{device_id}_0_{scope_id}_{sign_type}_{YYYYMMDDHH}``; with a group CA the client id is
  ``{device_id}_0_{scope_id}``, no password, and a certificate issued by the group CA whose CN is the device id.

On ``bootstrap/up`` the matching static policy is chosen (keyword from the payload's ``baseStrategyKeyword``
or contained in the device name — for a registration group ``{group name}{device id}``, as IoTDP names
such devices; the highest ``priority`` (0 lowest .. 4 highest, IoTDP's scale) wins), the device is registered
in the emulator's IoTDA registry (group-secret devices get a generated secret, returned as ``deviceSecret``)
and ``bootstrap/down`` carries ``{"address": "{advertised host}:{mqtts_port}", ["initConfig"],
["deviceSecret"]}`` or ``{"errorCode", "errorMsg"}``. The address is the emulator's advertised host (its
``--host``, or ``--advertise-host`` for a wildcard listen address), never a fixed ``localhost``.
``initConfig`` is the device's or group's own initial configuration (IoTDP sets it there), else the
policy's. :meth:`tamper_next_answer` makes the next answer malicious (tests).

The application API of IoTDP (registration groups, provisioning strategies) is in
``iotda_emulator/http/rest_bootstrap.py``. Groups, policies and bootstrap devices live in memory only.
"""
from __future__ import annotations

import base64
import binascii
import datetime as _dt
import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from cryptography import x509
from cryptography.x509.oid import NameOID

from iotda_emulator import mqtt_packets as mp
from iotda_emulator.access_front import AccessFront, AuthDecision, hmac_password
from iotda_emulator.broker import SERVICE_ACCOUNT
from iotda_emulator.certs import (advertised_host, fingerprint_sha1, fingerprint_sha256, is_wildcard,
                                  normalize_fingerprint)
from iotda_emulator.protocol import codec, topics
from iotda_emulator.services.base import PlatformService

_logger = logging.getLogger(__name__)

SERVICE_ID = "$bootstrap"
ERR_NO_POLICY = "100414"
ERR_EXECUTION = "100417"
_STD_RE = re.compile(r"^(?P<sign>[01])_(?P<ts>\d{10})$")
_GROUP_SECRET_RE = re.compile(r"^(?P<scope>[A-Za-z0-9\-]{1,64})_(?P<sign>[01])_(?P<ts>\d{10})$")
_GROUP_CERT_RE = re.compile(r"^(?P<scope>[A-Za-z0-9\-]{1,64})$")


def _host_port(host: str, port: int) -> str:
    """``host:port``, an IPv6 literal in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def derive_group_device_secret(device_id: str, group_secret_b64: str) -> str:
    """IoTDP's registration-group device secret: hex HMAC-SHA256(key = device id, msg = b64decode(group secret))."""
    return hmac.new(device_id.encode("utf-8"), base64.b64decode(group_secret_b64), hashlib.sha256).hexdigest()


@dataclass
class Policy:
    """A static provisioning policy (IoTDP "base" strategy)."""
    policy_id: str
    keyword: str
    keyword_source: str = "payload"      # "payload" (baseStrategyKeyword) or "device_name"
    priority: int = 0                    # 0 lowest .. 4 highest (IoTDP)
    init_config: Optional[Any] = None    # sent as the initConfig JSON string (when the device/group has none)
    product_id: Optional[str] = None     # product of devices it provisions
    name: Optional[str] = None
    created: float = field(default_factory=time.time)


@dataclass
class Group:
    """A registration group; its id is the ``scope_id`` devices put in their client id."""
    scope_id: str
    secret: Optional[str] = None                     # base64 group secret (secret groups)
    ca_cert: Optional[x509.Certificate] = None       # group CA (certificate groups)
    ca_file: Optional[str] = None
    product_id: str = "emu_product"
    require_policy: bool = False
    name: Optional[str] = None                       # registration_group_name (default: the scope id)
    init_config: Optional[Any] = None
    created: float = field(default_factory=time.time)
    devices: List[str] = field(default_factory=list)  # device ids provisioned through the group


@dataclass
class BootstrapDevice:
    device_id: str
    secret: Optional[str] = None
    fingerprint: Optional[str] = None
    name: Optional[str] = None
    product_id: str = "emu_product"
    issue_secret: bool = False
    require_policy: bool = True
    init_config: Optional[Any] = None


@dataclass
class _Session:
    device_id: str
    kind: str                       # "device" | "group_secret" | "group_cert"
    scope_id: Optional[str] = None
    fingerprint: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)


class BootstrapService(PlatformService):
    """The emulator's IoTDP. Python API: :meth:`add_policy`, :meth:`add_registration_group`,
    :meth:`add_bootstrap_device`, :meth:`issue_group_device_cert`, :attr:`port`, :meth:`tamper_next_answer`,
    :attr:`answers` (every answer sent, newest last)."""

    service_ids = (SERVICE_ID,)

    def __init__(self, core) -> None:
        super().__init__(core)
        self._lock = threading.RLock()
        self._policies: Dict[str, Policy] = {}
        self._groups: Dict[str, Group] = {}
        self._devices: Dict[str, BootstrapDevice] = {}
        # last authenticated bootstrap connection per device (overwritten by the next one; only used while
        # the device is connected to the bootstrap front, so a stale entry is harmless)
        self._sessions: Dict[str, _Session] = {}
        self._tamper: Optional[dict] = None
        self._ssl_context = None
        self.front: Optional[AccessFront] = None
        self.answers: List[Dict[str, Any]] = []
        self.requests: List[Dict[str, Any]] = []
        self._host: Optional[str] = None
        core.register_topic_handler(topics.BOOTSTRAP_UP, self._on_bootstrap_up)

    # ---- life cycle ------------------------------------------------------------------------------
    def start(self) -> None:
        emu = self.core.emulator
        if emu is None or getattr(emu, "certs", None) is None:
            _logger.info("bootstrap endpoint not started: no emulator certificates")
            return
        self._ssl_context = emu.certs.server_context(request_client_cert=True)
        iot_host = getattr(emu, "host", "127.0.0.1")
        host = getattr(emu, "bootstrap_host", None) or iot_host
        wanted = getattr(emu, "bootstrap_port", None)
        # a host of its own keeps IoTDA's MQTTS port (as on the cloud); a shared host needs another port.
        # A wildcard on either side overlaps the other's address, so it counts as shared.
        shared = host == iot_host or is_wildcard(host) or is_wildcard(iot_host)
        port = wanted if wanted is not None else (0 if shared else (emu.mqtts_port or 0))
        try:
            self.front = self._start_front(emu, host, port)
        except OSError as exc:
            if wanted is not None or port == 0:
                raise
            _logger.warning("bootstrap endpoint cannot listen on %s:%s (%s); using a free port instead",
                            host, port, exc)
            self.front = self._start_front(emu, host, 0)
        # the name devices are told to use: the listen host, or the emulator's advertised name for a wildcard
        self._host = advertised_host(host, getattr(emu, "advertise_host", None) if is_wildcard(host) else None)
        _logger.info("bootstrap endpoint on %s:%s (TLS), advertised as %s", host, self.port, self._host)

    def _start_front(self, emu, host: str, port: int) -> AccessFront:
        front = AccessFront(self.core.broker_address, self._authenticate, host=host, port=None,
                            tls_port=port, ssl_context=self._ssl_context,
                            on_online=None, on_ready=None, on_offline=None,
                            implicit_topics=lambda device_id: [topics.bootstrap_down(device_id)],
                            name="bootstrap-front")
        adder = getattr(emu, "add_front", None)
        return adder(front) if callable(adder) else front.start()

    def close(self) -> None:
        front, self.front = self.front, None
        if front is not None:
            try:
                front.stop()  # idempotent: the emulator may have stopped it already
            except Exception:  # noqa: BLE001
                _logger.debug("bootstrap front stop failed", exc_info=True)

    @property
    def port(self) -> Optional[int]:
        """TLS port of the provisioning endpoint (None before start)."""
        return self.front.tls_port if self.front is not None else None

    @property
    def host(self) -> str:
        """Host name devices use for the endpoint (covered by the server certificate)."""
        if self._host:
            return self._host
        emu = self.core.emulator
        return getattr(emu, "advertise_host", None) or getattr(emu, "host", None) or "127.0.0.1"

    @property
    def address(self) -> Optional[str]:
        """``host:port`` of the endpoint (None before start)."""
        return _host_port(self.host, self.port) if self.port else None

    def iotda_address(self) -> str:
        """The IoTDA address bootstrap answers carry: the emulator's advertised host and its MQTTS port."""
        emu = self.core.emulator
        host = getattr(emu, "advertise_host", None) or getattr(emu, "host", None) or "127.0.0.1"
        return _host_port(host, emu.mqtts_port)

    @property
    def ca_file(self) -> str:
        """CA that verifies the endpoint (``ConnectAuthInfo.bs_cert_path``)."""
        return self.core.emulator.ca_file

    def describe(self) -> Any:
        with self._lock:
            return {"host": self.host, "port": self.port, "policies": len(self._policies),
                    "groups": sorted(self._groups), "devices": sorted(self._devices)}

    # ---- Python API ------------------------------------------------------------------------------
    def add_policy(self, keyword: str, *, keyword_source: str = "payload", priority: int = 0,
                   init_config: Optional[Any] = None, product_id: Optional[str] = None,
                   policy_id: Optional[str] = None, name: Optional[str] = None) -> str:
        """Add a static provisioning policy; returns its id.

        ``keyword_source`` ``"payload"`` matches the request's ``baseStrategyKeyword`` exactly;
        ``"device_name"`` matches when the keyword is contained in the device name. Among matches the
        highest ``priority`` wins (0 lowest .. 4 highest, as IoTDP ranks them); ties: the older policy.
        """
        if keyword_source not in ("payload", "device_name"):
            raise ValueError("keyword_source must be 'payload' or 'device_name'")
        if not isinstance(keyword, str) or not keyword or len(keyword) > 256:
            raise ValueError("keyword must be a non-empty string of at most 256 characters")
        if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 4:
            raise ValueError("priority must be an integer 0..4")
        pid = policy_id or secrets.token_hex(12)
        with self._lock:
            if pid in self._policies:
                raise ValueError(f"policy {pid} already exists")
            self._policies[pid] = Policy(pid, keyword, keyword_source, priority, init_config, product_id, name)
        return pid

    def remove_policy(self, policy_id: str) -> bool:
        with self._lock:
            return self._policies.pop(policy_id, None) is not None

    def list_policies(self) -> List[Policy]:
        """Every policy, oldest first (copies)."""
        with self._lock:
            return [Policy(**vars(p)) for p in sorted(self._policies.values(), key=lambda p: p.created)]

    def get_policy(self, policy_id: str) -> Optional[Policy]:
        """A copy of the policy ``policy_id`` or None."""
        with self._lock:
            p = self._policies.get(policy_id)
            return Policy(**vars(p)) if p is not None else None

    def list_groups(self) -> List[dict]:
        """Every registration group as :meth:`get_group` describes it, oldest first."""
        with self._lock:
            ids = [g.scope_id for g in sorted(self._groups.values(), key=lambda g: g.created)]
        return [g for g in (self.get_group(i) for i in ids) if g is not None]

    def get_group(self, scope_id: str) -> Optional[dict]:
        """``{"scope_id", "name", "auth_type" ("SECRET"/"CERTIFICATES"), "secret", "ca_file", "product_id",
        "require_policy", "init_config", "created", "devices"}`` or None."""
        with self._lock:
            g = self._groups.get(scope_id)
            if g is None:
                return None
            return {"scope_id": g.scope_id, "name": g.name or g.scope_id,
                    "auth_type": "CERTIFICATES" if g.ca_cert is not None else "SECRET", "secret": g.secret,
                    "ca_file": g.ca_file, "product_id": g.product_id, "require_policy": g.require_policy,
                    "init_config": g.init_config, "created": g.created, "devices": list(g.devices)}

    def update_group(self, scope_id: str, *, name: Optional[str] = None, init_config: Optional[Any] = None,
                     product_id: Optional[str] = None, require_policy: Optional[bool] = None) -> dict:
        """Change a group's name, initial configuration, product or policy requirement (None = keep);
        raises KeyError for an unknown group."""
        with self._lock:
            g = self._groups.get(scope_id)
            if g is None:
                raise KeyError(scope_id)
            if name is not None:
                g.name = name
            if init_config is not None:
                g.init_config = init_config
            if product_id is not None:
                g.product_id = product_id
            if require_policy is not None:
                g.require_policy = bool(require_policy)
        return self.get_group(scope_id)

    def remove_registration_group(self, scope_id: str) -> bool:
        """Delete a group (devices it provisioned stay registered in IoTDA); True when it existed."""
        with self._lock:
            return self._groups.pop(scope_id, None) is not None

    def add_registration_group(self, scope_id: Optional[str] = None, *, secret: Optional[str] = None,
                               certificate: bool = False, ca_file: Optional[str] = None,
                               product_id: str = "emu_product", require_policy: bool = False,
                               name: Optional[str] = None, init_config: Optional[Any] = None) -> dict:
        """Add a registration group; returns ``{"scope_id", "secret", "ca_file"}``.

        Secret group (default): ``secret`` is the base64 group secret (generated when None).
        Certificate group (``certificate=True``): ``ca_file`` is the group CA (default: the emulator's device
        CA, so :meth:`issue_group_device_cert` / ``emu.issue_device_cert`` certificates belong to it).
        ``name`` (default: the scope id) prefixes the device names policies match; ``init_config`` is sent
        as ``initConfig`` to every device of the group.
        """
        scope_id = scope_id or secrets.token_hex(4)
        if not _GROUP_CERT_RE.match(scope_id):
            raise ValueError("scope_id must be 1-64 letters, digits or '-'")
        with self._lock:
            if scope_id in self._groups:
                raise ValueError(f"registration group {scope_id} already exists")
        group = Group(scope_id, product_id=product_id, require_policy=require_policy, name=name,
                      init_config=init_config)
        if certificate or ca_file:
            group.ca_file = ca_file or self.core.emulator.device_ca_file
            with open(group.ca_file, "rb") as fh:
                group.ca_cert = x509.load_pem_x509_certificate(fh.read())
            if ca_file and self._ssl_context is not None:
                self._ssl_context.load_verify_locations(ca_file)  # TLS must accept chains to this CA
        else:
            group.secret = secret or base64.b64encode(secrets.token_bytes(24)).decode("ascii")
            try:
                base64.b64decode(group.secret, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("group secret must be base64") from None
        with self._lock:
            self._groups[scope_id] = group
        return {"scope_id": scope_id, "secret": group.secret, "ca_file": group.ca_file}

    def add_bootstrap_device(self, device_id: str, secret: Optional[str] = None, *,
                             fingerprint: Optional[str] = None, name: Optional[str] = None,
                             product_id: str = "emu_product", issue_secret: bool = False,
                             require_policy: bool = True, init_config: Optional[Any] = None) -> dict:
        """Pre-register a device in IoTDP (standard bootstrap). Secret device (``secret``, generated when
        neither it nor ``fingerprint`` is given) or certificate device (``fingerprint`` SHA-256/SHA-1 hex).
        ``issue_secret``: give it a new IoTDA secret, returned as ``deviceSecret``. ``require_policy``: refuse
        (``100414``) unless a static policy matches. ``init_config`` is sent as ``initConfig``.
        Returns ``{"device_id", "secret", "fingerprint"}``."""
        if not topics.is_valid_device_id(device_id) or device_id == SERVICE_ACCOUNT:
            raise ValueError(f"invalid device id {device_id!r}")
        if secret is None and fingerprint is None:
            secret = secrets.token_hex(16)
        dev = BootstrapDevice(device_id, secret, normalize_fingerprint(fingerprint), name, product_id,
                              issue_secret, require_policy, init_config)
        with self._lock:
            self._devices[device_id] = dev
        return {"device_id": device_id, "secret": secret, "fingerprint": dev.fingerprint}

    def remove_bootstrap_device(self, device_id: str) -> bool:
        with self._lock:
            return self._devices.pop(device_id, None) is not None

    def issue_group_device_cert(self, device_id: str, password: Optional[str] = None):
        """A device certificate (CN = device id) from the emulator's device CA, the default group CA:
        ``(cert_path, key_path, sha256_fingerprint)``."""
        return self.core.emulator.issue_device_cert(device_id, password)

    def tamper_next_answer(self, overrides: Optional[dict] = None, *, address: Optional[str] = None) -> None:
        """Make the next successful answer malicious: ``address`` replaces the IoTDA address and/or
        ``overrides`` are merged into the answer (e.g. ``{"deviceSecret": 42}``). One answer only."""
        tamper = dict(overrides or {})
        if address is not None:
            tamper["address"] = address
        with self._lock:
            self._tamper = tamper

    # ---- authentication (runs in the front's executor) ---------------------------------------------
    def _authenticate(self, info: mp.ConnectInfo, peer_cert_der: Optional[bytes]) -> AuthDecision:
        if not 30 <= info.keepalive <= 1200:
            return AuthDecision(mp.BAD_CLIENT_ID, reason="keepalive outside 30-1200")
        device_id = info.username or ""
        if not topics.is_valid_device_id(device_id) or device_id == SERVICE_ACCOUNT:
            return AuthDecision(mp.BAD_CREDENTIALS, reason="invalid username")
        prefix = f"{device_id}_0_"
        if not info.client_id.startswith(prefix):
            return AuthDecision(mp.BAD_CLIENT_ID, reason="client id does not start with {device_id}_0_")
        rest = info.client_id[len(prefix):]
        password = (info.password or b"").strip()
        m = _STD_RE.match(rest)
        if m:
            return self._auth_device(device_id, m, password, peer_cert_der)
        m = _GROUP_SECRET_RE.match(rest)
        if m:
            return self._auth_group_secret(device_id, m, password)
        m = _GROUP_CERT_RE.match(rest)
        if m:
            return self._auth_group_cert(device_id, m.group("scope"), password, peer_cert_der)
        return AuthDecision(mp.BAD_CLIENT_ID, reason="unrecognised bootstrap client id")

    def _time_ok(self, sign: str, ts: str) -> bool:
        try:
            hour = _dt.datetime.strptime(ts, "%Y%m%d%H").replace(tzinfo=_dt.timezone.utc)
        except ValueError:
            return False
        if sign != "1":
            return True
        tolerance = float(getattr(self.core.emulator, "sign_tolerance_hours", 1) or 1)
        now = _dt.datetime.now(_dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
        return abs((now - hour).total_seconds()) <= tolerance * 3600

    def _auth_device(self, device_id, m, password: bytes, cert_der) -> AuthDecision:
        if not self._time_ok(m.group("sign"), m.group("ts")):
            return AuthDecision(mp.BAD_CREDENTIALS, reason="timestamp outside the tolerance")
        with self._lock:
            dev = self._devices.get(device_id)
        if dev is None:
            return AuthDecision(mp.BAD_CREDENTIALS, reason="not a bootstrap device")
        if password:
            if not dev.secret:
                return AuthDecision(mp.BAD_CREDENTIALS, reason="certificate device sent a password")
            expected = hmac_password(dev.secret, m.group("ts")).encode("ascii")
            if not hmac.compare_digest(expected, password.lower()):
                return AuthDecision(mp.BAD_CREDENTIALS, reason="wrong password")
            self._sessions[device_id] = _Session(device_id, "device")
        else:
            if cert_der is None or not dev.fingerprint:
                return AuthDecision(mp.BAD_CREDENTIALS, reason="no password and no registered certificate")
            actual = fingerprint_sha1(cert_der) if len(dev.fingerprint) == 40 else fingerprint_sha256(cert_der)
            if not hmac.compare_digest(actual, dev.fingerprint):
                return AuthDecision(mp.BAD_CREDENTIALS, reason="certificate fingerprint mismatch")
            self._sessions[device_id] = _Session(device_id, "device", fingerprint=fingerprint_sha256(cert_der))
        return AuthDecision(mp.ACCEPTED, device_id=device_id)

    def _auth_group_secret(self, device_id, m, password: bytes) -> AuthDecision:
        with self._lock:
            group = self._groups.get(m.group("scope"))
        if group is None or not group.secret:
            return AuthDecision(mp.BAD_CREDENTIALS, reason="unknown secret registration group")
        if not self._time_ok(m.group("sign"), m.group("ts")):
            return AuthDecision(mp.BAD_CREDENTIALS, reason="timestamp outside the tolerance")
        derived = derive_group_device_secret(device_id, group.secret)
        expected = hmac_password(derived, m.group("ts")).encode("ascii")
        if not password or not hmac.compare_digest(expected, password.lower()):
            return AuthDecision(mp.BAD_CREDENTIALS, reason="wrong password")
        self._sessions[device_id] = _Session(device_id, "group_secret", scope_id=group.scope_id)
        return AuthDecision(mp.ACCEPTED, device_id=device_id)

    def _auth_group_cert(self, device_id, scope_id: str, password: bytes, cert_der) -> AuthDecision:
        with self._lock:
            group = self._groups.get(scope_id)
        if group is None or group.ca_cert is None:
            return AuthDecision(mp.BAD_CREDENTIALS, reason="unknown certificate registration group")
        if password or cert_der is None:
            return AuthDecision(mp.BAD_CREDENTIALS, reason="certificate group needs a client certificate only")
        try:
            cert = x509.load_der_x509_certificate(cert_der)
            cert.verify_directly_issued_by(group.ca_cert)
            cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        except Exception as exc:  # noqa: BLE001 - any parsing/verification failure is a refusal
            return AuthDecision(mp.BAD_CREDENTIALS, reason=f"certificate not issued by the group CA ({type(exc).__name__})")
        if not cns or cns[0].value != device_id:
            return AuthDecision(mp.BAD_CREDENTIALS, reason="certificate CN differs from the device id")
        self._sessions[device_id] = _Session(device_id, "group_cert", scope_id=scope_id,
                                             fingerprint=fingerprint_sha256(cert_der))
        return AuthDecision(mp.ACCEPTED, device_id=device_id)

    # ---- provisioning (core dispatcher thread) ---------------------------------------------------------
    def _on_bootstrap_up(self, device_id: str, info, payload: bytes) -> None:
        with self._lock:
            session = self._sessions.get(device_id)
        front = self.front
        if session is None or front is None or device_id not in front.connected():
            _logger.info("bootstrap request from %s outside a bootstrap connection ignored", device_id)
            return
        keyword = None
        if payload and payload.strip():
            try:
                body = codec.loads_object(payload)
                keyword = body.get("baseStrategyKeyword")
                keyword = keyword if isinstance(keyword, str) else None
            except ValueError:
                _logger.info("bootstrap request of %s is not a JSON object; no keyword", device_id)
        with self._lock:
            self.requests.append({"device_id": device_id, "kind": session.kind, "keyword": keyword,
                                  "time": time.time()})
        try:
            answer = self._provision(session, keyword)
        except Exception as exc:  # noqa: BLE001 - answer, never leave the device waiting
            _logger.exception("provisioning of %s failed", device_id)
            answer = {"errorCode": ERR_EXECUTION, "errorMsg": f"provisioning failed: {type(exc).__name__}"}
        if "address" in answer:
            with self._lock:
                tamper, self._tamper = self._tamper, None
            if tamper:
                answer.update(tamper)
        with self._lock:
            self.answers.append({"device_id": device_id, "answer": dict(answer), "time": time.time()})
        self.core.publish(topics.bootstrap_down(device_id), answer, qos=1)

    def _match_policy(self, keyword: Optional[str], name: str) -> Optional[Policy]:
        with self._lock:
            policies = sorted(self._policies.values(), key=lambda p: (-p.priority, p.created, p.policy_id))
        for p in policies:
            if p.keyword_source == "payload" and keyword is not None and p.keyword == keyword:
                return p
            if p.keyword_source == "device_name" and p.keyword in name:
                return p
        return None

    def _provision(self, session: _Session, keyword: Optional[str]) -> dict:
        device_id = session.device_id
        device_secret: Optional[str] = None
        with self._lock:
            dev = self._devices.get(device_id)
            group = self._groups.get(session.scope_id) if session.scope_id else None
        if session.kind == "device":
            if dev is None:
                return {"errorCode": ERR_EXECUTION, "errorMsg": "device no longer registered"}
            name, product_id, require = dev.name or device_id, dev.product_id, dev.require_policy
            own_config = dev.init_config
        else:
            if group is None:
                return {"errorCode": ERR_EXECUTION, "errorMsg": "registration group no longer exists"}
            # IoTDP names a group's device "{group name}{device id}"; policies match that name
            name = (group.name or group.scope_id) + device_id
            product_id, require, own_config = group.product_id, group.require_policy, group.init_config
        policy = self._match_policy(keyword, name)
        if policy is None and require:
            return {"errorCode": ERR_NO_POLICY, "errorMsg": "no matching provisioning strategy"}
        if policy is not None and policy.product_id:
            product_id = policy.product_id
        if session.fingerprint:  # certificate devices
            self._register(device_id, product_id, secret=None, fingerprint=session.fingerprint)
        else:
            if session.kind == "group_secret" or (dev is not None and dev.issue_secret):
                device_secret = secrets.token_hex(16)
                secret = device_secret
            else:
                secret = dev.secret
            self._register(device_id, product_id, secret=secret, fingerprint=None)
        if group is not None:
            with self._lock:
                if device_id not in group.devices:
                    group.devices.append(device_id)
        answer: Dict[str, Any] = {"address": self.iotda_address()}
        cfg = own_config if own_config is not None else (policy.init_config if policy is not None else None)
        if cfg is not None:
            answer["initConfig"] = cfg if isinstance(cfg, str) else codec.dumps(cfg)
        if device_secret is not None:
            answer["deviceSecret"] = device_secret
        return answer

    def _register(self, device_id: str, product_id: str, *, secret: Optional[str], fingerprint: Optional[str]) -> None:
        """Create or update the device in the IoTDA registry with the credentials it will use there."""
        existing = self.core.get_device(device_id)
        if fingerprint:
            fields = dict(secret=None, fingerprint=fingerprint, auth_type="CERTIFICATES")
        else:
            fields = dict(secret=secret, fingerprint=None, auth_type="SECRET")
        if existing is None:
            self.core.create_device(device_id, fields["secret"], product_id=product_id,
                                    fingerprint=fields["fingerprint"], auth_type=fields["auth_type"])
        else:
            self.core.update_device(device_id, **fields)
