"""Device groups and device tags (IoTDA's device-group and tags APIs), kept in the emulator's sqlite file.

* A **static** group holds the devices added to it (``addDevice``/``removeDevice``) and may have a parent
  (``super_group_id``); a **dynamic** group holds whatever devices match its rule, a WHERE clause of the
  SQL-like device search (:mod:`iotda_emulator.device_search`), evaluated when asked.
* A device has at most 10 **tags** (``tag_key`` unique per device; binding an existing key replaces its value).

Choices where IoTDA is silent (doc/emulator.md): a group with sub-groups cannot be deleted (400); deleting a group
removes its memberships only; deleting a device removes its tags and memberships.
"""
from __future__ import annotations

import re
import sqlite3
import time
import uuid
from typing import Any, Callable, Dict, List, Optional

from iotda_emulator import device_search

STATIC, DYNAMIC = "STATIC", "DYNAMIC"
MAX_TAGS = 10

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS device_groups (
        seq            INTEGER PRIMARY KEY AUTOINCREMENT,
        group_id       TEXT NOT NULL UNIQUE,
        name           TEXT NOT NULL UNIQUE,
        description    TEXT,
        super_group_id TEXT,
        group_type     TEXT NOT NULL,
        rule           TEXT,
        modified       REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS device_group_members (
        group_id  TEXT NOT NULL,
        device_id TEXT NOT NULL,
        PRIMARY KEY (group_id, device_id))""",
    """CREATE TABLE IF NOT EXISTS device_tags (
        device_id TEXT NOT NULL,
        tag_key   TEXT NOT NULL,
        tag_value TEXT,
        PRIMARY KEY (device_id, tag_key))""",
)

_GROUP_NAME_RE = re.compile(r"[\w?'#().,&%@!\- \u4e00-\u9fff]{1,64}")
_TAG_KEY_RE = re.compile(r"[\w.\-\u4e00-\u9fff]{1,64}")
_TAG_VALUE_RE = re.compile(r"[\w.\-\u4e00-\u9fff]{0,128}")


class GroupError(ValueError):
    """A refused group or tag operation (the message says why)."""


class GroupNotFound(GroupError, KeyError):
    """No group with that id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "group not found"


class DeviceGroups:
    """Groups, memberships and tags over the emulator's :class:`~iotda_emulator.store.Store`."""

    def __init__(self, db: Any) -> None:
        self.db = db
        for statement in _SCHEMA:
            db.execute(statement)

    # ---- groups ----------------------------------------------------------------------------------------
    def create_group(self, name: str, description: Optional[str] = None, super_group_id: Optional[str] = None,
                     group_type: Optional[str] = None, rule: Optional[str] = None) -> dict:
        """Create a group; raises :class:`GroupError` (bad name/type/rule, name taken, unknown parent)."""
        group_type = group_type or STATIC
        if group_type not in (STATIC, DYNAMIC):
            raise GroupError("group_type is STATIC or DYNAMIC")
        if not isinstance(name, str) or not _GROUP_NAME_RE.fullmatch(name):
            raise GroupError("name has 1 to 64 letters, digits or _?'#().,&%@!- characters")
        if group_type == DYNAMIC:
            if super_group_id:
                raise GroupError("a dynamic group cannot have a parent group")
            parse_rule(rule)
        elif rule:
            raise GroupError("only a dynamic group has a dynamic_group_rule")
        if super_group_id:
            parent = self.get_group(super_group_id)
            if parent is None:
                raise GroupError(f"the parent group {super_group_id} does not exist")
            if parent["group_type"] == DYNAMIC:
                raise GroupError("a dynamic group cannot have sub-groups")
        if self.db.query("SELECT 1 FROM device_groups WHERE name=?", (name,)):
            raise GroupError(f"a group named {name!r} already exists")
        group_id = str(uuid.uuid4())
        try:   # the check above is not atomic: a parallel create of the same name ends here
            self.db.execute("INSERT INTO device_groups(group_id, name, description, super_group_id, group_type, "
                            "rule, modified) VALUES (?,?,?,?,?,?,?)",
                            (group_id, name, description, super_group_id or None, group_type, rule, time.time()))
        except sqlite3.IntegrityError:
            raise GroupError(f"a group named {name!r} already exists") from None
        return self.get_group(group_id) or {}

    def get_group(self, group_id: str) -> Optional[dict]:
        rows = self.db.query("SELECT * FROM device_groups WHERE group_id=?", (group_id,))
        return _group(rows[0]) if rows else None

    def list_groups(self, *, group_type: Optional[str] = None, name: Optional[str] = None) -> List[dict]:
        """Every group, newest first (with its ``marker``), optionally of one type or name."""
        rows = self.db.query("SELECT * FROM device_groups ORDER BY seq DESC")
        out = [_group(r) for r in rows]
        return [g for g in out if (not group_type or g["group_type"] == group_type) and (not name or g["name"] == name)]

    def update_group(self, group_id: str, name: Optional[str] = None, description: Optional[str] = None) -> dict:
        group = self._require(group_id)
        if name is not None and name != group["name"]:
            if not _GROUP_NAME_RE.fullmatch(name):
                raise GroupError("name has 1 to 64 letters, digits or _?'#().,&%@!- characters")
            if self.db.query("SELECT 1 FROM device_groups WHERE name=?", (name,)):
                raise GroupError(f"a group named {name!r} already exists")
        try:
            self.db.execute("UPDATE device_groups SET name=?, description=?, modified=? WHERE group_id=?",
                            (name if name is not None else group["name"],
                             description if description is not None else group["description"], time.time(),
                             group_id))
        except sqlite3.IntegrityError:   # a parallel create or rename took the name meanwhile
            raise GroupError(f"a group named {name!r} already exists") from None
        return self.get_group(group_id) or {}

    def delete_group(self, group_id: str) -> None:
        self._require(group_id)
        if self.db.query("SELECT 1 FROM device_groups WHERE super_group_id=?", (group_id,)):
            raise GroupError("the group has sub-groups: delete them first")
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM device_group_members WHERE group_id=?", (group_id,))
            conn.execute("DELETE FROM device_groups WHERE group_id=?", (group_id,))

    def add_device(self, group_id: str, device_id: str) -> None:
        """Put a device in a static group (idempotent)."""
        if self._require(group_id)["group_type"] == DYNAMIC:
            raise GroupError("devices of a dynamic group follow its rule: they cannot be added or removed")
        self.db.execute("INSERT OR IGNORE INTO device_group_members(group_id, device_id) VALUES (?,?)",
                        (group_id, device_id))

    def remove_device(self, group_id: str, device_id: str) -> None:
        """Take a device out of a static group."""
        if self._require(group_id)["group_type"] == DYNAMIC:
            raise GroupError("devices of a dynamic group follow its rule: they cannot be added or removed")
        self.db.execute("DELETE FROM device_group_members WHERE group_id=? AND device_id=?", (group_id, device_id))

    def members(self, group_id: str, rows: Callable[[], List[Dict[str, Any]]]) -> List[str]:
        """Device ids of a group in creation order; ``rows()`` gives the search rows a dynamic rule runs on."""
        group = self._require(group_id)
        if group["group_type"] == DYNAMIC:
            query = parse_rule(group["dynamic_group_rule"])
            return [d["device_id"] for d in rows() if device_search.matches(query, d)]
        present = {d["device_id"] for d in rows()}
        return [r["device_id"] for r in self.db.query(
            "SELECT device_id FROM device_group_members WHERE group_id=? ORDER BY rowid", (group_id,))
            if r["device_id"] in present]

    def static_groups_of(self, device_id: str) -> List[str]:
        return [r["group_id"] for r in self.db.query(
            "SELECT group_id FROM device_group_members WHERE device_id=?", (device_id,))]

    def dynamic_groups(self) -> List[dict]:
        return [g for g in self.list_groups() if g["group_type"] == DYNAMIC]

    def _require(self, group_id: str) -> dict:
        group = self.get_group(group_id)
        if group is None:
            raise GroupNotFound(f"group {group_id} not found")
        return group

    # ---- tags ------------------------------------------------------------------------------------------
    def tag(self, device_id: str, tags: List[Dict[str, Any]]) -> None:
        """Bind ``[{tag_key, tag_value}]`` to a device (existing keys get the new value); at most 10 per device."""
        seen = set()
        for t in tags:
            key, value = t.get("tag_key"), t.get("tag_value", "")
            if not isinstance(key, str) or not _TAG_KEY_RE.fullmatch(key):
                raise GroupError("tag_key has 1 to 64 letters, digits or _.- characters")
            if value is not None and (not isinstance(value, str) or not _TAG_VALUE_RE.fullmatch(value)):
                raise GroupError("tag_value has at most 128 letters, digits or _.- characters")
            if key in seen:
                raise GroupError(f"tag_key {key!r} appears twice")
            seen.add(key)
        with self.db.transaction() as conn:
            have = {r["tag_key"] for r in conn.execute("SELECT tag_key FROM device_tags WHERE device_id=?",
                                                       (device_id,))}
            if len(have | seen) > MAX_TAGS:
                raise GroupError(f"a device has at most {MAX_TAGS} tags")
            conn.executemany("INSERT INTO device_tags(device_id, tag_key, tag_value) VALUES (?,?,?) "
                             "ON CONFLICT(device_id, tag_key) DO UPDATE SET tag_value=excluded.tag_value",
                             [(device_id, t["tag_key"], t.get("tag_value")) for t in tags])

    def untag(self, device_id: str, tag_keys: List[str]) -> None:
        with self.db.transaction() as conn:
            conn.executemany("DELETE FROM device_tags WHERE device_id=? AND tag_key=?",
                             [(device_id, k) for k in tag_keys])

    def tags_of(self, device_id: str) -> List[dict]:
        return [{"tag_key": r["tag_key"], "tag_value": r["tag_value"]} for r in self.db.query(
            "SELECT tag_key, tag_value FROM device_tags WHERE device_id=? ORDER BY tag_key", (device_id,))]

    def devices_tagged(self, tags: List[Dict[str, Any]]) -> List[str]:
        """Device ids carrying any of ``tags`` (a tag without value matches the key alone), sorted."""
        found = set()
        for t in tags:
            if t.get("tag_value") is None:
                rows = self.db.query("SELECT device_id FROM device_tags WHERE tag_key=?", (t.get("tag_key"),))
            else:
                rows = self.db.query("SELECT device_id FROM device_tags WHERE tag_key=? AND tag_value=?",
                                     (t.get("tag_key"), t.get("tag_value")))
            found.update(r["device_id"] for r in rows)
        return sorted(found)

    def forget_device(self, device_id: str) -> None:
        """Remove a deleted device's tags and memberships."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM device_tags WHERE device_id=?", (device_id,))
            conn.execute("DELETE FROM device_group_members WHERE device_id=?", (device_id,))


def parse_rule(rule: Any) -> device_search.Query:
    """A dynamic group's rule (a WHERE clause) as a search query; raises :class:`GroupError`."""
    if not isinstance(rule, str) or not rule.strip():
        raise GroupError("a dynamic group needs a dynamic_group_rule (the WHERE clause of a device search)")
    try:
        return device_search.parse(f"select * from device where {rule}")
    except device_search.SearchSyntaxError as exc:
        raise GroupError(f"dynamic_group_rule: {exc}") from None


def _group(row: Any) -> dict:
    return {"group_id": row["group_id"], "name": row["name"], "description": row["description"],
            "super_group_id": row["super_group_id"], "group_type": row["group_type"],
            "dynamic_group_rule": row["rule"], "marker": f"{row['seq']:016d}"}
