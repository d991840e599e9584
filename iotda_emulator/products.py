"""Products (IoTDA product models) and their custom topics, stored in the emulator's sqlite file.

A product carries IoTDA's product fields (``name``, ``device_type``, ``protocol_type``, ``data_format``,
``manufacturer_name``, ``industry``, ``description``) and its ``service_capabilities`` (services with properties,
commands and events), validated as IoTDA's CreateProduct documents them. It also carries the product's custom
topics (``$oc/devices/{device_id}/user/{name}``, permission publish, subscribe or both), which IoTDA configures in
the console only: the emulator takes them through its Python API and an emulator-only REST path.

:meth:`ProductCatalog.custom_topic_allowed` answers, for every PUBLISH or SUBSCRIBE of a device on a ``user/``
topic, whether the device's product allows it; the topic rules are cached per product.
"""
from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
import uuid
from typing import Any, Dict, FrozenSet, List, Optional, Tuple

from iotda_emulator.errors import EmulatorError
from iotda_emulator.store import Store

#: IoTDA's ``protocol_type`` values (CreateProduct).
PROTOCOL_TYPES = ("MQTT", "CoAP", "HTTP", "HTTPS", "Modbus", "ONVIF", "OPC-UA", "OPC-DA", "Other", "TCP", "UDP")
#: ``data_type`` of a property or a command/event parameter.
DATA_TYPES = ("int", "long", "decimal", "string", "DateTime", "jsonObject", "enum", "boolean", "string list")
DATA_FORMATS = ("json", "binary")
SERVICE_OPTIONS = ("Master", "Mandatory", "Optional")
#: Custom topic permissions (the console's publish / subscribe / publish and subscribe).
TOPIC_PERMISSIONS = {"publish": frozenset({"publish"}), "subscribe": frozenset({"subscribe"}),
                     "both": frozenset({"publish", "subscribe"})}
MAX_TOPICS = 50                 # custom topics per product (doc/protocol.md §4.1)
MAX_TOPIC_BYTES = 128           # whole topic, UTF-8 (§4.1)
DEFAULT_PRODUCT_NAME = "emulator product"

#: Modes of :attr:`ProductCatalog.user_topic_check` (see doc/emulator.md, "Custom topics").
USER_TOPIC_CHECKS = ("defined", "all", "off")

_ID_RE = re.compile(r"[A-Za-z0-9_\-]{1,36}")
_TOPIC_NAME_RE = re.compile(r"[A-Za-z0-9_/]{1,64}")
_METHOD_RE = re.compile(r"(?!.*(.).*\1)[RWE]{1,3}")   # R, W, E each at most once
_MARKER_RE = re.compile(r"[0-9a-fA-F]{24}")
_PRODUCT_FIELDS = ("device_type", "protocol_type", "data_format", "manufacturer_name", "industry", "description",
                   "service_capabilities")


class ProductNotFound(EmulatorError, KeyError):
    """No product with that id exists."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "product not found"


class ProductExists(EmulatorError):
    """A product with that id exists already."""


def iotda_time(seconds: float) -> str:
    """IoTDA's UTC time format ``yyyyMMdd'T'HHmmss'Z'``."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(seconds))


# ---- validation (ValueError with a message naming the field) -----------------------------------------

def _text(obj: dict, key: str, max_len: int, *, where: str = "", required: bool = False,
          choices: Optional[Tuple[str, ...]] = None) -> Optional[str]:
    value = obj.get(key)
    if value is None:
        if required:
            raise ValueError(f"'{where}{key}' is mandatory.")
        return None
    if not isinstance(value, str) or not value or len(value) > max_len or any(ord(c) < 32 for c in value):
        raise ValueError(f"'{where}{key}' must be a non-empty string of at most {max_len} characters.")
    if choices is not None and value not in choices:
        raise ValueError(f"'{where}{key}' must be one of {', '.join(choices)}.")
    return value


def _list(obj: dict, key: str, where: str, max_items: int) -> list:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > max_items or not all(isinstance(v, dict) for v in value):
        raise ValueError(f"'{where}{key}' must be a list of at most {max_items} objects.")
    return value


def _number_text(obj: dict, key: str, where: str) -> Optional[str]:
    # IoTDA carries min/max as strings; a JSON number from a raw client is kept as its text.
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"'{where}{key}' must be a string or a number.")
    return value if isinstance(value, str) else repr(value)


