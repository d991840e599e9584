"""Tiny helper for the upstream style of data holders: a read/write property backed by ``_name``."""
from __future__ import annotations

import operator
from typing import Any, Generic, TypeVar, overload

_T = TypeVar("_T")


class Field(Generic[_T]):
    """How type checkers see a property made by :func:`rw`: ``name: Field[str] = rw("_name")`` reads as ``str``
    and accepts a ``str``. Only an annotation: at run time the attribute is the plain ``property``."""

    @overload
    def __get__(self, instance: None, owner: Any) -> "Field[_T]": ...
    @overload
    def __get__(self, instance: object, owner: Any) -> _T: ...

    def __get__(self, instance: Any, owner: Any) -> Any:  # pragma: no cover - never instantiated
        raise NotImplementedError

    def __set__(self, instance: object, value: _T) -> None:  # pragma: no cover - never instantiated
        raise NotImplementedError


def rw(attr: str, doc: str = "") -> Any:
    """A property reading and writing ``self.<attr>`` (annotate the class attribute with :class:`Field`)."""

    def setter(self: Any, value: Any) -> None:
        setattr(self, attr, value)

    # attrgetter reads in C, without a Python frame: these getters run on every report (qos, device id)
    return property(operator.attrgetter(attr), setter, doc=doc)


def field(name: str, doc: str = "") -> Any:
    """A property reading and writing ``self._<name>`` (the upstream data-holder style)."""
    return rw("_" + name, doc or name)
