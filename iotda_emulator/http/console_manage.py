"""The console's management endpoints: devices (create, delete, freeze, reset secret), property charts,
products, OTA packages and tasks, and the bootstrap service. Mounted by :func:`.console.console_routes`.

Every endpoint calls the emulator's Python API (``Emulator``, the ``$ota`` and ``$bootstrap`` services); rules
shared with the REST API live in one place (:func:`.rest_device_state.set_device_frozen`,
:func:`iotda_emulator.core.check_device_secret`). Login, same-origin and content-type checks are those of
:class:`.console._ApiHandler`. Secrets (device secrets, group secrets) appear only in the answer of the request
that created them; they are never logged and never listed.
"""
from __future__ import annotations

import math
import re
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Tuple

from iotda_emulator.core import check_device_secret
from iotda_emulator.errors import DeviceNotFound, EmulatorError
from iotda_emulator.http.console import (ConsoleError, DeviceHandler, DevicesHandler, _ApiHandler, _count_arg,
                                         _jsonable, _public_record, _require_str)
from iotda_emulator.http.rest import _tell_gateway   # the REST API's sub-device notification, not a copy
from iotda_emulator.http.rest_device_state import FreezeRefused, set_device_frozen
from iotda_emulator.protocol import topics

#: Newest property reports (of each kind) a chart is drawn from.
SERIES_REPORTS = 2000
#: Package versions and file names the console accepts (IoTDA: versions of at most 256 characters).
_VERSION_RE = re.compile(r"[A-Za-z0-9_.\-]{1,256}")
_SCOPE_RE = re.compile(r"[A-Za-z0-9\-]{1,64}")


def _opt_bool(body: dict, key: str) -> bool:
    value = body.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ConsoleError(400, "bad_request", f"{key} must be true or false")
    return value


# ---- devices -----------------------------------------------------------------------------------

class DevicesAdminHandler(DevicesHandler):
    """``GET`` lists devices; ``POST /console/api/devices`` ``{product_id, device_id?, node_id?, name?, secret?}``
    registers one (product must exist, as on IoTDA) and answers ``201 {"device", "secret"}`` - the only time
    the console shows a device secret."""

    async def post(self) -> None:
        body = self.body_object()
        product_id = _require_str(body, "product_id")
        device_id = _require_str(body, "device_id", optional=True)
        node_id = _require_str(body, "node_id", optional=True)
        name = _require_str(body, "name", optional=True)
        secret = _require_str(body, "secret", optional=True)
        if secret is not None:
            check_device_secret(secret)          # ValueError (never echoing the value): a 400
        if await self.blocking(self.emulator.get_product, product_id) is None:
            raise ConsoleError(404, "not_found", f"no product {product_id!r}: create it first", "IOTDA.013000")
        try:
            record = await self.blocking(self.emulator.create_device, device_id, secret, product_id=product_id,
                                         node_id=node_id, name=name)
        except EmulatorError as exc:             # the id is taken
            raise ConsoleError(409, "exists", str(exc), "IOTDA.014001") from None
        view = await self.blocking(_public_record, self.emulator, record)
        self.send_json({"device": view, "secret": record.get("secret")}, 201)


class DeviceAdminHandler(DeviceHandler):
    """``GET`` shows a device; ``DELETE /console/api/devices/{id}`` deletes it (its connection is dropped)."""

    async def delete(self, device_id: str) -> None:
        record = await self.device_checked(device_id)
        existed = await self.blocking(self.emulator.delete_device, device_id)
        if not existed:
            raise ConsoleError(404, "not_found", f"no device {device_id!r}")
        gateway_id = record.get("gateway_id")
        if gateway_id and gateway_id != device_id:       # as DeleteDevice does: the gateway is told
            await self.blocking(_tell_gateway, self.emulator, gateway_id)
        self.send_json({"deleted": device_id})


class FreezeHandler(_ApiHandler):
    """``POST /console/api/devices/{id}/freeze`` and ``.../unfreeze``: IoTDA's FreezeDevice / UnfreezeDevice.

    A frozen device is disconnected and refused with CONNACK 5 until unfrozen. Answers the device record.
    """

    frozen = True

    async def post(self, device_id: str) -> None:
        try:
            record = await self.blocking(set_device_frozen, self.emulator, device_id, self.frozen)
        except FreezeRefused as exc:
            raise ConsoleError(403, "refused", str(exc), exc.code) from None
        self.send_json(await self.blocking(_public_record, self.emulator, record))