def _parameter(raw: dict, where: str, name_key: str) -> dict:
    """A property (``name_key`` = property_name) or a command/event parameter (para_name)."""
    out: Dict[str, Any] = {name_key: _text(raw, name_key, 64, where=where, required=True),
                           "data_type": _text(raw, "data_type", 16, where=where, required=True, choices=DATA_TYPES)}
    required = raw.get("required", False)
    if not isinstance(required, bool):
        raise ValueError(f"'{where}required' must be a boolean.")
    out["required"] = required
    enum_list = raw.get("enum_list")
    if enum_list is not None and (not isinstance(enum_list, list) or not all(isinstance(e, str) for e in enum_list)):
        raise ValueError(f"'{where}enum_list' must be a list of strings.")
    out["enum_list"] = enum_list
    out["min"] = _number_text(raw, "min", where)
    out["max"] = _number_text(raw, "max", where)
    max_length = raw.get("max_length")
    if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 0):
        raise ValueError(f"'{where}max_length' must be a non-negative integer.")
    out["max_length"] = max_length
    step = raw.get("step")
    if step is not None and (isinstance(step, bool) or not isinstance(step, (int, float))):
        raise ValueError(f"'{where}step' must be a number.")
    out["step"] = step
    out["unit"] = _text(raw, "unit", 16, where=where)
    out["description"] = _text(raw, "description", 128, where=where)
    return out


def _paras(raw: dict, where: str) -> List[dict]:
    paras = [_parameter(p, f"{where}paras[{i}].", "para_name") for i, p in enumerate(_list(raw, "paras", where, 500))]
    _unique([p["para_name"] for p in paras], f"{where}paras")
    return paras


def _unique(names: List[str], where: str) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise ValueError(f"'{where}' repeats {name!r}.")
        seen.add(name)


def normalize_services(raw: Any) -> List[dict]:
    """Validate IoTDA ``service_capabilities`` and return them with every field present (ValueError otherwise)."""
    if not isinstance(raw, list) or len(raw) > 500 or not all(isinstance(s, dict) for s in raw):
        raise ValueError("'service_capabilities' must be a list of at most 500 objects.")
    services = []
    for i, svc in enumerate(raw):
        at = f"service_capabilities[{i}]."
        props = []
        for j, prop in enumerate(_list(svc, "properties", at, 500)):
            p_at = f"{at}properties[{j}]."
            item = _parameter(prop, p_at, "property_name")
            method = prop.get("method")
            if not isinstance(method, str) or not _METHOD_RE.fullmatch(method):
                raise ValueError(f"'{p_at}method' is mandatory: R, W and/or E (e.g. \"RW\").")
            item["method"] = method
            item["default_value"] = prop.get("default_value")
            props.append(item)
        _unique([p["property_name"] for p in props], f"{at}properties")
        commands = []
        for j, cmd in enumerate(_list(svc, "commands", at, 500)):
            c_at = f"{at}commands[{j}]."
            responses = []
            for k, resp in enumerate(_list(cmd, "responses", c_at, 500)):
                r_at = f"{c_at}responses[{k}]."
                responses.append({"response_name": _text(resp, "response_name", 128, where=r_at, required=True),
                                  "paras": _paras(resp, r_at)})
            commands.append({"command_name": _text(cmd, "command_name", 64, where=c_at, required=True),
                             "paras": _paras(cmd, c_at), "responses": responses})
        _unique([c["command_name"] for c in commands], f"{at}commands")
        events = []
        for j, evt in enumerate(_list(svc, "events", at, 500)):
            e_at = f"{at}events[{j}]."
            events.append({"event_type": _text(evt, "event_type", 32, where=e_at, required=True),
                           "paras": _paras(evt, e_at)})
        services.append({
            "service_id": _text(svc, "service_id", 64, where=at, required=True),
            "service_type": _text(svc, "service_type", 64, where=at, required=True),
            "properties": props, "commands": commands, "events": events,
            "description": _text(svc, "description", 128, where=at),
            "option": _text(svc, "option", 16, where=at, choices=SERVICE_OPTIONS) or "Optional",
        })
    _unique([s["service_id"] for s in services], "service_capabilities")
    return services


