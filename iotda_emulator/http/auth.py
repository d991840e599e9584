"""Verification of the ``SDK-HMAC-SHA256`` request signature used by Huawei Cloud application SDKs.

The official SDKs (``huaweicloudsdkcore`` ``BasicCredentials(ak, sk)``) sign each request as follows
(the same scheme as Huawei's API gateway "AK/SK signing"):

* canonical request = ``METHOD \\n canonical URI \\n canonical query \\n canonical headers \\n
  signed header names \\n hex(SHA-256(body))``, where the canonical URI is the percent-decoded path
  re-encoded segment by segment (RFC 3986 unreserved characters and ``~`` kept) with a trailing ``/``;
  the canonical query is the ``key=value`` pairs sorted and encoded the same way, joined by ``&``;
  the canonical headers are ``name:value`` (lower-case name, trimmed value) for every signed header,
  each followed by a newline; the body hash is hex(SHA-256) of the body (of the empty string for an empty
  body). The client-side signer uses ``X-Sdk-Content-Sha256`` instead when present (``UNSIGNED-PAYLOAD``
  for non-JSON content); that header is not signed, so the server hashes the body it received (except
  for ``multipart/form-data`` uploads signed as ``UNSIGNED-PAYLOAD``, see :func:`canonical_request`);
* string to sign = ``SDK-HMAC-SHA256 \\n X-Sdk-Date \\n hex(SHA-256(canonical request))``;
* signature = ``hex(HMAC-SHA256(SK, string to sign))``;
* header ``Authorization: SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b;c, Signature=hex``.

This module re-computes that signature on the server side. It knows nothing about tornado, so it can be
unit-tested with plain values.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Sequence, Tuple
from urllib.parse import parse_qsl, quote, unquote

ALGORITHM = "SDK-HMAC-SHA256"
DATE_HEADER = "X-Sdk-Date"
CONTENT_HASH_HEADER = "X-Sdk-Content-Sha256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
#: what the SDK puts in X-Sdk-Content-Sha256 (and signs in place of the body hash) for non-JSON bodies
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
#: How far ``X-Sdk-Date`` may be from the emulator's clock (the API gateway allows 15 minutes).
DEFAULT_CLOCK_SKEW = _dt.timedelta(minutes=15)

_AUTH_RE = re.compile(
    r"^\s*(?P<alg>[A-Za-z0-9-]+)\s+Access=(?P<ak>[^,\s]+)\s*,\s*SignedHeaders=(?P<sh>[^,\s]+)\s*,"
    r"\s*Signature=(?P<sig>[0-9a-fA-F]+)\s*$")


class AuthError(Exception):
    """The request's signature is missing, malformed, stale or wrong (the message says which)."""


@dataclass(frozen=True)
class ParsedAuthorization:
    """The three parts of an ``SDK-HMAC-SHA256`` Authorization header."""

    access_key: str
    signed_headers: Tuple[str, ...]
    signature: str


def parse_authorization(value: Optional[str]) -> ParsedAuthorization:
    """Split an ``Authorization`` header value; raises :class:`AuthError` when it is not our scheme."""
    if not value:
        raise AuthError("missing Authorization header")
    match = _AUTH_RE.match(value)
    if not match:
        raise AuthError("malformed Authorization header")
    if match.group("alg") != ALGORITHM:
        raise AuthError(f"unsupported signing algorithm {match.group('alg')!r} (only {ALGORITHM})")
    signed = tuple(h for h in match.group("sh").lower().split(";") if h)
    if not signed:
        raise AuthError("no signed headers")
    return ParsedAuthorization(match.group("ak"), signed, match.group("sig").lower())


def _encode(text: str) -> str:
    return quote(text, safe="~")


def canonical_uri(raw_path: str) -> str:
    """The path as the signer normalises it: decoded, re-encoded per segment, ending with ``/``."""
    path = "/".join(_encode(part) for part in unquote(raw_path).split("/"))
    return path if path.endswith("/") else path + "/"


def canonical_query(raw_query: str) -> str:
    """Sorted, re-encoded ``key=value`` pairs of a raw query string."""
    pairs = sorted(parse_qsl(raw_query, keep_blank_values=True))
    return "&".join(f"{_encode(k)}={_encode(v)}" for k, v in pairs)


