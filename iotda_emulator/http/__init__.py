"""The emulator's HTTP side: IoTDA v5 application REST API, SDK-HMAC-SHA256 auth, tornado server."""
from iotda_emulator.http.server import HttpServer

__all__ = ["HttpServer"]
