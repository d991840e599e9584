"""Helpers shared by the gateway data classes (internal).

Upstream writes every field as a read/write ``property`` backed by ``_name``; :func:`rw` builds such a
property so the classes stay short. The ``as_*`` helpers turn untrusted platform values into the
expected type without raising, because a malformed notification must never crash the handler.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple, Type, TypeVar, overload

from iot_device_sdk_python.protocol import codec
from iot_device_sdk_python.utils._props import field as rw  # noqa: F401 (used by the gateway data classes)

__all__ = ["as_text", "as_int", "as_list", "as_dict", "to_plain", "TextRecord", "rw"]

_T = TypeVar("_T", bound="TextRecord")


@overload
def as_text(value: Any, default: str = "") -> str: ...
@overload
def as_text(value: Any, default: None) -> Optional[str]: ...


def as_text(value: Any, default: Optional[str] = "") -> Optional[str]:
    """``value`` as ``str``; numbers are converted, ``None`` and anything else give ``default``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return default
    if isinstance(value, (int, float)):
        return str(value)
    return default


@overload
def as_int(value: Any, default: int = 0) -> int: ...
@overload
def as_int(value: Any, default: None) -> Optional[int]: ...


def as_int(value: Any, default: Optional[int] = 0) -> Optional[int]:
    """``value`` as ``int`` (numeric strings accepted); anything else gives ``default``."""
    number = codec.as_int(value)
    return default if number is None else number


def as_list(value: Any) -> List[Any]:
    """``value`` when it is a list, else an empty list (the platform may send ``null``)."""
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> Optional[Dict[str, Any]]:
    """``value`` when it is a dict, else ``None``."""
    return value if isinstance(value, dict) else None


def to_plain(value: Any) -> Any:
    """``value`` with nested objects that have ``to_dict()`` converted, so ``json.dumps`` accepts it."""
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return to_plain(value.to_dict())
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


class TextRecord:
    """Base of the gateway data classes whose JSON keys (``_FIELDS``) all hold text.

    ``to_dict`` emits every key; ``convert_from_dict`` copies the known keys that hold text (numbers become
    strings, anything else is ignored), so malformed platform input never raises.
    """

    _FIELDS: Tuple[str, ...] = ()

    def to_dict(self) -> Dict[str, Any]:
        """Every field as a JSON-serialisable dict."""
        return {f: getattr(self, f) for f in self._FIELDS}

    def convert_from_dict(self: _T, json_dict: Optional[Dict[str, Any]]) -> _T:
        """Copy the known keys of ``json_dict`` (others ignored, missing ones kept); returns ``self``."""
        if isinstance(json_dict, dict):
            for f in self._FIELDS:
                if f in json_dict:
                    value = as_text(json_dict[f], None)
                    if value is not None:
                        setattr(self, f, value)
        return self

    @classmethod
    def from_dict(cls: Type[_T], json_dict: Optional[Dict[str, Any]]) -> _T:
        """A new instance filled from ``json_dict``."""
        return cls().convert_from_dict(json_dict)