def normalize_topics(raw: Any) -> List[dict]:
    """Validate custom topics ``[{"name", "permission"}]`` (ValueError otherwise); order kept, names unique."""
    if not isinstance(raw, list) or len(raw) > MAX_TOPICS or not all(isinstance(t, dict) for t in raw):
        raise ValueError(f"'topics' must be a list of at most {MAX_TOPICS} objects {{name, permission}}.")
    out = []
    for i, item in enumerate(raw):
        name = item.get("name")
        if not isinstance(name, str) or not _TOPIC_NAME_RE.fullmatch(name) or "" in name.split("/"):
            raise ValueError(f"'topics[{i}].name' is 1-64 letters, digits, '_' and '/' with no empty level.")
        permission = item.get("permission")
        if permission not in TOPIC_PERMISSIONS:
            raise ValueError(f"'topics[{i}].permission' must be one of {', '.join(TOPIC_PERMISSIONS)}.")
        description = _text(item, "description", 128, where=f"topics[{i}].")
        out.append({"name": name, "permission": permission, "description": description})
    _unique([t["name"] for t in out], "topics")
    return out


def _check_product_id(product_id: Any) -> str:
    if not isinstance(product_id, str) or not _ID_RE.fullmatch(product_id):
        raise ValueError("'product_id' is 1-36 letters, digits, '_' and '-'.")
    return product_id


def _check_fields(fields: Dict[str, Any]) -> Dict[str, Any]:
    """Validated product fields (only those present in ``fields``)."""
    out: Dict[str, Any] = {}
    limits = {"name": 64, "device_type": 32, "manufacturer_name": 32, "industry": 64, "description": 128}
    for key, max_len in limits.items():
        if key in fields and fields[key] is not None:
            out[key] = _text(fields, key, max_len)
    if fields.get("protocol_type") is not None:
        out["protocol_type"] = _text(fields, "protocol_type", 16, choices=PROTOCOL_TYPES)
    if fields.get("data_format") is not None:
        out["data_format"] = _text(fields, "data_format", 16, choices=DATA_FORMATS)
    if fields.get("service_capabilities") is not None:
        out["service_capabilities"] = normalize_services(fields["service_capabilities"])
    return out


