"""The emulator's HTTP side: IoTDA v5 application REST API, SDK-HMAC-SHA256 auth, tornado server.

``HttpServer`` is imported on first use: the command-line tools that only sign requests (``http.auth``) must
not need tornado, so that ``iotda-emulator --version`` and a clear missing-dependency message work without it.
"""
from typing import Any

__all__ = ["HttpServer"]


def __getattr__(name: str) -> Any:
    if name == "HttpServer":
        from iotda_emulator.http.server import HttpServer
        return HttpServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
