"""IoTDA bridges (AddBridge, ListBridges, DeleteBridge, ResetBridgeSecret), kept in the emulator's sqlite file.

A bridge is the identity a bridge process (IoTDA's bridge SDK) connects with to bring non-MQTT devices in. This
module keeps the registry: id, name, secret and creation time. The device side (a bridge's MQTT connection as
``{bridge_id}_3_...`` and the ``$oc/bridges/{bridge_id}/devices/{device_id}/sys/...`` topics) is
:mod:`iotda_emulator.bridge_protocol`.

Limits and formats (IoTDA's): at most 20 bridges; ``bridge_id`` at most 36 letters, digits, ``_``, ``-``
(generated when not given); ``bridge_name`` at most 64 characters of letters, digits, CJK and ``_?'#().,&%@!-``
and spaces. The secret is 32 hexadecimal digits, generated (AddBridge takes none); it never goes to a log.
"""
from __future__ import annotations

import re
import secrets
import time
import uuid
from typing import Any, List, Optional

MAX_BRIDGES = 20
ONLINE, OFFLINE = "ONLINE", "OFFLINE"

_ID_RE = re.compile(r"[A-Za-z0-9_\-]{1,36}")
_NAME_RE = re.compile(r"[\w?'#().,&%@!\- \u4e00-\u9fff]{1,64}")

_SCHEMA = """CREATE TABLE IF NOT EXISTS bridges (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    bridge_id TEXT NOT NULL UNIQUE,
    name      TEXT NOT NULL,
    secret    TEXT NOT NULL,
    created   REAL NOT NULL)"""


class BridgeError(ValueError):
    """A refused bridge operation (the message says why)."""


class BridgeNotFound(BridgeError, KeyError):
    """No bridge with that id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "bridge not found"


class BridgeExists(BridgeError):
    """A bridge with that id exists already."""


class BridgeRegistry:
    """The bridges of the emulator over its :class:`~iotda_emulator.store.Store`."""

    def __init__(self, db: Any) -> None:
        self.db = db
        db.execute(_SCHEMA)

    def add_bridge(self, name: str, bridge_id: Optional[str] = None) -> dict:
        """Register a bridge; returns its record with the secret. Raises :class:`BridgeError`."""
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
            raise BridgeError("bridge_name has 1 to 64 letters, digits, spaces or _?'#().,&%@!- characters")
        if bridge_id is None:
            bridge_id = str(uuid.uuid4())
        elif not isinstance(bridge_id, str) or not _ID_RE.fullmatch(bridge_id):
            raise BridgeError("bridge_id has 1 to 36 letters, digits, _ or -")
        with self.db.transaction() as conn:
            if conn.execute("SELECT COUNT(*) FROM bridges").fetchone()[0] >= MAX_BRIDGES:
                raise BridgeError(f"an instance has at most {MAX_BRIDGES} bridges")
            if conn.execute("SELECT 1 FROM bridges WHERE bridge_id=?", (bridge_id,)).fetchone():
                raise BridgeExists(f"the bridge {bridge_id} already exists")
            conn.execute("INSERT INTO bridges(bridge_id, name, secret, created) VALUES (?,?,?,?)",
                         (bridge_id, name, secrets.token_hex(16), time.time()))
        return self.require(bridge_id)

    def get_bridge(self, bridge_id: str) -> Optional[dict]:
        """The bridge's record (with its secret) or None."""
        rows = self.db.query("SELECT * FROM bridges WHERE bridge_id=?", (bridge_id,))
        return _bridge(rows[0]) if rows else None

    def require(self, bridge_id: str) -> dict:
        bridge = self.get_bridge(bridge_id)
        if bridge is None:
            raise BridgeNotFound(f"the bridge {bridge_id} does not exist")
        return bridge

    def list_bridges(self) -> List[dict]:
        """Every bridge, newest first, with its ``marker`` and ``status`` (``OFFLINE`` here: links are not known)."""
        return [_bridge(r) for r in self.db.query("SELECT * FROM bridges ORDER BY seq DESC")]

    def delete_bridge(self, bridge_id: str) -> None:
        self.require(bridge_id)
        self.db.execute("DELETE FROM bridges WHERE bridge_id=?", (bridge_id,))

    def reset_secret(self, bridge_id: str) -> str:
        """Give the bridge a new random secret and return it (the REST handler drops the link when asked to)."""
        self.require(bridge_id)
        secret = secrets.token_hex(16)
        self.db.execute("UPDATE bridges SET secret=? WHERE bridge_id=?", (secret, bridge_id))
        return secret


def _bridge(row: Any) -> dict:
    return {"bridge_id": row["bridge_id"], "bridge_name": row["name"], "secret": row["secret"],
            "created": row["created"], "status": OFFLINE, "marker": f"{row['seq']:024x}"}