class ProductCatalog:
    """Products in the ``products`` table of a :class:`Store`, plus the custom-topic check on them.

    ``user_topic_check`` decides what :meth:`custom_topic_allowed` does with a product that defines no custom
    topic: ``"defined"`` (default) checks only products that define at least one, ``"all"`` checks every product
    (a product with none allows no ``user/`` topic), ``"off"`` checks nothing.
    """

    def __init__(self, db: Store, user_topic_check: str = "defined") -> None:
        self.db = db
        self.user_topic_check = user_topic_check
        self._lock = threading.Lock()
        # product_id -> {topic name: allowed actions}; {} for a product without topics, None for no product
        self._rules: Dict[str, Optional[Dict[str, FrozenSet[str]]]] = {}
        self._generation = 0   # bumped by every product write (see _topic_rules)
        # product_id -> {service_id: {property_name: method}}, None when the product defines no service
        self._models: Dict[str, Optional[Dict[str, Dict[str, str]]]] = {}
        self._any_model: Optional[bool] = None   # does any product define services? (None: not known yet)

    @property
    def user_topic_check(self) -> str:
        return self._check_mode

    @user_topic_check.setter
    def user_topic_check(self, mode: str) -> None:
        if mode not in USER_TOPIC_CHECKS:
            raise ValueError(f"user_topic_check must be one of {', '.join(USER_TOPIC_CHECKS)}")
        self._check_mode = mode

    # ---- records ------------------------------------------------------------------------------------
    @staticmethod
    def _record(row: sqlite3.Row) -> dict:
        body = json.loads(row["body"])
        record = {"product_id": row["product_id"], "name": row["name"]}
        for key in _PRODUCT_FIELDS:
            record[key] = body.get(key)
        record["create_time"] = iotda_time(row["created"])
        record["topics"] = json.loads(row["topics"])
        record["marker"] = f"{row['seq']:024x}"
        return record

    def _invalidate(self, product_id: str) -> None:
        with self._lock:
            self._generation += 1
            self._rules.pop(product_id, None)
            self._models.pop(product_id, None)
            self._any_model = None

    # ---- the product model ----------------------------------------------------------------------------
    def model(self, product_id: str) -> Optional[Dict[str, Dict[str, str]]]:
        """``{service_id: {property_name: method}}`` of a product's ``service_capabilities``, or None when the
        product defines none (or does not exist): the emulator checks data against a model only where there is
        one. Cached until the product changes."""
        with self._lock:
            if product_id in self._models:
                return self._models[product_id]
            generation = self._generation
        rows = self.db.query("SELECT body FROM products WHERE product_id=?", (product_id,))
        services = (json.loads(rows[0]["body"]).get("service_capabilities") or []) if rows else []
        model = ({svc["service_id"]: {p["property_name"]: p.get("method") or "" for p in svc.get("properties") or []}
                  for svc in services} or None)
        with self._lock:
            if generation == self._generation:
                self._models[product_id] = model
        return model

    def device_model(self, device_id: str) -> Optional[Dict[str, Dict[str, str]]]:
        """The product model of ``device_id``'s product (see :meth:`model`); None without one. Cheap when no
        product has a model (the common case of the emulator's own minimal products): no query at all."""
        with self._lock:
            any_model, generation = self._any_model, self._generation
        if any_model is None:
            any_model = any(json.loads(r["body"]).get("service_capabilities")
                            for r in self.db.query("SELECT body FROM products"))
            with self._lock:
                if generation == self._generation:   # no product write since the read
                    self._any_model = any_model
        if not any_model:
            return None
        rows = self.db.query("SELECT product_id FROM devices WHERE device_id=?", (device_id,))
        return self.model(rows[0]["product_id"]) if rows else None

    # ---- CRUD -----------------------------------------------------------------------------------------
    def create_product(self, product_id: Optional[str] = None, name: Optional[str] = None, *,
                       device_type: str = "Default", protocol_type: str = "MQTT", data_format: str = "json",
                       service_capabilities: Optional[List[dict]] = None, manufacturer_name: Optional[str] = None,
                       industry: Optional[str] = None, description: Optional[str] = None,
                       topics: Optional[List[dict]] = None) -> dict:
        """Create a product and return its record; without ``product_id`` a 24-hex-digit id is generated.

        Raises ``ValueError`` for an invalid field and :class:`ProductExists` for a taken id.
        """
        product_id = _check_product_id(product_id) if product_id is not None else uuid.uuid4().hex[:24]
        fields = _check_fields({"name": name or product_id, "device_type": device_type,
                                "protocol_type": protocol_type, "data_format": data_format,
                                "service_capabilities": service_capabilities or [],
                                "manufacturer_name": manufacturer_name, "industry": industry,
                                "description": description})
        topic_list = normalize_topics(topics or [])
        body = {key: fields.get(key) for key in _PRODUCT_FIELDS}
        try:
            self.db.execute("INSERT INTO products(product_id, name, body, topics, created) VALUES (?,?,?,?,?)",
                            (product_id, fields["name"], json.dumps(body), json.dumps(topic_list), time.time()))
        except sqlite3.IntegrityError:
            raise ProductExists(f"product {product_id} already exists") from None
        self._invalidate(product_id)
        return self.require(product_id)

    def ensure_product(self, product_id: str) -> dict:
        """The product ``product_id``, created with default fields and no service when missing."""
        found = self.get_product(product_id)
        if found is not None:
            return found
        try:
            return self.create_product(product_id, DEFAULT_PRODUCT_NAME)
        except ProductExists:   # created concurrently
            return self.require(product_id)

    def get_product(self, product_id: str) -> Optional[dict]:
        """The record of ``product_id`` or None."""
        rows = self.db.query("SELECT * FROM products WHERE product_id=?", (product_id,))
        return self._record(rows[0]) if rows else None

    def require(self, product_id: str) -> dict:
        """The record of ``product_id``; raises :class:`ProductNotFound`."""
        found = self.get_product(product_id)
        if found is None:
            raise ProductNotFound(f"product {product_id} not found")
        return found

    def list_products(self, limit: Optional[int] = None, marker: Optional[str] = None, offset: int = 0,
                      name: Optional[str] = None) -> Tuple[List[dict], int]:
        """A page of products, newest first, and the count of every product matching ``name``.

        As on IoTDA, ``marker`` is the (24-hex-digit) record id of the last product of the previous page: the
        page holds products older than it. Raises ``ValueError`` for a malformed marker.
        """
        where, params = "", []
        if name is not None:
            where, params = " WHERE name=?", [name]
        count = self.db.query(f"SELECT COUNT(*) AS n FROM products{where}", params)[0]["n"]
        if marker is not None:
            if not _MARKER_RE.fullmatch(marker):
                raise ValueError("'marker' is a 24-digit hexadecimal string.")
            where += (" AND" if where else " WHERE") + " seq<?"
            params.append(min(int(marker, 16), 2 ** 63 - 1))
        sql = f"SELECT * FROM products{where} ORDER BY seq DESC LIMIT ? OFFSET ?"
        rows = self.db.query(sql, params + [-1 if limit is None else limit, offset])
        return [self._record(r) for r in rows], count

    def update_product(self, product_id: str, **fields: Any) -> dict:
        """Change product fields (name, device_type, protocol_type, data_format, service_capabilities,
        manufacturer_name, industry, description; ``service_capabilities`` replaces the whole list).

        Fields given as None are left unchanged. Raises ``ValueError``, :class:`ProductNotFound`.
        """
        bad = set(fields) - set(_PRODUCT_FIELDS) - {"name"}
        if bad:
            raise ValueError(f"cannot update {sorted(bad)}")
        changes = _check_fields(fields)
        with self.db.transaction() as conn:
            rows = conn.execute("SELECT name, body FROM products WHERE product_id=?", (product_id,)).fetchall()
            if not rows:
                raise ProductNotFound(f"product {product_id} not found")
            body = json.loads(rows[0]["body"])
            body.update({k: v for k, v in changes.items() if k != "name"})
            conn.execute("UPDATE products SET name=?, body=? WHERE product_id=?",
                         (changes.get("name", rows[0]["name"]), json.dumps(body), product_id))
        return self.require(product_id)

    def set_topics(self, product_id: str, topics: List[dict]) -> List[dict]:
        """Replace the custom topics of a product; returns them. Raises ``ValueError``, :class:`ProductNotFound`."""
        topic_list = normalize_topics(topics)
        cur = self.db.execute("UPDATE products SET topics=? WHERE product_id=?", (json.dumps(topic_list), product_id))
        if not cur.rowcount:
            raise ProductNotFound(f"product {product_id} not found")
        self._invalidate(product_id)
        return topic_list

    def delete_product(self, product_id: str) -> bool:
        """Remove a product; True when it existed. Its devices stay (as on IoTDA, which asks to delete them first)."""
        cur = self.db.execute("DELETE FROM products WHERE product_id=?", (product_id,))
        self._invalidate(product_id)
        return bool(cur.rowcount)

    # ---- custom topic check ---------------------------------------------------------------------------
    def _topic_rules(self, product_id: str) -> Optional[Dict[str, FrozenSet[str]]]:
        with self._lock:
            if product_id in self._rules:
                return self._rules[product_id]
            generation = self._generation
        rows = self.db.query("SELECT topics FROM products WHERE product_id=?", (product_id,))
        rules = ({t["name"]: TOPIC_PERMISSIONS[t["permission"]] for t in json.loads(rows[0]["topics"])}
                 if rows else None)
        with self._lock:
            # a write that landed after our read bumped the generation: do not cache what may be stale
            if generation == self._generation:
                self._rules[product_id] = rules
        return rules

    def custom_topic_allowed(self, device_id: str, topic: str, action: str) -> Optional[str]:
        """None when ``device_id`` may ``action`` ("publish" or "subscribe") on ``topic``, else a short reason.

        ``topic`` must be one of the device's own custom topics, ``$oc/devices/{device_id}/user/{name}``
        (anything else gets a reason). The name must be a custom topic of the device's product whose permission
        includes ``action``; a topic filter with ``+`` or ``#`` never matches a definition. Products defining no
        custom topic (or a device whose product is gone) follow :attr:`user_topic_check`.
        """
        if action not in ("publish", "subscribe"):
            return f"unknown action {action!r}"
        prefix = f"$oc/devices/{device_id}/user/"
        if not topic.startswith(prefix) or len(topic) == len(prefix):
            return "not a custom topic of this device"
        if len(topic.encode("utf-8")) > MAX_TOPIC_BYTES:
            return f"topic longer than {MAX_TOPIC_BYTES} bytes"
        mode = self._check_mode
        if mode == "off":
            return None
        rows = self.db.query("SELECT product_id FROM devices WHERE device_id=?", (device_id,))
        if not rows:
            return "unknown device"
        product_id = rows[0]["product_id"]
        rules = self._topic_rules(product_id)
        if not rules:
            if mode == "all":
                return f"product {product_id} defines no custom topic"
            return None
        name = topic[len(prefix):]
        allowed = rules.get(name)
        if allowed is None:
            return f"custom topic user/{name} is not defined in product {product_id}"
        if action not in allowed:
            return f"custom topic user/{name} of product {product_id} does not allow {action}"
        return None
