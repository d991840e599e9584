"""A property of a service (upstream ``service.property``), usable two ways.

Upstream style (instance attribute, maps filled by hand)::

    self.alarm = Property(val=0, field_name="alarm", prop_name="alarm", writeable=True)

Declarative style (class attribute, discovered by AbstractService)::

    class Smoke(AbstractService):
        alarm = Property(0, prop_name="alarm")                 # read/write, default 0
        temperature = Property(0.0, writeable=False)           # read-only

With the declarative style ``self.alarm`` reads/writes the value directly (the Property is a descriptor);
``field_name`` defaults to the attribute name and ``prop_name`` to ``field_name``.
"""
from __future__ import annotations

from typing import Any, Optional


class Property:
    """``val`` (initial/default value), ``field_name``, ``prop_name``, ``writeable``."""

    def __init__(self, val: Any = None, field_name: str = "", prop_name: str = "", writeable: bool = True) -> None:
        self._val = val
        self._field_name = field_name
        self._prop_name = prop_name
        self._writeable = writeable
        self._attr_name = ""  # set when declared on a class

    @property
    def val(self) -> Any:
        return self._val

    @val.setter
    def val(self, value: Any) -> None:
        self._val = value

    @property
    def field_name(self) -> str:
        return self._field_name

    @field_name.setter
    def field_name(self, value: str) -> None:
        self._field_name = value

    @property
    def prop_name(self) -> str:
        return self._prop_name or self._field_name

    @prop_name.setter
    def prop_name(self, value: str) -> None:
        self._prop_name = value

    @property
    def writeable(self) -> bool:
        return self._writeable

    @writeable.setter
    def writeable(self, value: bool) -> None:
        self._writeable = value

    # ---- descriptor protocol (declarative style) --------------------------------------------------

    def __set_name__(self, owner: type, name: str) -> None:
        self._attr_name = name
        if not self._field_name:
            self._field_name = name

    def _slot(self) -> str:
        return "_iot_prop_" + self._attr_name

    def __get__(self, instance: Any, owner: Optional[type] = None) -> Any:
        if instance is None:
            return self
        return instance.__dict__.get(self._slot(), self._val)

    def __set__(self, instance: Any, value: Any) -> None:
        instance.__dict__[self._slot()] = value

    def __repr__(self) -> str:
        return (f"Property(val={self._val!r}, field_name={self._field_name!r}, prop_name={self.prop_name!r}, "
                f"writeable={self._writeable!r})")
