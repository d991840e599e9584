"""``iotda-emulator ota-package``: put an upgrade package in a running emulator in one step.

    iotda-emulator ota-package --file fw.bin --version 2.0 [--type firmwarePackage|softwarePackage]
                               [--product-id P] [--url http://127.0.0.1:8080] [--app-key AK:SK]
                               [--ca-file CA.pem] [--project-id ID] [--bucket B] [--object-key K]
                               [--description TEXT] [--custom-info TEXT] [--source-version V ...]

What an application does on IoTDA (upload the file to OBS, then CreateOtaPackage referencing the object), done
against the emulator over HTTP: ``POST /emulator/objects/upload-url`` (emulator-only: the object store plays
OBS) gives a presigned PUT URL bound to the file's size and SHA-256; the file is PUT there; then
``POST /v5/iot/{project_id}/ota-upgrades/packages`` creates the package (signed with ``--app-key`` when the
emulator requires keys). Prints the CreateOtaPackage answer (JSON). Nothing here logs the presigned URL.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import ssl
import sys
import urllib.error
import urllib.request
from typing import Any, Dict, Optional, Tuple
from urllib.parse import urlsplit

from iotda_emulator.http import auth

DEFAULT_BUCKET = "ota-uploads"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``ota-package`` options."""
    parser.add_argument("--file", required=True, help="the package file")
    parser.add_argument("--version", required=True, dest="package_version", help="the package's version")
    parser.add_argument("--type", dest="package_type", default="firmwarePackage",
                        choices=("firmwarePackage", "softwarePackage"))
    parser.add_argument("--product-id", default="emu_product", help="product of the package (default emu_product)")
    parser.add_argument("--url", default="http://127.0.0.1:8080",
                        help="the emulator's HTTP(S) API address (default http://127.0.0.1:8080)")
    parser.add_argument("--ca-file", default=None, help="CA to trust for an https --url (the emulator's ca.pem)")
    parser.add_argument("--app-key", default=None, metavar="AK:SK",
                        help="sign the requests (needed when the emulator was started with --app-key)")
    parser.add_argument("--project-id", default="emulator", help="project id in the API path (any is accepted)")
    parser.add_argument("--bucket", default=DEFAULT_BUCKET, help=f"object store bucket (default {DEFAULT_BUCKET})")
    parser.add_argument("--object-key", default=None, help="object key (default {version}/{file name})")
    parser.add_argument("--description", default=None)
    parser.add_argument("--custom-info", default=None, help="custom_info pushed to devices with the upgrade")
    parser.add_argument("--source-version", action="append", default=[], dest="source_versions",
                        help="a version the package upgrades from (repeatable; support_source_versions)")


class ApiCallError(Exception):
    """An HTTP call to the emulator failed: ``status`` and IoTDA's error body in the message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Client:
    """Minimal HTTP client for the emulator's API: JSON calls, optionally SDK-HMAC-SHA256 signed."""

    def __init__(self, base_url: str, app_key: Optional[str], ca_file: Optional[str]) -> None:
        self.base = base_url.rstrip("/")
        self.keys: Optional[Tuple[str, str]] = None
        if app_key:
            ak, sep, sk = app_key.partition(":")
            if not sep or not ak or not sk:
                raise ValueError("--app-key is AK:SK")
            self.keys = (ak, sk)
        self.context = ssl.create_default_context(cafile=ca_file) if ca_file else None

    def call(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        data = json.dumps(body).encode("utf-8") if body is not None else b""
        headers = {"Content-Type": "application/json"}
        if self.keys:
            headers.update(self._sign(method, path, headers, data))
        return self.send(method, self.base + path, data, headers)

    def send(self, method: str, url: str, data: bytes, headers: Dict[str, str]) -> Dict[str, Any]:
        request = urllib.request.Request(url, data=data or None, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=120, context=self.context) as rsp:
                raw = rsp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:500]
            # the path only: a presigned URL's query is a credential
            raise ApiCallError(exc.code, f"{method} {urlsplit(url).path}: HTTP {exc.code} {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ApiCallError(0, f"{method} {urlsplit(url).path}: {getattr(exc, 'reason', exc)}") from None
        return json.loads(raw.decode("utf-8")) if raw.strip() else {}

    def _sign(self, method: str, path: str, headers: Dict[str, str], data: bytes) -> Dict[str, str]:
        """``X-Sdk-Date``, ``Host`` and ``Authorization`` as the official SDKs compute them (see :mod:`auth`)."""
        assert self.keys is not None
        ak, sk = self.keys
        date = _dt.datetime.now(_dt.timezone.utc).strftime(auth.DATE_FORMAT)
        host = urlsplit(self.base).netloc
        signed = dict(headers, **{"Host": host, auth.DATE_HEADER: date})
        names = sorted(k.lower() for k in signed)
        lower = {k.lower(): v for k, v in signed.items()}
        canonical = auth.canonical_request(method, path, "", lower, names, data)
        sig = auth.signature(sk, date, canonical)
        return {auth.DATE_HEADER: date,
                "Authorization": f"{auth.ALGORITHM} Access={ak}, SignedHeaders={';'.join(names)}, Signature={sig}"}


def upload_package(args: argparse.Namespace) -> Dict[str, Any]:
    """Upload ``args.file`` to the object store and create the package; returns CreateOtaPackage's answer."""
    with open(args.file, "rb") as fh:
        data = fh.read()
    file_name = os.path.basename(args.file)
    key = args.object_key or f"{args.package_version}/{file_name}"
    client = _Client(args.url, args.app_key, args.ca_file)
    scheme = urlsplit(args.url).scheme or "http"
    grant = client.call("POST", "/emulator/objects/upload-url",
                        {"bucket_name": args.bucket, "object_key": key, "size": len(data),
                         "sha256": hashlib.sha256(data).hexdigest(), "scheme": scheme})
    client.send("PUT", grant["url"], data, {"Content-Type": "application/octet-stream"})
    body: Dict[str, Any] = {"package_type": args.package_type, "product_id": args.product_id,
                            "version": args.package_version,
                            "file_location": {"obs_location": {"bucket_name": args.bucket, "object_key": key}}}
    for field, value in (("description", args.description), ("custom_info", args.custom_info),
                         ("support_source_versions", args.source_versions or None)):
        if value is not None:
            body[field] = value
    return client.call("POST", f"/v5/iot/{args.project_id}/ota-upgrades/packages", body)


def cmd_ota_package(args: argparse.Namespace) -> int:
    """The ``ota-package`` sub-command: prints the created package as JSON, exit status 1 on failure."""
    try:
        package = upload_package(args)
    except (OSError, ValueError, ApiCallError) as exc:
        print(f"iotda-emulator ota-package: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(package, indent=2, ensure_ascii=False))
    return 0
