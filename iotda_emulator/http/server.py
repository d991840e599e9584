"""The emulator's HTTP side: one tornado application served over HTTP and HTTPS.

It carries the IoTDA v5 application REST API (:mod:`iotda_emulator.http.rest`), the routes every
platform service contributes (``PlatformService.http_routes()``: object store, OTA packages...), and
the web console under ``/console``. Tornado runs on its own IOLoop in a daemon thread, so the
emulator's Python API stays synchronous.
"""
from __future__ import annotations

import asyncio
import logging
import re
import socket
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable, List, Optional

import tornado.web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from iotda_emulator.http import rest
from iotda_emulator.http.console import console_routes
from iotda_emulator.http.guard import RequestGuard
from iotda_emulator.loop_thread import start_loop_thread

log = logging.getLogger(__name__)




class _NoSniff(tornado.web.OutputTransform):
    """``X-Content-Type-Options: nosniff`` on every answer, whichever handler (or error path) wrote it."""

    def transform_first_chunk(self, status_code: int, headers: Any, chunk: bytes, finishing: bool) -> tuple:
        headers["X-Content-Type-Options"] = "nosniff"
        return status_code, headers, chunk


class _MaskQueries(logging.Filter):
    """Masks URL query strings in tornado's own log lines. Tornado logs the full request URI when a request
    fails before or outside our handlers (``400 GET /objects/..%ff?X-Signature=...``, "Uncaught exception
    ..."), and a presigned URL carries its signature in the query (tests/reliability/test_hostile_rest.py)."""

    _QUERY = re.compile(r"(/[^\s?'\"]*)\?[^\s'\"]*")

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is tornado's business, not ours
            return True
        masked = self._QUERY.sub(r"\1?***", text)
        if masked != text:
            record.msg, record.args = masked, None
        return True


_MASK_QUERIES = _MaskQueries()
for _name in ("tornado.access", "tornado.application", "tornado.general"):
    if _MASK_QUERIES not in logging.getLogger(_name).filters:
        logging.getLogger(_name).addFilter(_MASK_QUERIES)


def _quiet_log(handler: tornado.web.RequestHandler) -> None:
    # Access lines at DEBUG only (tornado logs every request at INFO by default).
    status = handler.get_status()
    level = logging.WARNING if status >= 500 else logging.DEBUG
    log.log(level, "%d %s %s %.1fms", status, handler.request.method, handler.request.path,
            1000.0 * handler.request.request_time())


