"""What a device presents when it connects: MQTT client id, password and TLS context (``doc/protocol.md`` §1).

Pure functions of the ``ConnectAuthInfo`` and the UTC hour of the attempt: each attempt computes them afresh,
because client id and password both carry that hour.
"""
from __future__ import annotations

import base64
import binascii
import ssl
from typing import Optional, Union

from iot_device_sdk_python.client.connect_auth_info import ConnectAuthInfo
from iot_device_sdk_python.utils import iot_util

#: third field of every client id: "0" = device connects with its own id
CONNECT_TYPE = "0"


def client_id(auth: ConnectAuthInfo, timestamp: str, connect_type: str = CONNECT_TYPE) -> str:
    """The MQTT client id for an attempt made in hour ``timestamp`` (``YYYYMMDDHH``)."""
    if auth.bs_mode == ConnectAuthInfo.BS_MODE_BOOTSTRAP_WITH_SCOPEID:
        if auth.auth_type == ConnectAuthInfo.X509_AUTH:
            return f"{auth.id}_{connect_type}_{auth.scope_id}"
        return f"{auth.id}_{connect_type}_{auth.scope_id}_{auth.check_timestamp}_{timestamp}"
    return f"{auth.id}_{connect_type}_{auth.check_timestamp}_{timestamp}"


def password(auth: ConnectAuthInfo, timestamp: str) -> Optional[str]:
    """HMAC-SHA256 password keyed by the hour (None for X.509). Raises ``ValueError`` for a registration-group
    secret that is not base64 (scope-id bootstrap)."""
    if auth.auth_type == ConnectAuthInfo.X509_AUTH:
        return None
    secret = auth.secret
    if secret is None:  # DeviceClient.check_connect_auth_info rejects it first
        raise ValueError("secret: required for secret authentication")
    if auth.bs_mode == ConnectAuthInfo.BS_MODE_BOOTSTRAP_WITH_SCOPEID:
        try:
            group_secret = base64.b64decode(secret, validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise ValueError("secret: the registration-group secret is not valid base64") from None
        secret = iot_util.sha256_mac_salt(group_secret, auth.id or "")
    return iot_util.sha256_mac(secret, timestamp)


def ca_file(auth: ConnectAuthInfo) -> Optional[str]:
    """The CA file that verifies the server: the provisioning server's while bootstrapping."""
    if auth.bs_mode in (ConnectAuthInfo.BS_MODE_STANDARD_BOOTSTRAP, ConnectAuthInfo.BS_MODE_BOOTSTRAP_WITH_SCOPEID):
        path: Optional[str] = auth.bs_cert_path or auth.iot_cert_path
    else:
        path = auth.iot_cert_path
    return path


def ssl_context(ca_certs: Optional[str], cert_file: Optional[str], keyfile: Optional[str],
                key_password: Union[str, bytes, None] = None) -> ssl.SSLContext:
    """An SSLContext that verifies chain and host name, TLS 1.2+, with an optional client certificate."""
    ctx = ssl.create_default_context(cafile=ca_certs) if ca_certs else ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file:
        ctx.load_cert_chain(cert_file, keyfile, password=key_password)
    return ctx

