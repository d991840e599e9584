"""Tolerant field readers for ``convert_from_dict`` (platform input is untrusted)."""
from __future__ import annotations

from typing import Any, Dict, List


def as_dict(obj: Any) -> Dict[str, Any]:
    """``obj`` when it is a dict, else an empty dict (so a bad payload never raises)."""
    return obj if isinstance(obj, dict) else {}


def get_str(d: Dict[str, Any], key: str, current: Any) -> Any:
    """The str at ``key``; numbers are converted; missing/None/other types keep ``current``."""
    if key not in d:
        return current
    v = d[key]
    if isinstance(v, str):
        return v
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(v)
    return current


def get_dict(d: Dict[str, Any], key: str, current: Any) -> Any:
    """The dict at ``key``; missing or non-dict values keep ``current``."""
    v = d.get(key)
    return v if isinstance(v, dict) else current


def get_int(d: Dict[str, Any], key: str, current: Any) -> Any:
    """The int at ``key`` (numeric strings accepted); otherwise ``current``."""
    v = d.get(key)
    if isinstance(v, bool):
        return current
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            return current
    return current


def get_list(d: Dict[str, Any], key: str) -> List[Any]:
    """The list at ``key`` or an empty list."""
    v = d.get(key)
    return v if isinstance(v, list) else []
