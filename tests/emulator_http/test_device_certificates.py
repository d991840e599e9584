"""Device CA certificates and ResetFingerprint through the official application SDK's models, with real TLS
client certificates (generated here with ``cryptography``, signed by a CA the test uploads) and a paho device:
a device whose CA is not uploaded and verified cannot connect; after CheckCertificate it can; ResetFingerprint
rotates its certificate (old refused, new accepted); DeleteCertificate stops its devices again."""
from __future__ import annotations

import datetime as _dt
import hashlib
import os
import queue
import ssl
import time
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkiotda.v5 import (AddCertificateRequest, AddDevice, AddDeviceRequest, AuthInfo,
                                    CheckCertificateRequest, CreateCertificateDTO, DeleteCertificateRequest,
                                    ListCertificatesRequest, ResetFingerprint, ResetFingerprintRequest,
                                    ShowCertificateRequest, ShowDeviceRequest, UpdateCertificateDTO,
                                    UpdateCertificateRequest, VerifyCertificateDTO)

from tests.emulator.helpers import RawDevice

PRODUCT = "ca_prod"
BAD_CREDENTIALS = "Bad user name or password"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ca-test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(cn: str, issuer_name: x509.Name, issuer_key, *, ca: bool, key=None):
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = _dt.datetime.now(_dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(issuer_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - _dt.timedelta(hours=1)).not_valid_after(now + _dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(issuer_key or key, hashes.SHA256()))
    return cert, key


class AppCa:
    """A CA of the application's own, and device certificates written to ``tmp_path``."""

    def __init__(self, cn: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert, _ = _cert(cn, _name(cn), self.key, ca=True, key=self.key)

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def proof(self, verify_code: str, key=None) -> str:
        """A verification certificate: subject CN = the verify code, signed by this CA's key (or ``key``)."""
        cert, _ = _cert(verify_code, self.cert.subject, key or self.key, ca=False)
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    def device_cert(self, device_id: str, directory) -> tuple:
        """(cert file, key file, SHA-256 fingerprint) of a client certificate for ``device_id``."""
        cert, key = _cert(device_id, self.cert.subject, self.key, ca=False)
        stem = os.path.join(str(directory), f"{device_id}-{cert.serial_number:x}")
        with open(stem + ".pem", "wb") as fh:
            fh.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(stem + ".key", "wb") as fh:
            fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
        return stem + ".pem", stem + ".key", hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


@pytest.fixture(autouse=True)
def product(emulator):
    if emulator.get_product(PRODUCT) is None:
        emulator.create_product(PRODUCT, "CA tests")


TLS_REFUSED = "TLS refused"


def _connect(emulator, device_id: str, cert_file: str, key_file: str):
    """(CONNACK reason code, device) or (TLS_REFUSED, None) when the server refused the client certificate: with
    TLS 1.3 the client learns that only after its side of the handshake, as the link closing without a CONNACK."""
    dev = RawDevice(emulator, device_id, tls=True, certfile=cert_file, keyfile=key_file)
    try:
        dev.c.connect(dev.host, dev.port, keepalive=dev.keepalive)
    except (ssl.SSLError, OSError):
        dev.close()
        return TLS_REFUSED, None
    dev.c.loop_start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            rc = dev.connack.get(timeout=0.05)
        except queue.Empty:
            if dev.disconnected.is_set():
                dev.close()
                return TLS_REFUSED, None
            continue
        if rc.is_failure:
            dev.close()
        return rc, dev
    dev.close()
    raise AssertionError("neither a CONNACK nor a closed link")


def _add_ca(app_client, ca: AppCa):
    return app_client.add_certificate(AddCertificateRequest(body=CreateCertificateDTO(content=ca.pem)))


def test_device_of_an_uploaded_and_verified_ca_connects_and_rotates(emulator, app_client, tmp_path):
    ca = AppCa("app-ca-" + uuid.uuid4().hex[:6])
    device_id = "cadev_" + uuid.uuid4().hex[:8]
    cert1, key1, fp1 = ca.device_cert(device_id, tmp_path)
    app_client.add_device(AddDeviceRequest(body=AddDevice(
        device_id=device_id, node_id=device_id, product_id=PRODUCT,
        auth_info=AuthInfo(auth_type="CERTIFICATES", fingerprint=fp1))))

    # not uploaded: the TLS handshake fails (no trusted issuer)
    assert _connect(emulator, device_id, cert1, key1)[0] == TLS_REFUSED

    added = _add_ca(app_client, ca)
    assert added.status is False and added.verify_code and added.cn_name == ca.cert.subject.get_attributes_for_oid(
        NameOID.COMMON_NAME)[0].value
    assert added.expiry_date and added.effective_date and added.create_date
    # uploaded but not verified: still refused
    assert _connect(emulator, device_id, cert1, key1)[0] == TLS_REFUSED

    # a proof with the wrong CN, or signed by another key, does not verify the CA
    for bad in (ca.proof("not-the-code"), ca.proof(added.verify_code, key=ec.generate_private_key(ec.SECP256R1()))):
        with pytest.raises(ClientRequestException) as err:
            app_client.check_certificate(CheckCertificateRequest(
                certificate_id=added.certificate_id, action_id="verify",
                body=VerifyCertificateDTO(verify_content=bad)))
        assert err.value.status_code == 400
    assert app_client.show_certificate(ShowCertificateRequest(certificate_id=added.certificate_id)).status is False

    app_client.check_certificate(CheckCertificateRequest(
        certificate_id=added.certificate_id, action_id="verify",
        body=VerifyCertificateDTO(verify_content=ca.proof(added.verify_code))))
    shown = app_client.show_certificate(ShowCertificateRequest(certificate_id=added.certificate_id))
    assert shown.status is True and shown.content.strip() == ca.pem.strip()

    rc, dev = _connect(emulator, device_id, cert1, key1)
    assert rc == 0, rc
    assert emulator.wait_online(device_id, timeout=10)

    # rotation: the new fingerprint works, the old one stops working; force_disconnect drops the current link
    cert2, key2, fp2 = ca.device_cert(device_id, tmp_path)
    rsp = app_client.reset_fingerprint(ResetFingerprintRequest(
        device_id=device_id, body=ResetFingerprint(fingerprint=fp2.upper(), force_disconnect=True)))
    assert rsp.device_id == device_id and rsp.fingerprint == fp2 and rsp.fingerprint_type == "PRIMARY"
    assert dev.disconnected.wait(10)
    dev.close()
    assert emulator.wait_offline(device_id, timeout=10)
    rc, _ = _connect(emulator, device_id, cert1, key1)
    assert rc == BAD_CREDENTIALS
    rc, dev2 = _connect(emulator, device_id, cert2, key2)
    assert rc == 0, rc
    dev2.close()

    # no fingerprint: cleared, and the next certificate connection binds its own
    cert3, key3, fp3 = ca.device_cert(device_id, tmp_path)
    rsp = app_client.reset_fingerprint(ResetFingerprintRequest(device_id=device_id, body=ResetFingerprint()))
    assert rsp.fingerprint is None
    rc, dev3 = _connect(emulator, device_id, cert3, key3)
    assert rc == 0, rc
    dev3.close()
    shown_dev = app_client.show_device(ShowDeviceRequest(device_id=device_id))
    assert shown_dev.auth_info.fingerprint == fp3

    # deleting the CA stops its devices at CONNECT (CONNACK 4), whatever the TLS store still holds
    app_client.delete_certificate(DeleteCertificateRequest(certificate_id=added.certificate_id))
    rc, _ = _connect(emulator, device_id, cert3, key3)
    assert rc == BAD_CREDENTIALS, rc
    with pytest.raises(ClientRequestException) as err:
        app_client.show_certificate(ShowCertificateRequest(certificate_id=added.certificate_id))
    assert err.value.status_code == 404
    emulator.delete_device(device_id)


def test_list_update_and_refusals(app_client):
    ca1, ca2 = AppCa("list-ca-1-" + uuid.uuid4().hex[:4]), AppCa("list-ca-2-" + uuid.uuid4().hex[:4])
    a, b = _add_ca(app_client, ca1), _add_ca(app_client, ca2)
    listed = app_client.list_certificates(ListCertificatesRequest(limit=50))
    ids = [c.certificate_id for c in listed.certificates]
    assert a.certificate_id in ids and b.certificate_id in ids and listed.page.count >= 2
    first = app_client.list_certificates(ListCertificatesRequest(limit=1))
    assert len(first.certificates) == 1
    after = app_client.list_certificates(ListCertificatesRequest(limit=50, marker=first.page.marker))
    assert first.certificates[0].certificate_id not in [c.certificate_id for c in after.certificates]

    updated = app_client.update_certificate(UpdateCertificateRequest(
        certificate_id=a.certificate_id, body=UpdateCertificateDTO(provision_enable=True, template_id="tmpl_1")))
    assert updated.provision_enable is True and updated.template_id == "tmpl_1" and updated.status is False

    # the same CA twice, a leaf certificate, garbage: 400
    leaf, _ = _cert("leaf", ca1.cert.subject, ca1.key, ca=False)
    for content in (ca1.pem, leaf.public_bytes(serialization.Encoding.PEM).decode(), "not a certificate"):
        with pytest.raises(ClientRequestException) as err:
            app_client.add_certificate(AddCertificateRequest(body=CreateCertificateDTO(content=content)))
        assert err.value.status_code == 400 and err.value.error_code == "IOTDA.000006"
    with pytest.raises(ClientRequestException) as err:
        app_client.check_certificate(CheckCertificateRequest(
            certificate_id=a.certificate_id, action_id="revoke",
            body=VerifyCertificateDTO(verify_content=ca1.proof(a.verify_code))))
    assert err.value.status_code == 400
    for cid in (a.certificate_id, b.certificate_id):
        app_client.delete_certificate(DeleteCertificateRequest(certificate_id=cid))
    with pytest.raises(ClientRequestException) as err:
        app_client.delete_certificate(DeleteCertificateRequest(certificate_id=a.certificate_id))
    assert err.value.status_code == 404


def test_reset_fingerprint_refusals(emulator, app_client, device_record):
    for body in (ResetFingerprint(fingerprint="xyz"), ResetFingerprint(fingerprint_type="SECONDARY")):
        with pytest.raises(ClientRequestException) as err:
            app_client.reset_fingerprint(ResetFingerprintRequest(device_id=device_record["device_id"], body=body))
        assert err.value.status_code == 400
    # a secret device has no fingerprint to reset
    with pytest.raises(ClientRequestException) as err:
        app_client.reset_fingerprint(ResetFingerprintRequest(device_id=device_record["device_id"],
                                                             body=ResetFingerprint()))
    assert err.value.status_code == 400
    with pytest.raises(ClientRequestException) as err:
        app_client.reset_fingerprint(ResetFingerprintRequest(device_id="no_such_device", body=ResetFingerprint()))
    assert err.value.status_code == 404 and err.value.error_code == "IOTDA.014000"
