"""The device's answer to a command (upstream ``client.request.command_response``)."""
from __future__ import annotations

from typing import Any, Dict, Optional

from iot_device_sdk_python.client.request._util import as_dict, get_dict, get_int, get_str
from iot_device_sdk_python.utils._props import Field, rw


class CommandRsp:
    """``result_code`` (0 success), ``response_name``, ``paras``.

    Beyond upstream the constructor takes optional values: ``CommandRsp(0, paras={"x": 1})``.
    """

    def __init__(self, result_code: int = 0, response_name: str = "", paras: Optional[Dict[str, Any]] = None) -> None:
        self._result_code = result_code
        self._response_name = response_name
        self._paras = paras if paras is not None else {}

    result_code: Field[int] = rw("_result_code")
    response_name: Field[str] = rw("_response_name")
    paras: Field[Dict[str, Any]] = rw("_paras")

    @staticmethod
    def success_code() -> int:
        return 0

    @staticmethod
    def fail_code() -> int:
        return -1

    def to_dict(self) -> Dict[str, Any]:
        return {"result_code": self._result_code, "response_name": self._response_name, "paras": self._paras}

    def convert_from_dict(self, json_dict: Dict[str, Any]) -> None:
        d = as_dict(json_dict)
        self._result_code = get_int(d, "result_code", self._result_code)
        self._response_name = get_str(d, "response_name", self._response_name)
        self._paras = get_dict(d, "paras", self._paras)

    def __repr__(self) -> str:
        return f"CommandRsp({self._result_code!r}, {self._response_name!r}, {self._paras!r})"
