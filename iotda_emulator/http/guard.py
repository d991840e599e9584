"""Checks every HTTP request passes before any handler sees it: host, origin, content type, body size.

:class:`RequestGuard` sits between tornado's ``HTTPServer`` and the application. It answers, in IoTDA's
``{"error_code", "error_msg"}`` shape with ``X-Content-Type-Options: nosniff``:

* ``403`` to a ``Host`` that is not a name of this emulator (DNS rebinding: a foreign site whose name
  resolves to 127.0.0.1 is same-origin with the emulator for the browser, but still sends its own name);
  accepted are ``localhost``, IP literals (a page can only carry an IP origin if that IP serves it), the
  configured listen host, the advertised host and the machine's host name;
* ``403`` to an ``Origin`` other than the request's own (``null`` included: sandboxed frames send it);
* ``415`` to a POST body on the API (``/v5/``, ``/console``, ``/emulator/``) without a content type or
  with one a browser form or a "simple" cross-site fetch may send (``text/plain``,
  ``application/x-www-form-urlencoded``, ``multipart/form-data`` - unless it carries an ``Authorization``
  header, as the SDK's signed file uploads do). Any other type, and any PUT, PATCH or
  DELETE, needs a CORS pre-flight, which this server never grants, so a foreign page cannot send it (the
  JSON handlers also require ``application/json`` themselves);
* ``413`` to a body over the route's limit (:data:`DEFAULT_BODY_LIMIT`, or what a streaming handler sets
  with ``request.connection.set_max_body_size``), announced or chunked. The answer goes out at once;
  the rest of the body is read and dropped (up to :data:`DRAIN_LIMIT`, never buffered) so the client,
  still sending, gets to read it, and the connection is then closed.

Without this layer tornado answers an oversized body with a bare ``400`` and no body, and the handlers
would only see a request after its whole body was buffered.
"""
from __future__ import annotations

import ipaddress
import json
import logging
import socket
from typing import Any, Awaitable, Callable, Iterable, Optional, Set, Union
from urllib.parse import urlsplit

from tornado import httputil

log = logging.getLogger(__name__)

#: Largest body a (non-streaming) route takes; the REST API documents 1 MB (``rest.MAX_BODY``) + headroom.
DEFAULT_BODY_LIMIT = 1024 * 1024 + 1024
#: Most bytes of a refused body read and dropped so the client can read the answer; beyond, the link is cut.
DRAIN_LIMIT = 64 * 1024 * 1024

#: The one method with a body a page may send cross-site without a CORS pre-flight.
_SIMPLE_METHODS = frozenset(("POST",))
#: Content types a page may send cross-site without a CORS pre-flight (WHATWG Fetch "CORS-safelisted").
_SIMPLE_TYPES = frozenset(("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"))
_API_PREFIXES = ("/v5/", "/console", "/emulator/")
BAD_INPUT = "IOTDA.000006"


def error_body(code: str, message: str) -> bytes:
    """IoTDA's error body."""
    return json.dumps({"error_code": code, "error_msg": message}).encode("utf-8")


def _host_name(host_header: str) -> str:
    """The name part of a ``Host`` value (``[::1]:80`` -> ``::1``, ``a.b:80`` -> ``a.b``), lower case."""
    value = host_header.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


class RequestGuard(httputil.HTTPServerConnectionDelegate):
    """Wrap ``app`` (a tornado ``Application``); pass the guard to ``HTTPServer`` in its place.

    ``names`` returns the extra host names to accept (re-read at every request: the emulator's advertised
    host may be set after start).
    """

    def __init__(self, app: httputil.HTTPServerConnectionDelegate, names: Callable[[], Iterable[Optional[str]]],
                 body_limit: int = DEFAULT_BODY_LIMIT) -> None:
        self.app = app
        self.names = names
        self.body_limit = body_limit

    def start_request(self, server_conn: object, request_conn: httputil.HTTPConnection) -> httputil.HTTPMessageDelegate:
        return _GuardedRequest(self, server_conn, request_conn)

    def on_close(self, server_conn: object) -> None:
        self.app.on_close(server_conn)

    def allowed_host(self, name: str) -> bool:
        """Whether a request naming ``name`` in its ``Host`` header is meant for this emulator."""
        if not name or name == "localhost" or _is_ip(name):
            return True
        extra: Set[str] = {"localhost", socket.gethostname().lower()}
        for item in self.names():
            if item:
                extra.add(_host_name(str(item)))
        return name in extra