class HttpServer:
    """Serve the emulator's tornado application on ``host``.

    ``http_port``/``https_port`` of 0 pick a free port; the chosen ports are in the attributes of the
    same names after :meth:`start`. HTTPS is served only when ``ssl_context`` is given and
    ``https_port`` is not ``None``.
    """

    def __init__(self, emulator: Any, host: str = "127.0.0.1", http_port: Optional[int] = 0,
                 https_port: Optional[int] = 0, ssl_context: Optional[ssl.SSLContext] = None,
                 max_workers: int = 32) -> None:
        self.emulator = emulator
        self.host = host
        self.http_port = http_port
        self.https_port = https_port if ssl_context is not None else None
        self.ssl_context = ssl_context
        self.max_workers = max_workers
        #: Runs blocking emulator calls for the handlers (a sync command blocks up to its timeout).
        self.executor: Optional[ThreadPoolExecutor] = None
        self._thread: Optional[threading.Thread] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._servers: List[HTTPServer] = []
        self._sockets: List[socket.socket] = []
        self.app: Optional[tornado.web.Application] = None

    # ---- application ----------------------------------------------------------------------------
    def _service_routes(self) -> List[tuple]:
        routes: List[tuple] = []
        for service in self._services():
            try:
                extra = service.http_routes() or []
            except Exception:  # a broken service must not take the HTTP side down
                log.exception("http_routes() of %s failed", type(service).__name__)
                continue
            routes.extend(extra)
        return routes

    def _services(self) -> Iterable[Any]:
        core = getattr(self.emulator, "core", None)
        services = getattr(core, "services", None)
        if services is None:
            return []
        if isinstance(services, dict):
            # one instance may be registered under several service ids
            seen, unique = set(), []
            for svc in services.values():
                if id(svc) not in seen:
                    seen.add(id(svc))
                    unique.append(svc)
            return unique
        return list(services)

    def make_app(self) -> tornado.web.Application:
        """Build the tornado application (REST API, service routes, console)."""
        routes: List[tuple] = list(rest.routes(self))
        routes.extend(self._service_routes())
        routes.extend(console_routes(self.emulator, executor=lambda: self.executor))  # page, static files, JSON API
        app = tornado.web.Application(
            routes,
            default_handler_class=rest.NotFoundHandler,
            default_handler_args={"server": self},
            log_function=_quiet_log,
            compress_response=False,
        )
        app.add_transform(_NoSniff)
        return app

    def _host_names(self) -> List[Optional[str]]:
        """Names a request's ``Host`` may carry besides localhost and IP literals (see :mod:`.guard`)."""
        return [self.host, getattr(self.emulator, "advertise_host", None)]

    # ---- life cycle -----------------------------------------------------------------------------
    def start(self) -> "HttpServer":
        """Bind the ports and serve in a daemon thread; returns once the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError("HttpServer already started")
        self.executor = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="emu-http-worker")
        http_sockets = bind_sockets(self.http_port or 0, address=self.host)
        self._sockets.extend(http_sockets)
        self.http_port = http_sockets[0].getsockname()[1]
        https_sockets: List[socket.socket] = []
        if self.ssl_context is not None and self.https_port is not None:
            try:
                https_sockets = bind_sockets(self.https_port or 0, address=self.host)
            except OSError:
                self._close_sockets()
                raise
            self._sockets.extend(https_sockets)
            self.https_port = https_sockets[0].getsockname()[1]

        def serve(loop: asyncio.AbstractEventLoop) -> None:
            self.app = self.make_app()
            # every request passes the guard first (host, origin, content type, body size: see guard.py)
            guarded = RequestGuard(self.app, self._host_names, body_limit=rest.MAX_BODY + 1024)
            server = HTTPServer(guarded, xheaders=False)
            server.add_sockets(http_sockets)
            self._servers.append(server)
            if https_sockets:
                tls_server = HTTPServer(guarded, ssl_options=self.ssl_context)
                tls_server.add_sockets(https_sockets)
                self._servers.append(tls_server)

        try:
            self._loop, self._thread = start_loop_thread("emu-http", serve)
        except BaseException:
            self._close_sockets()
            self.executor.shutdown(wait=False)
            raise
        log.info("HTTP API on http://%s:%s%s", self.host, self.http_port,
                 f", HTTPS on https://{self.host}:{self.https_port}" if https_sockets else "")
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, close the ports and the worker pool (idempotent)."""
        thread, loop = self._thread, self._loop
        if thread is None:
            return

        async def shutdown() -> None:
            for server in self._servers:
                server.stop()
            for server in self._servers:
                try:
                    await asyncio.wait_for(server.close_all_connections(), 1.0)
                except Exception:
                    pass
            asyncio.get_event_loop().stop()

        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(lambda: asyncio.ensure_future(shutdown()))
            except RuntimeError:  # loop already closed
                pass
        thread.join(timeout)
        if thread.is_alive():
            log.warning("HTTP server thread did not stop within %.1fs", timeout)
        self._thread = None
        self._servers = []
        self._close_sockets()
        if self.executor is not None:
            # Requests still waiting for a device (sync commands) are abandoned, not awaited.
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = None

    def _close_sockets(self) -> None:
        for sock in self._sockets:
            try:
                sock.close()
            except OSError:
                pass
        self._sockets = []

    @property
    def url(self) -> str:
        """``http://host:port`` of the plain HTTP listener."""
        return f"http://{self.host}:{self.http_port}"

    def __enter__(self) -> "HttpServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
