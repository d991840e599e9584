"""Result of a property write, sent in property-set responses (upstream ``client.iot_result``)."""
from __future__ import annotations

from typing import Any, Dict

from iot_device_sdk_python.utils._props import Field, rw


class IotResult:
    """``result_code`` (0 = success) and ``result_desc``."""

    def __init__(self, result_code: int, result_desc: str) -> None:
        self._result_code = result_code
        self._result_desc = result_desc

    result_code: Field[int] = rw("_result_code", "0 = success, anything else = failure.")
    result_desc: Field[str] = rw("_result_desc", "Human-readable description.")

    def to_dict(self) -> Dict[str, Any]:
        """``{"result_code": ..., "result_desc": ...}``."""
        return {"result_code": self._result_code, "result_desc": self._result_desc}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IotResult) and other.to_dict() == self.to_dict()

    def __hash__(self) -> int:
        return hash((self._result_code, self._result_desc))

    def __repr__(self) -> str:
        return f"IotResult({self._result_code!r}, {self._result_desc!r})"


SUCCESS = IotResult(0, "Success")
FAIL = IotResult(1, "Fail")
TIMEOUT = IotResult(2, "Timeout")