class _Connection:
    """The request connection as the application sees it: records the body limit a streaming handler sets."""

    def __init__(self, real: httputil.HTTPConnection, owner: "_GuardedRequest") -> None:
        self._real = real
        self._owner = owner

    def set_max_body_size(self, max_body_size: int) -> None:
        self._owner.limit = max_body_size
        self._real.set_max_body_size(max(max_body_size, DRAIN_LIMIT))  # the guard answers first

    def write_headers(self, *args: Any, **kwargs: Any) -> "Awaitable[None]":
        self._owner.answered = True
        return self._real.write_headers(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _GuardedRequest(httputil.HTTPMessageDelegate):
    def __init__(self, guard: RequestGuard, server_conn: object, request_conn: httputil.HTTPConnection) -> None:
        self.guard = guard
        self.conn = request_conn
        self.limit = guard.body_limit
        self.answered = False          # a response (the app's or ours) has started
        self.inner: Optional[httputil.HTTPMessageDelegate] = None
        self.refusal: Optional[tuple] = None   # (status, reason, code, message) once refused
        self.drop = False              # body bytes are read and dropped, not passed on
        self.received = 0
        self._server_conn = server_conn
        request_conn.set_max_body_size(DRAIN_LIMIT)

    # ---- tornado's HTTPMessageDelegate ----------------------------------------------------------------
    async def headers_received(self, start_line: Union[httputil.RequestStartLine, httputil.ResponseStartLine],
                               headers: httputil.HTTPHeaders) -> None:
        assert isinstance(start_line, httputil.RequestStartLine)
        refusal = self._check(start_line, headers)
        if refusal is not None:
            log.info("refused %s %s: %s", start_line.method, start_line.path.split("?", 1)[0], refusal[3])
            self._refuse(*refusal, headers=headers)
            return
        self.inner = self.guard.app.start_request(self._server_conn, _Connection(self.conn, self))
        pending = self.inner.headers_received(start_line, headers)
        if pending is not None:
            await pending
        if self.answered:      # a streaming handler answered in prepare(): nothing more for the guard to do
            return
        length = _content_length(headers)
        if length is not None and length > self.limit:
            self._too_large(headers)

    def data_received(self, chunk: bytes) -> Optional[Awaitable[None]]:
        self.received += len(chunk)
        if self.drop:
            if self.received > DRAIN_LIMIT:
                self._finish_now()
            return None
        if self.received > self.limit and not self.answered:   # a chunked body grew too large
            self._too_large(None)
            return None
        assert self.inner is not None
        return self.inner.data_received(chunk)

    def finish(self) -> None:
        if self.refusal is not None:
            if not self.answered:
                self._write_refusal(close=False)
            if not getattr(self, "_finished", False):
                self._finished = True
                self.conn.finish()
            return
        if self.inner is not None:
            self.inner.finish()

    def on_connection_close(self) -> None:
        if self.inner is not None:
            self.inner.on_connection_close()

    # ---- checks ---------------------------------------------------------------------------------------
    def _check(self, start_line: httputil.RequestStartLine, headers: httputil.HTTPHeaders) -> Optional[tuple]:
        host = headers.get("Host")
        if host is not None and not self.guard.allowed_host(_host_name(host)):
            return (403, "Forbidden", BAD_INPUT,
                    "Invalid input data. The Host header does not name this emulator (DNS rebinding?).")
        origin = headers.get("Origin")
        if origin is not None:
            netloc = urlsplit(origin).netloc.lower() if origin.strip().lower() != "null" else ""
            if not netloc or netloc != (host or "").strip().lower():
                return (403, "Forbidden", BAD_INPUT, "Invalid input data. Cross-origin requests are refused.")
        path = start_line.path.split("?", 1)[0]
        if start_line.method.upper() in _SIMPLE_METHODS and path.startswith(_API_PREFIXES) and _has_body(headers):
            media = headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
            # a file upload (UploadBatchTaskFile) is multipart; signed, it carries an Authorization header,
            # which no page can add cross-site without the pre-flight this server never grants
            signed_upload = media == "multipart/form-data" and bool(headers.get("Authorization"))
            if (not media or media in _SIMPLE_TYPES) and not signed_upload:
                return (415, "Unsupported Media Type", BAD_INPUT,
                        "Invalid input data. Send the body as application/json "
                        "(text/plain and form content types are refused).")
        return None

    def _too_large(self, headers: Optional[httputil.HTTPHeaders]) -> None:
        if self.inner is not None:
            self.inner.on_connection_close()   # the handler will never get this body
            self.inner = None
        self._refuse(413, "Payload Too Large", BAD_INPUT,
                     f"Invalid input data. The request body exceeds {self.limit} bytes.", headers=headers,
                     early=True)

    # ---- answering ------------------------------------------------------------------------------------
    def _refuse(self, status: int, reason: str, code: str, message: str, *,
                headers: Optional[httputil.HTTPHeaders], early: bool = False) -> None:
        self.refusal = (status, reason, code, message)
        self.drop = True
        length = _content_length(headers) if headers is not None else None
        expect = headers is not None and headers.get("Expect", "").lower() == "100-continue"
        if expect or (length is not None and length > DRAIN_LIMIT):
            self._finish_now()            # the body will not (or need not) be read: answer and close
        elif early:
            # answer now (the client may wait for it before sending more), finish once the body is dropped
            self._write_refusal(close=True)

    def _write_refusal(self, close: bool) -> None:
        assert self.refusal is not None
        status, reason, code, message = self.refusal
        body = error_body(code, message)
        out = httputil.HTTPHeaders()
        out["Content-Type"] = "application/json; charset=UTF-8"
        out["Content-Length"] = str(len(body))
        out["X-Content-Type-Options"] = "nosniff"
        out["Cache-Control"] = "no-store"
        if close:
            out["Connection"] = "close"
        self.answered = True
        self.conn.write_headers(httputil.ResponseStartLine("", status, reason), out, body)

    def _finish_now(self) -> None:
        if not self.answered:
            self._write_refusal(close=True)
        if not getattr(self, "_finished", False):
            self._finished = True
            self.conn.finish()   # tornado closes the connection: the rest of the body is not read


def _content_length(headers: Optional[httputil.HTTPHeaders]) -> Optional[int]:
    if headers is None:
        return None
    raw = headers.get("Content-Length")
    if raw is None:
        return None
    try:
        return int(raw.split(",")[0].strip())
    except ValueError:
        return None      # tornado itself refuses a malformed length


def _has_body(headers: httputil.HTTPHeaders) -> bool:
    length = _content_length(headers)
    return bool(length) or "chunked" in headers.get("Transfer-Encoding", "").lower()


__all__ = ["RequestGuard", "DEFAULT_BODY_LIMIT", "DRAIN_LIMIT", "error_body"]
