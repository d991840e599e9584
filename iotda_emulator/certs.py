"""Certificates of the emulator: a server CA + server cert, and a device CA that signs device certs.

Everything is generated with ``cryptography`` into the data directory at start-up. The server cert
covers ``DNS:localhost`` and ``IP:127.0.0.1`` plus every name the emulator is reached by (``--host``, the
advertised host, the bootstrap host: see :func:`server_names`), so TLS clients verify the host name whichever
they use. The CA is kept across runs; the server certificate is issued again when a name is missing.
"""
from __future__ import annotations

import datetime as _dt
import ipaddress
import os
import socket
import ssl
from dataclasses import dataclass
from typing import Iterable, List, Optional, Tuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


#: Listen addresses meaning "every interface": never advertised, never put in a certificate.
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]", "*"})


def is_wildcard(host: Optional[str]) -> bool:
    """True for a listen address that means every interface (``0.0.0.0``, ``::``)."""
    return (host or "").strip() in WILDCARD_HOSTS


def advertised_host(host: str, advertise: Optional[str] = None) -> str:
    """The name clients are told to use for an emulator listening on ``host``.

    ``advertise`` when given; ``host`` itself unless it is a wildcard; for a wildcard the machine's host name
    when it resolves here (reachable from other machines that resolve it too), else ``127.0.0.1``.
    """
    if advertise:
        return advertise
    if not is_wildcard(host):
        return host
    name = socket.gethostname()
    try:
        if name and socket.getaddrinfo(name, None):
            return name
    except (socket.gaierror, UnicodeError):
        pass
    return "127.0.0.1"


def server_names(*hosts: Optional[str]) -> List[str]:
    """The names the server certificate must cover: localhost, 127.0.0.1 and every non-wildcard ``hosts``."""
    names: List[str] = ["localhost", "127.0.0.1"]
    for h in hosts:
        h = (h or "").strip().strip("[]")
        if h and not is_wildcard(h) and h.lower() not in (n.lower() for n in names):
            names.append(h)
    return names


