"""Device CA certificates and device fingerprints over IoTDA's v5 API.

* ``POST/GET /v5/iot/{project_id}/certificates`` (AddCertificate, ListCertificates),
  ``GET/PUT/DELETE .../certificates/{certificate_id}`` (ShowCertificate, UpdateCertificate, DeleteCertificate),
  ``POST .../certificates/{certificate_id}/action?action_id=verify`` (CheckCertificate) — the CA store and the
  rules devices are held to are in :mod:`iotda_emulator.device_ca`.
* ``POST .../devices/{device_id}/reset-fingerprint`` (ResetFingerprint).
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional

from iotda_emulator import errors
from iotda_emulator.device_ca import CaError
from iotda_emulator.http.rest import (DEVICE, PREFIX, ApiError, BaseApiHandler, _emulator_error, _event_time, api,
                                      bad_request)

_ID_RE = re.compile(r"^[A-Za-z0-9_\-]{1,36}$")
_FINGERPRINT_RE = re.compile(r"^[0-9a-fA-F]{40}([0-9a-fA-F]{24})?$")
#: A CA's content is a PEM certificate; IoTDA's limit is not public, this is generous for one certificate.
_MAX_PEM = 16 * 1024


def certificate_not_found(certificate_id: str) -> ApiError:
    """IoTDA's code for an unknown CA is not public: 404 with the generic invalid-input code (doc/emulator.md)."""
    return ApiError(404, "IOTDA.000006", f"Invalid input data. The certificate does not exist. "
                                         f"certificate_id={certificate_id}")


def _view(record: Dict[str, Any], *, full: bool = False) -> Dict[str, Any]:
    opts = record["options"]
    view: Dict[str, Any] = {
        "certificate_id": record["certificate_id"], "cn_name": record["cn_name"], "owner": record["owner"],
        "status": record["verified"], "verify_code": record["verify_code"],
        "provision_enable": bool(opts.get("provision_enable", False)), "template_id": opts.get("template_id"),
        "ocsp_enable": bool(opts.get("ocsp_enable", False)), "ocsp_server_ca_id": opts.get("ocsp_server_ca_id"),
        "ocsp_ssl_enable": bool(opts.get("ocsp_ssl_enable", False)),
        "create_date": _event_time(record["created"]), "effective_date": _event_time(record["not_before"]),
        "expiry_date": _event_time(record["not_after"])}
    if full:   # ShowCertificate adds the name and the PEM
        view["name"] = record["cn_name"]
        view["content"] = record["content"]
    return view


class _CaHandler(BaseApiHandler):
    @property
    def cas(self) -> Any:
        registry = getattr(self.emulator, "device_cas", None)
        if registry is None:
            raise ApiError(500, "IOTDA.000001", "Internal error: the emulator has no device CA registry.")
        return registry

    async def _record(self, certificate_id: str) -> Dict[str, Any]:
        record = await self.call(self.cas.get, certificate_id)
        if record is None:
            raise certificate_not_found(certificate_id)
        return record


class CertificatesHandler(_CaHandler):
    """``POST`` (AddCertificate) and ``GET`` (ListCertificates) ``/v5/iot/{project_id}/certificates``."""

    @api
    async def post(self, project_id: str) -> None:
        body = self.json_body()
        content = body.get("content")
        if not isinstance(content, str) or not content.strip() or len(content) > _MAX_PEM:
            raise bad_request(f"'content' is a PEM certificate of at most {_MAX_PEM} characters.")
        app_id = _app_id(body.get("app_id"))
        try:
            record = await self.call(self.cas.add, content, app_id)
        except CaError as exc:
            raise bad_request(str(exc)) from None
        self.reply(_view(record), 201)

    @api
    async def get(self, project_id: str) -> None:
        limit = self.int_arg("limit", 10, 1, 50)
        offset = self.int_arg("offset", 0, 0, 500)
        marker = self.get_query_argument("marker", None)
        records: List[Dict[str, Any]] = await self.call(self.cas.list, _app_id(self.get_query_argument("app_id",
                                                                                                         None)))
        count = len(records)
        if marker:
            ids = [r["certificate_id"] for r in records]
            if marker in ids:
                records = records[ids.index(marker) + 1:]
        page = records[offset:offset + limit]
        self.reply({"certificates": [_view(r) for r in page],
                    "page": {"count": count, "marker": page[-1]["certificate_id"] if page else marker}})


