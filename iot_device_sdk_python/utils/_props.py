"""Tiny helper for the upstream style of data holders: a read/write property backed by ``_name``."""
from __future__ import annotations

import operator
from typing import Any


def rw(attr: str, doc: str = "") -> property:
    """A property reading and writing ``self.<attr>``."""

    def setter(self, value: Any) -> None:
        setattr(self, attr, value)

    # attrgetter reads in C, without a Python frame: these getters run on every report (qos, device id)
    return property(operator.attrgetter(attr), setter, doc=doc)


def field(name: str, doc: str = "") -> property:
    """A property reading and writing ``self._<name>`` (the upstream data-holder style)."""
    return rw("_" + name, doc or name)
