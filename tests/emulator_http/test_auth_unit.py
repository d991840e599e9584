"""SDK-HMAC-SHA256 verification checked against the official signer (huaweicloudsdkcore), no network."""
from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from tornado.httputil import HTTPHeaders

from iotda_emulator.http import auth

KEYS = {"AK-1": "secret-key-1"}


def signed(method="POST", path="/v5/iot/p1/devices/dev%201/commands", query=None, body=b'{"paras":{"a":1}}',
           ak="AK-1", sk="secret-key-1", extra_headers=None):
    headers = {"Content-Type": "application/json", "User-Agent": "huaweicloud-usdk-python/3.0"}
    headers.update(extra_headers or {})
    req = SdkRequest(method=method, schema="http", host="127.0.0.1:8080", resource_path=path,
                     query_params=list(query or []), header_params=headers, body=body)
    Signer(BasicCredentials(ak, sk)).sign(req)
    parts = urlsplit(req.uri)
    http_headers = HTTPHeaders()
    for k, v in req.header_params.items():
        http_headers[k] = v
    return req.method, parts.path, parts.query, http_headers, body or b""


def test_signature_made_by_the_official_signer_verifies():
    method, path, query, headers, body = signed(query=[("service_id", "a b/ü"), ("limit", 10), ("flag", True)])
    assert auth.verify_request(method, path, query, headers, body, KEYS) == "AK-1"


def test_get_without_body_verifies():
    method, path, query, headers, body = signed(method="GET", body=None, query=[("marker", "x~y")])
    assert auth.verify_request(method, path, query, headers, body, KEYS) == "AK-1"


def test_wrong_secret_key_is_refused():
    method, path, query, headers, body = signed(sk="not-the-key")
    with pytest.raises(auth.AuthError, match="signature mismatch"):
        auth.verify_request(method, path, query, headers, body, KEYS)


def test_tampered_body_path_or_query_is_refused():
    method, path, query, headers, body = signed(query=[("limit", 10)])
    with pytest.raises(auth.AuthError):
        auth.verify_request(method, path, query, headers, body + b" ", KEYS)
    with pytest.raises(auth.AuthError):
        auth.verify_request(method, path + "x", query, headers, body, KEYS)
    with pytest.raises(auth.AuthError):
        auth.verify_request(method, path, "limit=11", headers, body, KEYS)
    with pytest.raises(auth.AuthError):
        auth.verify_request("PUT", path, query, headers, body, KEYS)


def test_unknown_access_key_and_missing_header_are_refused():
    method, path, query, headers, body = signed(ak="AK-2")
    with pytest.raises(auth.AuthError, match="unknown access key"):
        auth.verify_request(method, path, query, headers, body, KEYS)
    del headers["Authorization"]
    with pytest.raises(auth.AuthError, match="missing"):
        auth.verify_request(method, path, query, headers, body, KEYS)


def test_stale_date_is_refused_and_secret_never_in_message():
    old = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)).strftime("%Y%m%dT%H%M%SZ")
    method, path, query, headers, body = signed(extra_headers={"X-Sdk-Date": old})
    with pytest.raises(auth.AuthError) as info:
        auth.verify_request(method, path, query, headers, body, KEYS)
    assert "clock skew" in str(info.value)
    assert "secret-key-1" not in str(info.value)
    # the same request is fine when "now" is the signing time
    now = dt.datetime.strptime(old, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
    assert auth.verify_request(method, path, query, headers, body, KEYS, now=now) == "AK-1"


def test_no_keys_configured_accepts_anything():
    assert auth.verify_request("GET", "/x", "", HTTPHeaders(), b"", {}) is None


@pytest.mark.parametrize("value", ["", "Bearer abc", "SDK-HMAC-SHA256 Access=a", "SDK-HMAC-SM3 Access=a, "
                                   "SignedHeaders=host, Signature=00"])
def test_malformed_authorization_is_refused(value):
    with pytest.raises(auth.AuthError):
        auth.parse_authorization(value)


def test_parse_app_keys():
    assert auth.parse_app_keys(["a:b", "c:d:e"]) == {"a": "b", "c": "d:e"}
    with pytest.raises(ValueError):
        auth.parse_app_keys(["nocolon"])