def _header_value(headers: Mapping[str, str], name: str) -> Optional[str]:
    value = headers.get(name)
    if value is None:
        return None
    # tornado decodes header bytes as latin-1; the signer hashed the UTF-8 text.
    try:
        value = value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    return value.strip()


def canonical_request(method: str, raw_path: str, raw_query: str, headers: Mapping[str, str],
                      signed_headers: Sequence[str], body: bytes) -> str:
    """Build the canonical request string exactly as the client-side signer does."""
    lines = []
    for name in signed_headers:
        value = _header_value(headers, name)
        if value is None:
            raise AuthError(f"signed header {name!r} is missing from the request")
        lines.append(f"{name}:{value}")
    # The hash is that of the body received: X-Sdk-Content-Sha256 is not itself signed, so trusting it would
    # let a captured request be replayed with another body. The one exception is a multipart/form-data file
    # upload (UploadBatchTaskFile): the official SDK signs it as UNSIGNED-PAYLOAD (it never hashes a streamed
    # multipart body), as APIG accepts; any other UNSIGNED-PAYLOAD request fails to verify.
    body_hash = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
    claimed = _header_value(headers, CONTENT_HASH_HEADER)
    media = (_header_value(headers, "Content-Type") or "").split(";", 1)[0].strip().lower()
    if body and claimed == UNSIGNED_PAYLOAD and media == "multipart/form-data":
        body_hash = UNSIGNED_PAYLOAD
    elif body and claimed is not None and claimed.lower() != body_hash:
        raise AuthError(f"{CONTENT_HASH_HEADER} does not match the body received (unsigned payloads are refused)")
    return "\n".join([method.upper(), canonical_uri(raw_path), canonical_query(raw_query),
                      "\n".join(lines) + "\n", ";".join(signed_headers), body_hash])


def signature(secret_key: str, sdk_date: str, canonical: str) -> str:
    """Hex HMAC-SHA256 over the string to sign built from ``canonical``."""
    string_to_sign = "\n".join([ALGORITHM, sdk_date, hashlib.sha256(canonical.encode("utf-8")).hexdigest()])
    return hmac.new(secret_key.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def verify_request(method: str, raw_path: str, raw_query: str, headers: Mapping[str, str], body: bytes,
                   app_keys: Mapping[str, str], *, now: Optional[_dt.datetime] = None,
                   clock_skew: _dt.timedelta = DEFAULT_CLOCK_SKEW) -> Optional[str]:
    """Check one request against the configured application keys.

    ``headers`` must be a case-insensitive mapping (tornado's ``HTTPHeaders`` is). With no keys configured
    every request is accepted and ``None`` is returned. Otherwise returns the access key that signed the
    request, or raises :class:`AuthError` saying why it is refused. Secret keys never appear in messages.
    """
    if not app_keys:
        return None
    parsed = parse_authorization(headers.get("Authorization"))
    secret_key = app_keys.get(parsed.access_key)
    if secret_key is None:
        raise AuthError("unknown access key")
    if "x-sdk-date" not in parsed.signed_headers:
        raise AuthError(f"{DATE_HEADER} must be signed")
    sdk_date = _header_value(headers, DATE_HEADER) or ""
    try:
        signed_at = _dt.datetime.strptime(sdk_date, DATE_FORMAT).replace(tzinfo=_dt.timezone.utc)
    except ValueError:
        raise AuthError(f"malformed {DATE_HEADER} header") from None
    now = now or _dt.datetime.now(_dt.timezone.utc)
    if abs(now - signed_at) > clock_skew:
        raise AuthError(f"{DATE_HEADER} is outside the allowed clock skew")
    expected = signature(secret_key, sdk_date,
                         canonical_request(method, raw_path, raw_query, headers, parsed.signed_headers, body))
    if not hmac.compare_digest(expected, parsed.signature):
        raise AuthError("signature mismatch")
    return parsed.access_key


def parse_app_keys(items: Iterable[str]) -> dict:
    """Turn ``AK:SK`` strings (command line form) into ``{ak: sk}``; raises ``ValueError`` on bad items."""
    keys = {}
    for item in items:
        ak, sep, sk = item.partition(":")
        if not sep or not ak or not sk:
            raise ValueError("application keys are given as AK:SK")
        keys[ak] = sk
    return keys
