"""ProductCatalog.custom_topic_allowed on a bare sqlite store: the per-product custom-topic check IoTDA applies to
``$oc/devices/{id}/user/...`` (no broker needed: the access front calls it per PUBLISH/SUBSCRIBE)."""
from __future__ import annotations

import pytest

from iotda_emulator.products import ProductCatalog, ProductExists, ProductNotFound
from iotda_emulator.store import DeviceRegistry, Store

TOPICS = [{"name": "up", "permission": "publish"}, {"name": "down/cfg", "permission": "subscribe"},
          {"name": "chat", "permission": "both"}]


@pytest.fixture
def parts(tmp_path):
    db = Store(str(tmp_path / "emulator.sqlite3"))
    catalog, registry = ProductCatalog(db), DeviceRegistry(db)
    catalog.create_product("with_topics", "p1", topics=TOPICS)
    catalog.create_product("no_topics", "p2")
    registry.create_device("dev1", "secret-1234", product_id="with_topics")
    registry.create_device("dev2", "secret-1234", product_id="no_topics")
    yield catalog, registry, db
    db.close()


def user(device_id: str, name: str) -> str:
    return f"$oc/devices/{device_id}/user/{name}"


@pytest.mark.parametrize("name, action, allowed", [
    ("up", "publish", True), ("up", "subscribe", False),
    ("down/cfg", "subscribe", True), ("down/cfg", "publish", False),
    ("chat", "publish", True), ("chat", "subscribe", True),
    ("undefined", "publish", False), ("undefined", "subscribe", False),
    ("down", "subscribe", False), ("down/cfg/more", "subscribe", False),     # whole names only
    ("#", "subscribe", False), ("down/+", "subscribe", False),               # filters never match a definition
])
def test_permissions_of_a_product_with_topics(parts, name, action, allowed):
    catalog, _, _ = parts
    reason = catalog.custom_topic_allowed("dev1", user("dev1", name), action)
    assert (reason is None) == allowed, reason
    if not allowed:
        assert isinstance(reason, str) and reason


@pytest.mark.parametrize("topic, action", [
    (user("dev2", "up"), "publish"),                       # another device's topic
    ("$oc/devices/dev1/sys/messages/up", "publish"),       # not a custom topic
    ("$oc/devices/dev1/user/", "publish"),                 # empty name
    ("$oc/devices/dev1/user/" + "x" * 120, "publish"),      # over 128 bytes
    (user("dev1", "up"), "retain"),                        # unknown action
])
def test_not_a_custom_topic_of_the_device_is_refused(parts, topic, action):
    catalog, _, _ = parts
    assert catalog.custom_topic_allowed("dev1", topic, action)


def test_modes_for_a_product_without_topics(parts):
    catalog, _, _ = parts
    assert catalog.user_topic_check == "defined"
    assert catalog.custom_topic_allowed("dev2", user("dev2", "anything/at/all"), "publish") is None
    catalog.user_topic_check = "all"
    assert "defines no custom topic" in catalog.custom_topic_allowed("dev2", user("dev2", "anything"), "publish")
    assert catalog.custom_topic_allowed("dev1", user("dev1", "up"), "publish") is None
    catalog.user_topic_check = "off"
    assert catalog.custom_topic_allowed("dev1", user("dev1", "undefined"), "subscribe") is None
    with pytest.raises(ValueError):
        catalog.user_topic_check = "strict"


def test_unknown_device_and_deleted_product(parts):
    catalog, _, _ = parts
    assert catalog.custom_topic_allowed("ghost", user("ghost", "up"), "publish") == "unknown device"
    assert catalog.custom_topic_allowed("dev1", user("dev1", "x"), "publish")      # cached: product has topics
    assert catalog.delete_product("with_topics")
    assert catalog.custom_topic_allowed("dev1", user("dev1", "x"), "publish") is None   # like a product w/o topics
    catalog.user_topic_check = "all"
    assert catalog.custom_topic_allowed("dev1", user("dev1", "x"), "publish")


def test_cache_follows_topic_changes_and_product_moves(parts):
    catalog, registry, _ = parts
    assert catalog.custom_topic_allowed("dev1", user("dev1", "new"), "publish")      # fills the cache
    catalog.set_topics("with_topics", TOPICS + [{"name": "new", "permission": "publish"}])
    assert catalog.custom_topic_allowed("dev1", user("dev1", "new"), "publish") is None
    catalog.set_topics("with_topics", [{"name": "up", "permission": "subscribe"}])
    assert catalog.custom_topic_allowed("dev1", user("dev1", "up"), "publish")
    assert catalog.custom_topic_allowed("dev1", user("dev1", "up"), "subscribe") is None
    registry.update_device("dev1", product_id="no_topics")                          # the device changes product
    assert catalog.custom_topic_allowed("dev1", user("dev1", "whatever"), "publish") is None
    catalog.create_product("later", "p3", topics=[{"name": "only", "permission": "both"}])
    registry.update_device("dev2", product_id="later")
    assert catalog.custom_topic_allowed("dev2", user("dev2", "whatever"), "publish")


def test_products_persist_and_errors(parts, tmp_path):
    catalog, _, db = parts
    with pytest.raises(ProductExists):
        catalog.create_product("with_topics", "again")
    with pytest.raises(ProductNotFound):
        catalog.set_topics("nope", [])
    with pytest.raises(ProductNotFound):
        catalog.update_product("nope", name="x")
    with pytest.raises(ValueError):
        catalog.update_product("with_topics", create_time="20200101T000000Z")
    db.close()
    reopened = ProductCatalog(Store(str(tmp_path / "emulator.sqlite3")))
    assert [t["name"] for t in reopened.get_product("with_topics")["topics"]] == ["up", "down/cfg", "chat"]
    assert reopened.custom_topic_allowed("dev1", user("dev1", "chat"), "subscribe") is None
    assert reopened.custom_topic_allowed("dev1", user("dev1", "up"), "subscribe")
    assert reopened.ensure_product("with_topics")["name"] == "p1"                     # kept, not replaced
    assert reopened.ensure_product("fresh")["service_capabilities"] == []
    reopened.db.close()