class CertificateHandler(_CaHandler):
    """``GET`` (ShowCertificate), ``PUT`` (UpdateCertificate), ``DELETE`` (DeleteCertificate)
    ``/v5/iot/{project_id}/certificates/{certificate_id}``."""

    @api
    async def get(self, project_id: str, certificate_id: str) -> None:
        self.reply(_view(await self._record(certificate_id), full=True))

    @api
    async def put(self, project_id: str, certificate_id: str) -> None:
        body = self.json_body()
        options: Dict[str, Any] = {}
        for key in ("provision_enable", "ocsp_enable", "ocsp_ssl_enable"):
            if body.get(key) is not None:
                if not isinstance(body[key], bool):
                    raise bad_request(f"'{key}' must be a boolean.")
                options[key] = body[key]
        for key in ("template_id", "ocsp_server_ca_id"):
            if key in body:   # template_id null unbinds the template (IoTDA's UpdateCertificateDTO)
                value = body[key]
                if value is not None and (not isinstance(value, str) or not _ID_RE.match(value)):
                    raise bad_request(f"'{key}' is at most 36 letters, digits, '_' and '-'.")
                options[key] = value
        await self._record(certificate_id)
        record = await self.call(self.cas.update, certificate_id, options)
        if record is None:
            raise certificate_not_found(certificate_id)
        self.reply(_view(record))

    @api
    async def delete(self, project_id: str, certificate_id: str) -> None:
        if not await self.call(self.cas.delete, certificate_id):
            raise certificate_not_found(certificate_id)
        self.reply(None, 204)


class CertificateActionHandler(_CaHandler):
    """``POST .../certificates/{certificate_id}/action?action_id=verify`` (CheckCertificate): body
    ``verify_content`` = a verification certificate whose subject CN is the CA's ``verify_code``, signed by the
    CA's private key. Answers 200 with an empty body; the CA's ``status`` becomes true."""

    @api
    async def post(self, project_id: str, certificate_id: str) -> None:
        action_id = self.get_query_argument("action_id", None)
        if action_id != "verify":
            raise bad_request(f"'action_id' must be verify; got {action_id!r}.")
        body = self.json_body()
        proof = body.get("verify_content")
        if not isinstance(proof, str) or not proof.strip() or len(proof) > _MAX_PEM:
            raise bad_request("'verify_content' is the verification certificate (PEM).")
        await self._record(certificate_id)
        try:
            record = await self.call(self.cas.verify, certificate_id, proof)
        except CaError as exc:
            raise bad_request(str(exc)) from None
        if record is None:
            raise certificate_not_found(certificate_id)
        self.reply(None, 200)


class ResetFingerprintHandler(BaseApiHandler):
    """``POST /v5/iot/{project_id}/devices/{device_id}/reset-fingerprint`` (ResetFingerprint).

    Body (every field optional): ``fingerprint`` (40 or 64 hex digits; absent = cleared, and the device's next
    certificate connection binds its certificate's SHA-256 fingerprint), ``force_disconnect`` (default false),
    ``fingerprint_type`` (``PRIMARY``; the emulator models one fingerprint per device, so ``SECONDARY`` is a 400).
    """

    @api
    async def post(self, project_id: str, device_id: str) -> None:
        body = self.json_body() if (self.request.body or b"").strip() else {}
        fingerprint = body.get("fingerprint")
        if fingerprint is not None and (not isinstance(fingerprint, str) or not _FINGERPRINT_RE.match(fingerprint)):
            raise bad_request("'fingerprint' is 40 or 64 hex digits.")
        force_disconnect = body.get("force_disconnect")
        if force_disconnect is None:
            force_disconnect = False
        if not isinstance(force_disconnect, bool):
            raise bad_request("'force_disconnect' must be a boolean.")
        fingerprint_type = body.get("fingerprint_type") or "PRIMARY"
        if fingerprint_type == "SECONDARY":
            raise bad_request("'fingerprint_type' SECONDARY is not supported by the emulator: it models only the "
                              "primary fingerprint.")
        if fingerprint_type != "PRIMARY":
            raise bad_request("'fingerprint_type' must be PRIMARY or SECONDARY.")
        record = await self.require_device(device_id)
        if record.get("secret") and record.get("auth_type") != "CERTIFICATES":
            raise bad_request("The device authenticates with a secret, not a certificate.")
        try:
            stored = await self.call(self.emulator.reset_device_fingerprint, device_id, fingerprint,
                                     force_disconnect)
        except (errors.DeviceNotFound, ValueError, TypeError) as exc:
            raise _emulator_error(exc, device_id) from None
        self.reply({"device_id": device_id, "fingerprint": stored, "fingerprint_type": fingerprint_type})


def _app_id(value: Any) -> Optional[str]:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise bad_request("'app_id' is at most 36 letters, digits, '_' and '-'.")
    return value


def routes(server: Any) -> List[tuple]:
    """Device CA certificates and ResetFingerprint."""
    kw = {"server": server}
    return [
        (PREFIX + r"/certificates/?", CertificatesHandler, kw),
        (PREFIX + r"/certificates/(?P<certificate_id>[^/]+)/?", CertificateHandler, kw),
        (PREFIX + r"/certificates/(?P<certificate_id>[^/]+)/action/?", CertificateActionHandler, kw),
        (DEVICE + r"/reset-fingerprint/?", ResetFingerprintHandler, kw),
    ]
