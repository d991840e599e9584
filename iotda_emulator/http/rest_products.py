"""IoTDA v5 product API (CreateProduct, ListProducts, ShowProduct, UpdateProduct, DeleteProduct) and the
emulator-only custom-topic configuration of a product.

JSON shapes follow IoTDA's application API, so ``huaweicloudsdkiotda``'s ``CreateProductResponse``,
``ListProductsResponse`` (``ProductSummary``, ``Page``), ``ShowProductResponse`` and ``UpdateProductResponse``
parse them. IoTDA configures custom topics in its console only (no application API), so the emulator offers
``GET``/``PUT /emulator/products/{product_id}/topics`` with ``{"topics": [{"name", "permission"}]}``.
"""
from __future__ import annotations

from typing import Any, List

from iotda_emulator.http.rest import (PREFIX, BaseApiHandler, api, bad_request, product_exists,
                                      product_not_found)
from iotda_emulator.products import ProductExists, ProductNotFound

PRODUCT = PREFIX + r"/products/(?P<product_id>[^/]+)"

#: The single application every emulator resource belongs to (as in the device views of rest.py).
APP_ID, APP_NAME = "emulator_app", "DefaultApp"

_SUMMARY_KEYS = ("product_id", "name", "device_type", "protocol_type", "data_format", "manufacturer_name",
                 "industry", "description", "create_time")
_UPDATABLE = ("name", "device_type", "protocol_type", "data_format", "service_capabilities", "manufacturer_name",
              "industry", "description")


def product_view(record: dict, *, full: bool = True) -> dict:
    """A product record as IoTDA answers it: ShowProduct (``full``) or a ListProducts ``ProductSummary``."""
    view = {"app_id": APP_ID, "app_name": APP_NAME}
    view.update({key: record.get(key) for key in _SUMMARY_KEYS})
    if full:
        view["service_capabilities"] = record.get("service_capabilities") or []
    return view


class ProductsHandler(BaseApiHandler):
    """``POST /v5/iot/{project_id}/products`` (CreateProduct) and ``GET`` (ListProducts)."""

    @api
    async def post(self, project_id: str) -> None:
        body = self.json_body()
        missing = [k for k in ("name", "device_type", "protocol_type", "service_capabilities") if body.get(k) is None]
        if missing:
            raise bad_request(f"{', '.join(repr(k) for k in missing)} mandatory.")
        fields = {k: body.get(k) for k in _UPDATABLE if body.get(k) is not None}
        try:
            record = await self.call(self.emulator.create_product, body.get("product_id"), **fields)
        except ProductExists:
            raise product_exists(body.get("product_id")) from None
        except (ValueError, TypeError) as exc:
            raise bad_request(str(exc)) from None
        self.reply(product_view(record), 201)

    @api
    async def get(self, project_id: str) -> None:
        limit = self.int_arg("limit", 10, 1, 50)
        offset = self.int_arg("offset", 0, 0, 500)
        marker = self.get_query_argument("marker", None) or None
        name = self.get_query_argument("product_name", None) or None
        try:
            records, count = await self.call(self.emulator.core.products.list_products, limit, marker, offset, name)
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        self.reply({"products": [product_view(r, full=False) for r in records],
                    "page": {"count": count, "marker": records[-1]["marker"] if records else marker}})


class ProductHandler(BaseApiHandler):
    """``GET`` (ShowProduct), ``PUT`` (UpdateProduct), ``DELETE`` (DeleteProduct) ``.../products/{product_id}``."""

    async def _require(self, product_id: str) -> dict:
        record = await self.call(self.emulator.get_product, product_id)
        if record is None:
            raise product_not_found(product_id)
        return record

    @api
    async def get(self, project_id: str, product_id: str) -> None:
        self.reply(product_view(await self._require(product_id)))

    @api
    async def put(self, project_id: str, product_id: str) -> None:
        body = self.json_body()
        fields = {k: body.get(k) for k in _UPDATABLE if body.get(k) is not None}
        await self._require(product_id)
        try:
            record = await self.call(self.emulator.update_product, product_id, **fields)
        except ProductNotFound:
            raise product_not_found(product_id) from None
        except (ValueError, TypeError) as exc:
            raise bad_request(str(exc)) from None
        self.reply(product_view(record))

    @api
    async def delete(self, project_id: str, product_id: str) -> None:
        if not await self.call(self.emulator.delete_product, product_id):
            raise product_not_found(product_id)
        self.reply(None, 204)


class ProductTopicsHandler(BaseApiHandler):
    """Emulator-only: ``GET``/``PUT /emulator/products/{product_id}/topics`` (a product's custom topics)."""

    @api
    async def get(self, product_id: str) -> None:
        record = await self.call(self.emulator.get_product, product_id)
        if record is None:
            raise product_not_found(product_id)
        self.reply({"product_id": product_id, "topics": record["topics"]})

    @api
    async def put(self, product_id: str) -> None:
        body = self.json_body()
        try:
            topics = await self.call(self.emulator.set_product_topics, product_id, body.get("topics"))
        except ProductNotFound:
            raise product_not_found(product_id) from None
        except (ValueError, TypeError) as exc:
            raise bad_request(str(exc)) from None
        self.reply({"product_id": product_id, "topics": topics})


def routes(server: Any) -> List[tuple]:
    """The product routes, each handler initialised with the owning HTTP server."""
    kw = {"server": server}
    return [
        (PREFIX + r"/products/?", ProductsHandler, kw),
        (PRODUCT + r"/?", ProductHandler, kw),
        (r"/emulator/products/(?P<product_id>[^/]+)/topics/?", ProductTopicsHandler, kw),
    ]
