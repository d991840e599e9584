"""Device CA certificates uploaded by the application (IoTDA's AddCertificate / CheckCertificate / ...).

IoTDA onboards X.509 devices whose certificates are issued by a CA the application uploaded and then
*verified*: AddCertificate answers a ``verify_code``; the application issues a verification certificate whose
subject CN is that code with the CA's private key and sends it with CheckCertificate (``action_id=verify``),
which proves it holds the key. Only a verified CA (``status`` true) lets devices connect ("true代表证书已通过验证，
可进行设备证书认证接入").

How the emulator applies that (choices where IoTDA is silent are in doc/emulator.md):

* The MQTTS listener's TLS context trusts the emulator's own device CA (``certs/device_ca.pem``, treated as
  pre-uploaded and verified) and every CA once it is verified (:meth:`DeviceCaRegistry.attach`). OpenSSL cannot
  forget a CA, so after DeleteCertificate the TLS handshake may still succeed: :meth:`DeviceCaRegistry.check`,
  called by the access front's authenticator on every certificate CONNECT, refuses (CONNACK 4) a device
  certificate that is not directly issued by the built-in CA or a CA verified and still registered.
* The device's registered fingerprint is then checked as before (``access_front.IotdaAuthenticator``).

CAs are kept in the data directory's sqlite database, so they survive a restart.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import ssl
import threading
import time
import uuid
from typing import Any, Dict, List, Optional

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

log = logging.getLogger(__name__)

#: IoTDA's cap on device CA certificates per account is not documented; the emulator keeps at most this many.
MAX_CERTIFICATES = 100

_SCHEMA = ("CREATE TABLE IF NOT EXISTS device_ca_certs (certificate_id TEXT PRIMARY KEY, content TEXT NOT NULL, "
           "verified INTEGER NOT NULL, verify_code TEXT NOT NULL, app_id TEXT, options TEXT NOT NULL, "
           "created REAL NOT NULL)")


class CaError(ValueError):
    """An invalid certificate or verification (the REST layer answers 400)."""


def load_pem_certificate(text: Any, what: str = "certificate") -> x509.Certificate:
    """One PEM certificate from ``text``; :class:`CaError` when it is not one."""
    if not isinstance(text, str) or "-----BEGIN CERTIFICATE-----" not in text:
        raise CaError(f"the {what} must be a PEM certificate (-----BEGIN CERTIFICATE-----).")
    try:
        return x509.load_pem_x509_certificate(text.encode("utf-8"))
    except ValueError as exc:
        raise CaError(f"the {what} is not a valid PEM certificate: {exc}") from None


def common_name(name: x509.Name) -> Optional[str]:
    """The first CN of a name, or None."""
    found = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = found[0].value if found else None
    return value if isinstance(value, str) else None


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when ``issuer``'s key signed ``cert`` and the names chain."""
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except (ValueError, TypeError, InvalidSignature):
        return False


