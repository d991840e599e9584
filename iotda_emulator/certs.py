"""Certificates of the emulator: a server CA + server cert, and a device CA that signs device certs.

Everything is generated with ``cryptography`` into the data directory at start-up. The server cert
covers ``DNS:localhost`` and ``IP:127.0.0.1`` so TLS clients verify the hostname either way.
"""
from __future__ import annotations

import datetime as _dt
import ipaddress
import os
import ssl
from dataclasses import dataclass
from typing import Optional, Tuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


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

    @classmethod
    def create(cls, directory: str) -> "CertificateAuthority":
        """Generate (or reuse, when present) every file in ``directory``."""
        os.makedirs(directory, exist_ok=True)
        p = lambda name: os.path.join(directory, name)  # noqa: E731
        self = cls(directory, p("ca.pem"), p("server.pem"), p("server.key"), p("device_ca.pem"),
                   p("device_ca.key"))
        if all(os.path.exists(f) for f in (self.ca_file, self.server_cert_file, self.server_key_file,
                                           self.device_ca_file, self.device_ca_key_file)):
            return self
        ca_cert, ca_key = _ca("iotda-emulator root CA")
        server_cert, server_key = _leaf(
            "localhost", ca_cert, ca_key, server=True,
            san=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        dev_ca_cert, dev_ca_key = _ca("iotda-emulator device CA")
        _write(self.ca_file, _cert_pem(ca_cert))
        _write(self.server_cert_file, _cert_pem(server_cert) + _cert_pem(ca_cert))
        _write(self.server_key_file, _key_pem(server_key))
        _write(self.device_ca_file, _cert_pem(dev_ca_cert))
        _write(self.device_ca_key_file, _key_pem(dev_ca_key))
        for f in (self.server_key_file, self.device_ca_key_file):
            os.chmod(f, 0o600)
        return self

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