class UnfreezeHandler(FreezeHandler):
    frozen = False


class ResetSecretHandler(_ApiHandler):
    """``POST /console/api/devices/{id}/reset-secret`` ``{secret?, force_disconnect?}`` -> ``{device_id, secret}``.

    IoTDA's ResetDeviceSecret: without ``secret`` a random one is made; the new secret is in this answer only.
    """

    async def post(self, device_id: str) -> None:
        body = self.body_object()
        secret = _require_str(body, "secret", optional=True)
        force = _opt_bool(body, "force_disconnect")
        await self.device_checked(device_id)
        new_secret = await self.blocking(self.emulator.reset_device_secret, device_id, secret, force)
        self.send_json({"device_id": device_id, "secret": new_secret})


# ---- property chart ----------------------------------------------------------------------------

def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _reported_services(entry: Any, device_id: str) -> List[Any]:
    """The ``services`` a traced report carries for ``device_id`` (a gateway report may carry several devices)."""
    obj = entry.json()
    if not isinstance(obj, dict):
        return []
    if entry.kind == topics.GATEWAY_PROPERTIES_REPORT:
        found: List[Any] = []
        for item in obj.get("devices") or []:
            if isinstance(item, dict) and item.get("device_id") == device_id and isinstance(item.get("services"), list):
                found.extend(item["services"])
        return found
    services = obj.get("services")
    return services if isinstance(services, list) else []


def property_series(emulator: Any, device_id: str, max_reports: int = SERIES_REPORTS) -> dict:
    """Every numeric property ``device_id`` reported, as time series read from the message trace.

    ``{"device_id", "reports": n, "series": [{"service_id", "property", "points": [[time, value], ...]}]}``, points
    oldest first, ``time`` the platform's receive time (epoch seconds). Sources: the device's own
    ``properties/report`` and the ``gateway/sub_devices/properties/report`` of its gateway (or of itself).
    Booleans, strings and objects are not charted. Raises ``DeviceNotFound``.
    """
    record = emulator.get_device(device_id)
    if record is None:
        raise DeviceNotFound(f"device {device_id} not found")
    core = emulator.core
    rows = core.trace(device_id, topics.UP, topics.PROPERTIES_REPORT, limit=max_reports, newest=True)
    rows += core.trace(record.get("gateway_id") or device_id, topics.UP, topics.GATEWAY_PROPERTIES_REPORT,
                       limit=max_reports, newest=True)
    rows.sort(key=lambda r: r.id)
    series: "OrderedDict[Tuple[str, str], List[list]]" = OrderedDict()
    reports = 0
    for row in rows:
        services = _reported_services(row, device_id)
        if services:
            reports += 1
        for svc in services:
            if not isinstance(svc, dict) or not isinstance(svc.get("service_id"), str) \
                    or not isinstance(svc.get("properties"), dict):
                continue
            for name, value in svc["properties"].items():
                if _numeric(value):
                    series.setdefault((svc["service_id"], str(name)), []).append([row.time, value])
    return {"device_id": device_id, "reports": reports,
            "series": [{"service_id": sid, "property": prop, "points": points}
                       for (sid, prop), points in series.items()]}


class SeriesHandler(_ApiHandler):
    """``GET /console/api/devices/{id}/series?reports=``: the device's numeric properties over time."""

    async def get(self, device_id: str) -> None:
        reports = _count_arg(self.get_query_argument("reports", None), "reports", SERIES_REPORTS)
        reports = max(1, min(reports, SERIES_REPORTS))
        self.send_json(await self.blocking(property_series, self.emulator, device_id, reports))


# ---- products ----------------------------------------------------------------------------------

def _product_summary(record: dict, devices: int) -> dict:
    services = record.get("service_capabilities") or []
    return {"product_id": record.get("product_id"), "name": record.get("name"),
            "device_type": record.get("device_type"), "protocol_type": record.get("protocol_type"),
            "data_format": record.get("data_format"), "manufacturer_name": record.get("manufacturer_name"),
            "services": len(services), "devices": devices}