class DeviceCaRegistry:
    """Uploaded device CA certificates (sqlite table ``device_ca_certs``) and the check the access front runs.

    ``db`` is the emulator's :class:`iotda_emulator.store.Store`; ``builtin_ca_file`` the emulator's own device
    CA (always trusted).
    """

    def __init__(self, db: Any, builtin_ca_file: Optional[str] = None) -> None:
        self.db = db
        self.db.execute(_SCHEMA)
        self._lock = threading.Lock()
        self._contexts: List[ssl.SSLContext] = []
        self._builtin: Optional[x509.Certificate] = None
        if builtin_ca_file:
            with open(builtin_ca_file, "rb") as fh:
                self._builtin = x509.load_pem_x509_certificate(fh.read())
        self._trusted: List[x509.Certificate] = []   # verified uploaded CAs, refreshed on every change
        self._refresh()

    # ---- the access front's side ------------------------------------------------------------------
    def attach(self, context: ssl.SSLContext) -> None:
        """Let ``context`` (a TLS server context asking for client certificates) trust every verified CA,
        now and as they are verified."""
        with self._lock:
            self._contexts.append(context)
            trusted = list(self._trusted)
        for cert in trusted:
            self._trust(context, cert)

    def check(self, cert_der: bytes) -> Optional[str]:
        """None when the device certificate ``cert_der`` is directly issued by the built-in device CA or by a
        verified, registered CA; otherwise the reason to refuse it."""
        try:
            cert = x509.load_der_x509_certificate(cert_der)
        except ValueError:
            return "unreadable client certificate"
        with self._lock:
            issuers = ([self._builtin] if self._builtin is not None else []) + list(self._trusted)
        for issuer in issuers:
            if cert.issuer == issuer.subject and _issued_by(cert, issuer):
                return None
        return "client certificate not issued by a verified device CA"

    # ---- the application's side ---------------------------------------------------------------------
    def add(self, content: str, app_id: Optional[str] = None) -> dict:
        """Register a CA certificate (PEM); returns the record (``verify_code`` included). CaError when invalid."""
        cert = load_pem_certificate(content, "CA certificate")
        if not _is_ca(cert):
            raise CaError("the certificate is not a CA certificate (basicConstraints CA:TRUE is required).")
        pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
        with self._lock:
            rows = self.db.query("SELECT certificate_id, content FROM device_ca_certs")
            if len(rows) >= MAX_CERTIFICATES:
                raise CaError(f"at most {MAX_CERTIFICATES} device CA certificates can be uploaded.")
            if any(r["content"] == pem for r in rows):
                raise CaError("this CA certificate is already uploaded.")
            certificate_id = uuid.uuid4().hex[:24]
            self.db.execute("INSERT INTO device_ca_certs(certificate_id, content, verified, verify_code, app_id, "
                            "options, created) VALUES (?,?,?,?,?,?,?)",
                            (certificate_id, pem, 0, uuid.uuid4().hex, app_id, "{}", time.time()))
        return self.get(certificate_id) or {}

    def get(self, certificate_id: str) -> Optional[dict]:
        """The record of one CA, or None."""
        rows = self.db.query("SELECT * FROM device_ca_certs WHERE certificate_id=?", (certificate_id,))
        return _record(rows[0]) if rows else None

    def list(self, app_id: Optional[str] = None) -> List[dict]:
        """Every CA, oldest first (of ``app_id`` when given)."""
        rows = self.db.query("SELECT * FROM device_ca_certs ORDER BY created, certificate_id")
        return [r for r in (_record(row) for row in rows) if not app_id or r["app_id"] == app_id]

    def update(self, certificate_id: str, options: Dict[str, Any]) -> Optional[dict]:
        """Merge ``options`` (provisioning and OCSP settings, stored as given) into the CA's; the record or None."""
        with self._lock:
            record = self.get(certificate_id)
            if record is None:
                return None
            merged = dict(record["options"], **options)
            self.db.execute("UPDATE device_ca_certs SET options=? WHERE certificate_id=?",
                            (json.dumps(merged), certificate_id))
        return self.get(certificate_id)

    def verify(self, certificate_id: str, verification_pem: str) -> Optional[dict]:
        """Check the verification certificate (subject CN = the CA's ``verify_code``, signed by the CA's key) and
        mark the CA verified; the record, None for an unknown CA, CaError when the proof does not hold."""
        proof = load_pem_certificate(verification_pem, "verification certificate")
        record = self.get(certificate_id)
        if record is None:
            return None
        ca = x509.load_pem_x509_certificate(record["content"].encode("ascii"))
        if common_name(proof.subject) != record["verify_code"]:
            raise CaError("the verification certificate's subject CN must be the CA's verify_code.")
        if not _issued_by(proof, ca):
            raise CaError("the verification certificate is not signed by this CA's private key.")
        now = _dt.datetime.now(_dt.timezone.utc)
        if not _valid_from(proof) <= now <= _valid_until(proof):
            raise CaError("the verification certificate is not valid now.")
        with self._lock:
            self.db.execute("UPDATE device_ca_certs SET verified=1 WHERE certificate_id=?", (certificate_id,))
        self._refresh()
        with self._lock:
            contexts = list(self._contexts)
        for context in contexts:
            self._trust(context, ca)
        log.info("device CA %s verified (%s)", certificate_id, common_name(ca.subject))
        return self.get(certificate_id)

    def delete(self, certificate_id: str) -> bool:
        """Forget a CA (devices it issued are refused from their next CONNECT); True when it existed."""
        with self._lock:
            cur = self.db.execute("DELETE FROM device_ca_certs WHERE certificate_id=?", (certificate_id,))
        self._refresh()
        return bool(cur.rowcount)

    # ---- internals ----------------------------------------------------------------------------------------
    def _refresh(self) -> None:
        rows = self.db.query("SELECT content FROM device_ca_certs WHERE verified=1")
        trusted = [x509.load_pem_x509_certificate(r["content"].encode("ascii")) for r in rows]
        with self._lock:
            self._trusted = trusted

    @staticmethod
    def _trust(context: ssl.SSLContext, cert: x509.Certificate) -> None:
        try:
            context.load_verify_locations(cadata=cert.public_bytes(serialization.Encoding.PEM).decode("ascii"))
        except ssl.SSLError as exc:   # e.g. already in the store on some OpenSSL versions
            log.debug("CA not added to the TLS store: %s", exc)


def _valid_from(cert: x509.Certificate) -> _dt.datetime:
    # ``*_utc`` since cryptography 42; the emulator supports 41, whose naive datetimes are UTC
    aware = getattr(cert, "not_valid_before_utc", None)
    return aware if aware is not None else cert.not_valid_before.replace(tzinfo=_dt.timezone.utc)


def _valid_until(cert: x509.Certificate) -> _dt.datetime:
    aware = getattr(cert, "not_valid_after_utc", None)
    return aware if aware is not None else cert.not_valid_after.replace(tzinfo=_dt.timezone.utc)


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _record(row: Any) -> dict:
    cert = x509.load_pem_x509_certificate(row["content"].encode("ascii"))
    owner = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return {"certificate_id": row["certificate_id"], "content": row["content"], "verified": bool(row["verified"]),
            "verify_code": row["verify_code"], "app_id": row["app_id"], "options": json.loads(row["options"]),
            "created": row["created"], "cn_name": common_name(cert.subject),
            "owner": owner[0].value if owner else common_name(cert.issuer),
            "not_before": _valid_from(cert).timestamp(), "not_after": _valid_until(cert).timestamp()}

