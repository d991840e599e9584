"""Tiny helper for the upstream style of data holders: a read/write property backed by ``_name``."""
from __future__ import annotations

from typing import Any


def rw(attr: str, doc: str = "") -> property:
    """A property reading and writing ``self.<attr>``."""

    def getter(self) -> Any:
        return getattr(self, attr)

    def setter(self, value: Any) -> None:
        setattr(self, attr, value)

    return property(getter, setter, doc=doc)


def field(name: str, doc: str = "") -> property:
    """A property reading and writing ``self._<name>`` (the upstream data-holder style)."""
    return rw("_" + name, doc or name)