class ProductsHandler(_ApiHandler):
    """``GET /console/api/products``: every product (newest first) with its service and device counts."""

    async def get(self) -> None:
        def listing() -> list:
            counts: Dict[str, int] = {}
            for dev in self.emulator.list_devices():
                counts[dev.get("product_id")] = counts.get(dev.get("product_id"), 0) + 1
            return [_product_summary(p, counts.get(p.get("product_id"), 0)) for p in self.emulator.list_products()]

        self.send_json({"products": await self.blocking(listing)})


class ProductHandler(_ApiHandler):
    """``GET /console/api/products/{id}``: the product with its model (``service_capabilities``) and topics."""

    async def get(self, product_id: str) -> None:
        record = await self.blocking(self.emulator.get_product, product_id)
        if record is None:
            raise ConsoleError(404, "not_found", f"no product {product_id!r}", "IOTDA.013000")
        self.send_json({"product": _jsonable(record)})


# ---- OTA ---------------------------------------------------------------------------------------

def _ota(emulator: Any) -> Any:
    try:
        return emulator.service("$ota")
    except (KeyError, AttributeError):
        raise ConsoleError(503, "unavailable", "the $ota platform service is not available") from None


class OtaPackagesHandler(_ApiHandler):
    """``POST /console/api/ota/packages?version=&kind=firmware|software&file_name=`` with the package file as an
    ``application/octet-stream`` body (at most the server's 1 MB body limit) -> ``201 {"package"}``."""

    binary_body = True

    async def post(self) -> None:
        data = self.request.body or b""
        if not data:
            raise ConsoleError(400, "bad_request", "the body (the package file) is empty")
        version = self.get_query_argument("version", "")
        if not _VERSION_RE.fullmatch(version):
            raise ConsoleError(400, "bad_request", "version: 1-256 letters, digits, '.', '_' or '-'")
        kind = self.get_query_argument("kind", "firmware")
        file_name = self.get_query_argument("file_name", None) or f"package-{version}.bin"
        if len(file_name) > 255:
            raise ConsoleError(400, "bad_request", "file_name has at most 255 characters")
        ota = _ota(self.emulator)
        package_id = await self.blocking(ota.upload_package, data, version, kind=kind, file_name=file_name)
        pkg = await self.blocking(ota.package, package_id) or {}
        self.send_json({"package": {k: pkg.get(k) for k in ("package_id", "version", "kind", "file_name",
                                                            "file_size", "sign")}}, 201)


class OtaPackageHandler(_ApiHandler):
    """``DELETE /console/api/ota/packages/{package_id}``."""

    async def delete(self, package_id: str) -> None:
        if not await self.blocking(_ota(self.emulator).delete_package, package_id):
            raise ConsoleError(404, "not_found", f"no package {package_id!r}")
        self.send_json({"deleted": package_id})


class OtaTasksHandler(_ApiHandler):
    """``POST /console/api/ota/tasks`` ``{package_id, device_ids: [...], v2?}``: one upgrade task per device.

    Answers ``201 {"tasks": [{"device_id", "task_id"} | {"device_id", "error"}]}``: an unknown device fails
    alone. An offline device's task starts when it connects (the ``$ota`` service's rule).
    """

    async def post(self) -> None:
        body = self.body_object()
        package_id = _require_str(body, "package_id")
        device_ids = body.get("device_ids")
        if not isinstance(device_ids, list) or not device_ids or len(device_ids) > 1000 \
                or not all(isinstance(d, str) and d for d in device_ids):
            raise ConsoleError(400, "bad_request", "device_ids must be a non-empty list of device ids")
        v2 = _opt_bool(body, "v2")
        ota = _ota(self.emulator)
        if await self.blocking(ota.package, package_id) is None:
            raise ConsoleError(404, "not_found", f"no package {package_id!r}")

        def start_all() -> list:
            out = []
            for device_id in dict.fromkeys(device_ids):
                try:
                    out.append({"device_id": device_id, "task_id": ota.start_task(device_id, package_id, v2=v2)})
                except DeviceNotFound:
                    out.append({"device_id": device_id, "error": "no such device"})
            return out

        self.send_json({"tasks": await self.blocking(start_all)}, 201)