def _san_entry(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def cert_names(cert: x509.Certificate) -> List[str]:
    """DNS names and IP addresses (as text) in a certificate's subjectAltName."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [n.lower() for n in san.get_values_for_type(x509.DNSName)] + \
        [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]


def _covers(cert: x509.Certificate, names: Iterable[str]) -> bool:
    have = set(cert_names(cert))
    for name in names:
        try:
            key = str(ipaddress.ip_address(name))
        except ValueError:
            key = name.lower()
        if key not in have:
            return False
    return True


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "iotda-emulator"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _validity(builder: x509.CertificateBuilder, days: int) -> x509.CertificateBuilder:
    now = _dt.datetime.now(_dt.timezone.utc)
    return builder.not_valid_before(now - _dt.timedelta(hours=1)).not_valid_after(now + _dt.timedelta(days=days))


def _ca(cn: str) -> Tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
         .public_key(key.public_key()).serial_number(x509.random_serial_number()))
    b = _validity(b, 3650)
    b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    b = b.add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                      content_commitment=False, key_encipherment=False,
                                      data_encipherment=False, key_agreement=False,
                                      encipher_only=False, decipher_only=False), critical=True)
    b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    return b.sign(key, hashes.SHA256()), key


def _leaf(cn: str, ca_cert: x509.Certificate, ca_key, *, server: bool,
          san: Optional[list] = None) -> Tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca_cert.subject)
         .public_key(key.public_key()).serial_number(x509.random_serial_number()))
    b = _validity(b, 825)
    b = b.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    b = b.add_extension(x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    if san:
        b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return b.sign(ca_key, hashes.SHA256()), key


def _write(path: str, data: bytes) -> str:
    with open(path, "wb") as fh:
        fh.write(data)
    return path


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key, password: Optional[str] = None) -> bytes:
    enc = (serialization.BestAvailableEncryption(password.encode("utf-8")) if password
           else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def fingerprint_sha256(cert_der: bytes) -> str:
    """Lowercase hex SHA-256 of a DER certificate (IoTDA's 64-hex fingerprint)."""
    digest = hashes.Hash(hashes.SHA256())
    digest.update(cert_der)
    return digest.finalize().hex()


def fingerprint_sha1(cert_der: bytes) -> str:
    """Lowercase hex SHA-1 of a DER certificate (IoTDA's 40-hex fingerprint form)."""
    digest = hashes.Hash(hashes.SHA1())  # noqa: S303 - IoTDA accepts SHA-1 fingerprints
    digest.update(cert_der)
    return digest.finalize().hex()


def normalize_fingerprint(text: Optional[str]) -> Optional[str]:
    """Lowercase hex without ``:`` or spaces; None stays None."""
    if text is None:
        return None
    return text.replace(":", "").replace(" ", "").strip().lower() or None


@dataclass
class CertificateAuthority:
    """All certificates of one emulator data dir and a way to issue device certificates."""

    directory: str
    ca_file: str            # trust anchor for the emulator's servers (MQTTS, HTTPS)
    server_cert_file: str
    server_key_file: str
    device_ca_file: str     # signs device client certificates (the "uploaded device CA")
    device_ca_key_file: str
    ca_key_file: str = ""   # kept so the server certificate can be re-issued for new names

    @classmethod
    def create(cls, directory: str, names: Optional[Iterable[str]] = None) -> "CertificateAuthority":
        """Generate (or reuse, when present) every file in ``directory``.

        ``names`` (default :func:`server_names` ``()``: localhost and 127.0.0.1) must all be in the server
        certificate's subjectAltName (IP entries for addresses, DNS entries otherwise); an existing server
        certificate that misses one is issued again by the same CA, so clients keep trusting ``ca.pem``.
        """
        wanted = server_names(*(names or ()))
        os.makedirs(directory, exist_ok=True)
        p = lambda name: os.path.join(directory, name)  # noqa: E731
        self = cls(directory, p("ca.pem"), p("server.pem"), p("server.key"), p("device_ca.pem"),
                   p("device_ca.key"), p("ca.key"))
        if all(os.path.exists(f) for f in (self.ca_file, self.server_cert_file, self.server_key_file,
                                           self.device_ca_file, self.device_ca_key_file)):
            if _covers(self.server_certificate(), wanted):
                return self
            if os.path.exists(self.ca_key_file):
                self._issue_server_cert(wanted)
                return self
            # a data dir from before the CA key was kept: start over with a new CA
        ca_cert, ca_key = _ca("iotda-emulator root CA")
        dev_ca_cert, dev_ca_key = _ca("iotda-emulator device CA")
        _write(self.ca_file, _cert_pem(ca_cert))
        _write(self.ca_key_file, _key_pem(ca_key))
        _write(self.device_ca_file, _cert_pem(dev_ca_cert))
        _write(self.device_ca_key_file, _key_pem(dev_ca_key))
        for f in (self.ca_key_file, self.device_ca_key_file):
            os.chmod(f, 0o600)
        self._issue_server_cert(wanted)
        return self

    def server_certificate(self) -> x509.Certificate:
        """The server certificate (the first PEM block of ``server_cert_file``)."""
        with open(self.server_cert_file, "rb") as fh:
            return x509.load_pem_x509_certificate(fh.read())

    def _issue_server_cert(self, names: List[str]) -> None:
        with open(self.ca_file, "rb") as fh:
            ca_cert = x509.load_pem_x509_certificate(fh.read())
        with open(self.ca_key_file, "rb") as fh:
            ca_key = serialization.load_pem_private_key(fh.read(), None)
        server_cert, server_key = _leaf(names[0], ca_cert, ca_key, server=True,
                                        san=[_san_entry(n) for n in names])
        # key first, then the certificate: a reader never pairs the new certificate with the old key for long
        _write(self.server_key_file, _key_pem(server_key))
        os.chmod(self.server_key_file, 0o600)
        _write(self.server_cert_file, _cert_pem(server_cert) + _cert_pem(ca_cert))

    def server_context(self, request_client_cert: bool = True) -> ssl.SSLContext:
        """TLS 1.2+ server context; with ``request_client_cert`` a client cert is asked for, not required."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.server_cert_file, self.server_key_file)
        if request_client_cert:
            ctx.verify_mode = ssl.CERT_OPTIONAL
            ctx.load_verify_locations(self.device_ca_file)
        return ctx

    def issue_device_cert(self, device_id: str, password: Optional[str] = None,
                          directory: Optional[str] = None) -> Tuple[str, str, str]:
        """Issue a client certificate for ``device_id`` signed by the device CA.

        Returns ``(cert_pem_path, key_pem_path, sha256_fingerprint_hex)``; the key is encrypted with
        ``password`` when one is given.
        """
        with open(self.device_ca_file, "rb") as fh:
            ca_cert = x509.load_pem_x509_certificate(fh.read())
        with open(self.device_ca_key_file, "rb") as fh:
            ca_key = serialization.load_pem_private_key(fh.read(), None)
        cert, key = _leaf(device_id, ca_cert, ca_key, server=False)
        out = directory or os.path.join(self.directory, "devices")
        os.makedirs(out, exist_ok=True)
        stem = os.path.join(out, f"{device_id}-{cert.serial_number:x}"[:200])
        cert_path = _write(stem + ".pem", _cert_pem(cert))
        key_path = _write(stem + ".key", _key_pem(key, password))
        os.chmod(key_path, 0o600)
        return cert_path, key_path, fingerprint_sha256(cert.public_bytes(serialization.Encoding.DER))