# ---- bootstrap ---------------------------------------------------------------------------------

def _bootstrap(emulator: Any) -> Optional[Any]:
    try:
        return emulator.service("$bootstrap")
    except (KeyError, AttributeError):
        return None


def _group_view(group: dict) -> dict:
    """A registration group for the page: never its secret."""
    return {"scope_id": group.get("scope_id"), "name": group.get("name"), "auth_type": group.get("auth_type"),
            "product_id": group.get("product_id"), "require_policy": group.get("require_policy"),
            "devices": list(group.get("devices") or [])}


def bootstrap_view(service: Any) -> dict:
    """The provisioning service as the page shows it: endpoint, groups, static policies, bootstrap devices."""
    summary = service.describe() or {}
    return {"available": True, "address": service.address, "iotda_address": service.iotda_address(),
            "groups": [_group_view(g) for g in service.list_groups()],
            "policies": [{"policy_id": p.policy_id, "name": p.name, "keyword": p.keyword,
                          "keyword_source": p.keyword_source, "priority": p.priority, "product_id": p.product_id}
                         for p in service.list_policies()],
            "devices": list(summary.get("devices") or [])}


class BootstrapHandler(_ApiHandler):
    """``GET /console/api/bootstrap``: ``{"available": false}`` or :func:`bootstrap_view`."""

    async def get(self) -> None:
        service = _bootstrap(self.emulator)
        if service is None:
            self.send_json({"available": False, "message": "the $bootstrap service is not available"})
            return
        self.send_json(await self.blocking(bootstrap_view, service))


class BootstrapGroupsHandler(_ApiHandler):
    """``POST /console/api/bootstrap/groups`` ``{name, product_id?, scope_id?}``: a registration group with a
    generated group secret, answered once as ``201 {"group", "secret"}``."""

    async def post(self) -> None:
        body = self.body_object()
        name = _require_str(body, "name") or ""
        if len(name) > 256:
            raise ConsoleError(400, "bad_request", "name has at most 256 characters")
        product_id = _require_str(body, "product_id", optional=True) or "emu_product"
        scope_id = _require_str(body, "scope_id", optional=True)
        if scope_id is not None and not _SCOPE_RE.fullmatch(scope_id):
            raise ConsoleError(400, "bad_request", "scope_id: 1-64 letters, digits or '-'")
        service = _bootstrap(self.emulator)
        if service is None:
            raise ConsoleError(503, "unavailable", "the $bootstrap service is not available")
        created = await self.blocking(service.add_registration_group, scope_id, product_id=product_id, name=name)
        group = await self.blocking(service.get_group, created["scope_id"])
        self.send_json({"group": _group_view(group or created), "secret": created.get("secret")}, 201)


def manage_routes(kw: Dict[str, Any], dev: str) -> List[tuple]:
    """Routes of this module (``kw``: the handlers' init arguments; ``dev``: the device path pattern)."""
    return [
        (r"/console/api/devices/?", DevicesAdminHandler, kw),
        (dev + r"/?", DeviceAdminHandler, kw),
        (dev + r"/freeze/?", FreezeHandler, kw),
        (dev + r"/unfreeze/?", UnfreezeHandler, kw),
        (dev + r"/reset-secret/?", ResetSecretHandler, kw),
        (dev + r"/series/?", SeriesHandler, kw),
        (r"/console/api/products/?", ProductsHandler, kw),
        (r"/console/api/products/([A-Za-z0-9_\-]{1,64})/?", ProductHandler, kw),
        (r"/console/api/ota/packages/?", OtaPackagesHandler, kw),
        (r"/console/api/ota/packages/([A-Za-z0-9_\-]{1,64})/?", OtaPackageHandler, kw),
        (r"/console/api/ota/tasks/?", OtaTasksHandler, kw),
        (r"/console/api/bootstrap/?", BootstrapHandler, kw),
        (r"/console/api/bootstrap/groups/?", BootstrapGroupsHandler, kw),
    ]


__all__ = ["manage_routes", "property_series", "bootstrap_view"]
