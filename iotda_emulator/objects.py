"""The emulator's object store: what OBS and IoTDA's file service are to the real platform.

Served by the emulator's tornado HTTP(S) server through the routes of :meth:`ObjectStore.routes`
(mounted by the ``$file_manager`` platform service's ``http_routes()``):

* ``GET/PUT /objects/{bucket}/{key}?X-Expires=..&X-Signature=..`` — presigned, expiring URLs (HMAC-SHA256
  over method, bucket, key, expiry and the declared size/hash). A PUT whose URL declared a size or
  SHA-256 (IoTDA's ``file_attributes``) is checked against the body and refused with 400 on a mismatch.
* ``GET /ota/v1/download/{key}`` with ``Authorization: Bearer {access_token}`` — OTA v1 package
  downloads; tokens expire.
* GETs honour a single ``Range: bytes=a-b`` (206 + ``Content-Range``; 416 when unsatisfiable).
* Object size is limited (``max_object_size``); a fault hook cuts the next download mid-stream once.

Presigned queries and tokens are never logged (the access log shows the path only).
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import tempfile
import threading
import time
import weakref
from typing import Any, Dict, List, Optional, Tuple, Union
from urllib.parse import quote

import tornado.iostream
import tornado.web

log = logging.getLogger(__name__)

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,62}$")
_CHUNK = 64 * 1024
DEFAULT_MAX_OBJECT_SIZE = 64 * 1024 * 1024

_stores: "weakref.WeakKeyDictionary[Any, ObjectStore]" = weakref.WeakKeyDictionary()
_stores_lock = threading.Lock()


class ObjectStoreError(Exception):
    """A refused request: ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _check_key(bucket: str, key: str) -> None:
    if not isinstance(bucket, str) or not _BUCKET_RE.match(bucket):
        raise ObjectStoreError(400, "InvalidBucketName", "invalid bucket name")
    if not isinstance(key, str) or not key or len(key) > 1024 or "\x00" in key or key.startswith("/"):
        raise ObjectStoreError(400, "InvalidObjectName", "invalid object name")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise ObjectStoreError(400, "InvalidObjectName", "invalid object name")


class ObjectStore:
    """Objects on disk (``root_dir``), presigned URLs, bearer tokens and the download-cut fault hook.

    Thread-safe: used from test threads, service threads and the tornado loop.
    """

    def __init__(self, root_dir: str, *, max_object_size: int = DEFAULT_MAX_OBJECT_SIZE,
                 base_url_fn=None) -> None:
        self.root_dir = root_dir
        os.makedirs(root_dir, exist_ok=True)
        self.max_object_size = max_object_size
        self._key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._objects: Dict[Tuple[str, str], dict] = {}
        self._tokens: Dict[str, Tuple[str, str, float]] = {}
        self._cuts: List[dict] = []
        self._base_url_fn = base_url_fn
        self.requests: List[dict] = []   # (method, bucket, key, status) of every object request, for tests

    # ---- one store per platform core ------------------------------------------------------------

    @classmethod
    def for_core(cls, core: Any) -> "ObjectStore":
        """The store shared by every platform service of ``core`` (created on first use)."""
        with _stores_lock:
            store = _stores.get(core)
            if store is None:
                emulator = getattr(core, "emulator", None)
                data_dir = getattr(emulator, "data_dir", None)
                root = os.path.join(data_dir, "objects") if data_dir else tempfile.mkdtemp(prefix="iotda-objects-")
                store = cls(root, base_url_fn=lambda scheme=None: _base_url_of(emulator, scheme))
                _stores[core] = store
            return store

    def base_url(self, scheme: Optional[str] = None) -> str:
        """``https://host:port`` of the emulator (HTTPS when it runs, else HTTP), or the ``scheme`` asked for."""
        if self._base_url_fn is None:
            raise RuntimeError("object store has no HTTP server")
        return self._base_url_fn(scheme)

    # ---- objects ----------------------------------------------------------------------------------

    def _path_for(self, bucket: str, key: str) -> str:
        digest = hashlib.sha256(f"{bucket}\n{key}".encode("utf-8")).hexdigest()
        return os.path.join(self.root_dir, digest)

    def put_object(self, bucket: str, key: str, data: Union[bytes, str]) -> dict:
        """Store ``data`` (bytes, or the path of a file to copy) as ``bucket/key``; returns its metadata
        (``size``, ``sha256``)."""
        _check_key(bucket, key)
        if isinstance(data, str):
            with open(data, "rb") as f:
                data = f.read()
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError("data must be bytes or a file path")
        if len(data) > self.max_object_size:
            raise ObjectStoreError(413, "EntityTooLarge", "object too large")
        tmp = self.new_temp_file()
        with open(tmp, "wb") as f:
            f.write(data)
        return self.commit_temp_file(bucket, key, tmp, len(data), hashlib.sha256(data).hexdigest())

    def new_temp_file(self) -> str:
        """A fresh temporary path inside the store (for streamed uploads)."""
        fd, path = tempfile.mkstemp(dir=self.root_dir, prefix=".upload-")
        os.close(fd)
        return path

    def commit_temp_file(self, bucket: str, key: str, tmp_path: str, size: int, sha256: str) -> dict:
        """Move a complete temporary file into place as ``bucket/key``."""
        path = self._path_for(bucket, key)
        os.replace(tmp_path, path)
        meta = {"bucket": bucket, "key": key, "size": size, "sha256": sha256, "path": path, "time": time.time()}
        with self._lock:
            self._objects[(bucket, key)] = meta
        return dict(meta)

    def stat(self, bucket: str, key: str) -> Optional[dict]:
        """Metadata of ``bucket/key`` (``size``, ``sha256``, ``path``, ``time``) or None."""
        with self._lock:
            meta = self._objects.get((bucket, key))
            return dict(meta) if meta else None

    def get_object(self, bucket: str, key: str) -> Optional[bytes]:
        """The bytes of ``bucket/key`` or None."""
        meta = self.stat(bucket, key)
        if meta is None:
            return None
        with open(meta["path"], "rb") as f:
            return f.read()

    def delete_object(self, bucket: str, key: str) -> bool:
        """Delete ``bucket/key``; True when it existed."""
        with self._lock:
            meta = self._objects.pop((bucket, key), None)
        if meta is None:
            return False
        try:
            os.remove(meta["path"])
        except OSError:
            pass
        return True

    def list_objects(self, bucket: Optional[str] = None) -> List[dict]:
        """Metadata of every object (of one bucket)."""
        with self._lock:
            return [dict(m) for (b, _k), m in self._objects.items() if bucket is None or b == bucket]

    # ---- presigned URLs -----------------------------------------------------------------------------

    def _signature(self, method: str, bucket: str, key: str, expires: int, size: Optional[int],
                   sha256: Optional[str]) -> str:
        msg = "\n".join([method.upper(), bucket, key, str(expires), "" if size is None else str(size),
                         sha256 or ""])
        return hmac.new(self._key, msg.encode("utf-8"), hashlib.sha256).hexdigest()

    def presign(self, method: str, bucket: str, key: str, expires_in: int = 3600, *,
                size: Optional[int] = None, sha256: Optional[str] = None, scheme: Optional[str] = None) -> str:
        """A URL for ``method`` (GET or PUT) on ``bucket/key`` valid ``expires_in`` seconds (0: already expired).

        ``size``/``sha256`` (PUT) bind the declared attributes: the upload must match them.
        """
        _check_key(bucket, key)
        expires = int(time.time()) + int(expires_in)
        sha = sha256.lower() if isinstance(sha256, str) and sha256 else None
        sig = self._signature(method, bucket, key, expires, size, sha)
        query = f"X-Expires={expires}"
        if size is not None:
            query += f"&X-Size={int(size)}"
        if sha:
            query += f"&X-Sha256={quote(sha, safe='')}"
        query += f"&X-Signature={sig}"
        return f"{self.base_url(scheme)}/objects/{quote(bucket, safe='')}/{quote(key, safe='/')}?{query}"

    def check_presigned(self, method: str, bucket: str, key: str, args: Dict[str, str]) -> dict:
        """Validate a presigned request's query args; returns ``{"size", "sha256"}`` constraints.

        Raises :class:`ObjectStoreError` 403 when missing, forged or expired.
        """
        try:
            expires = int(args.get("X-Expires", ""))
        except ValueError:
            raise ObjectStoreError(403, "AccessDenied", "missing or invalid signature") from None
        size_txt = args.get("X-Size")
        size = int(size_txt) if size_txt is not None and size_txt.isdigit() else None
        if size_txt is not None and size is None:
            raise ObjectStoreError(403, "AccessDenied", "missing or invalid signature")
        sha = args.get("X-Sha256") or None
        expected = self._signature(method, bucket, key, expires, size, sha)
        if not hmac.compare_digest(expected, args.get("X-Signature", "")):
            raise ObjectStoreError(403, "SignatureDoesNotMatch", "missing or invalid signature")
        if time.time() >= expires:
            raise ObjectStoreError(403, "RequestExpired", "the URL has expired")
        return {"size": size, "sha256": sha}

    # ---- bearer tokens (OTA v1) ---------------------------------------------------------------------

    def issue_token(self, bucket: str, key: str, ttl: int) -> str:
        """A random access token allowing a GET of ``bucket/key`` for ``ttl`` seconds (0: already expired)."""
        _check_key(bucket, key)
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = time.time()
            for t in [t for t, (_b, _k, exp) in self._tokens.items() if exp < now - 3600]:
                del self._tokens[t]   # forget tokens long expired
            self._tokens[token] = (bucket, key, now + int(ttl))
        return token

    def token_url(self, key: str, scheme: Optional[str] = None) -> str:
        """The bearer-protected download URL of an object of the ``ota-packages`` bucket."""
        return f"{self.base_url(scheme)}/ota/v1/download/{quote(key, safe='/')}"

    def check_token(self, authorization: Optional[str], bucket: str, key: str) -> None:
        """Raise :class:`ObjectStoreError` 401 unless ``authorization`` is a live bearer token for the object."""
        m = re.match(r"^\s*Bearer\s+(\S+)\s*$", authorization or "", re.IGNORECASE)
        if not m:
            raise ObjectStoreError(401, "Unauthorized", "bearer token required")
        with self._lock:
            entry = self._tokens.get(m.group(1))
        if entry is None or entry[0] != bucket or entry[1] != key:
            raise ObjectStoreError(401, "Unauthorized", "invalid token")
        if time.time() >= entry[2]:
            raise ObjectStoreError(401, "TokenExpired", "the token has expired")

    # ---- faults -------------------------------------------------------------------------------------

    def cut_next_download(self, after_bytes: Optional[int] = None, key_contains: Optional[str] = None) -> None:
        """Cut the next matching download once: the connection is closed after ``after_bytes`` bytes of the
        body (default: half of it)."""
        with self._lock:
            self._cuts.append({"after": after_bytes, "match": key_contains})

    def _take_cut(self, key: str, length: int) -> Optional[int]:
        with self._lock:
            for i, cut in enumerate(self._cuts):
                if cut["match"] is None or cut["match"] in key:
                    del self._cuts[i]
                    after = cut["after"] if cut["after"] is not None else length // 2
                    return max(0, min(int(after), max(length - 1, 0)))
        return None

    def _record(self, method: str, bucket: str, key: str, status: int) -> None:
        with self._lock:
            self.requests.append({"method": method, "bucket": bucket, "key": key, "status": status,
                                  "time": time.time()})
            del self.requests[:-1000]

    # ---- tornado --------------------------------------------------------------------------------------

    def routes(self) -> List[tuple]:
        """Tornado routes of the store (object GET/PUT and OTA v1 token downloads)."""
        return [
            (r"/objects/([^/]+)/(.+)", ObjectHandler, {"store": self}),
            (r"/ota/v1/download/(.+)", TokenDownloadHandler, {"store": self}),
        ]


def _base_url_of(emulator: Any, scheme: Optional[str] = None) -> str:
    # the advertised name: covered by the server certificate, reachable even when listening on 0.0.0.0
    host = getattr(emulator, "advertise_host", None) or getattr(emulator, "host", "127.0.0.1") or "127.0.0.1"
    https_port = getattr(emulator, "https_port", 0) or 0
    http_port = getattr(emulator, "http_port", 0) or 0
    if scheme == "http" or (scheme is None and not https_port):
        if not http_port:
            raise RuntimeError("the emulator's HTTP server is not running")
        return f"http://{host}:{http_port}"
    if not https_port:
        raise RuntimeError("the emulator's HTTPS server is not running")
    return f"https://{host}:{https_port}"


_TOKEN_CHARS = re.compile(r"^[A-Za-z0-9!#$&+.^_`|~-]+$")


def content_disposition(file_name: str) -> str:
    """``attachment; filename=...`` for a download: the bare name when it is an HTTP token, else a quoted
    ASCII fallback plus RFC 5987's ``filename*`` with the UTF-8 name."""
    if _TOKEN_CHARS.match(file_name):
        return f"attachment; filename={file_name}"
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in file_name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name, safe='')}"


def _parse_range(header: Optional[str], size: int) -> Optional[Tuple[int, int]]:
    """``(start, end)`` inclusive for a single byte range, None for no Range; raises ValueError if unsatisfiable."""
    if not header:
        return None
    m = re.match(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", header)
    if not m or (not m.group(1) and not m.group(2)):
        raise ValueError("bad range")
    if m.group(1):
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) else size - 1
    else:
        suffix = int(m.group(2))
        if suffix == 0:
            raise ValueError("bad range")
        start, end = max(size - suffix, 0), size - 1
    end = min(end, size - 1)
    if start >= size or start > end:
        raise ValueError("unsatisfiable")
    return start, end


class _StoreHandler(tornado.web.RequestHandler):
    """Shared parts: JSON errors, redacted access log, ranged streaming GET."""

    def initialize(self, store: ObjectStore) -> None:  # noqa: D401 - tornado hook
        self.store = store

    def check_xsrf_cookie(self) -> None:
        pass

    def _request_summary(self) -> str:
        # tornado's access log would print the URI with its presigned query: path only
        return f"{self.request.method} {self.request.path} ({self.request.remote_ip})"

    def refuse(self, exc: ObjectStoreError) -> None:
        self.set_status(exc.status)
        self.set_header("Content-Type", "application/json")
        self.finish({"error_code": exc.code, "error_msg": str(exc)})

    async def send_object(self, bucket: str, key: str, file_name: Optional[str] = None) -> None:
        meta = self.store.stat(bucket, key)
        if meta is None:
            self.store._record("GET", bucket, key, 404)
            self.refuse(ObjectStoreError(404, "NoSuchKey", "no such object"))
            return
        size = meta["size"]
        try:
            rng = _parse_range(self.request.headers.get("Range"), size)
        except ValueError:
            self.store._record("GET", bucket, key, 416)
            self.set_header("Content-Range", f"bytes */{size}")
            self.refuse(ObjectStoreError(416, "InvalidRange", "range not satisfiable"))
            return
        start, end = rng if rng else (0, size - 1)
        length = max(end - start + 1, 0)
        if rng:
            self.set_status(206)
            self.set_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.set_header("Accept-Ranges", "bytes")
        self.set_header("Content-Type", "application/octet-stream")
        if file_name:
            self.set_header("Content-Disposition", content_disposition(file_name))
        self.set_header("Content-Length", str(length))
        self.set_header("ETag", f'"{meta["sha256"]}"')
        self.store._record("GET", bucket, key, 206 if rng else 200)
        cut = self.store._take_cut(key, length)
        sent = 0
        with open(meta["path"], "rb") as f:
            f.seek(start)
            while sent < length:
                chunk = f.read(min(_CHUNK, length - sent))
                if not chunk:
                    break
                if cut is not None and sent + len(chunk) > cut:
                    self.write(chunk[:cut - sent])
                    await self.flush()
                    log.info("object store: cutting the download of %s/%s after %d bytes (fault)", bucket, key, cut)
                    self.request.connection.stream.close()
                    self._finished = True  # the connection is gone: tornado must not finish the response
                    return
                self.write(chunk)
                try:
                    await self.flush()
                except tornado.iostream.StreamClosedError:
                    # the client went away mid-body (a cancelled download): nobody is left to answer, and
                    # tornado's own error log would print the URI with its presigned query
                    log.info("object store: client closed the download of %s/%s after %d bytes", bucket, key, sent)
                    self._finished = True
                    return
                sent += len(chunk)
        self.finish()


@tornado.web.stream_request_body
class ObjectHandler(_StoreHandler):
    """``/objects/{bucket}/{key}``: presigned GET (download) and PUT (upload, checked against the declared
    size and SHA-256)."""

    # Also set when prepare() never ran (tornado refuses a path that is not UTF-8 before it): on_finish reads them.
    _tmp: Optional[str] = None
    _file: Any = None

    def prepare(self) -> None:
        self._tmp = None
        self._file = None
        self._size = 0
        self._hash = hashlib.sha256()
        self._too_big = False
        if self.request.method != "PUT":
            return
        bucket, key = self.path_args[0], self.path_args[1]
        try:
            _check_key(bucket, key)
            self._constraints = self.store.check_presigned("PUT", bucket, key,
                                                           {k: self.get_query_argument(k) for k in
                                                            self.request.query_arguments})
        except ObjectStoreError as exc:
            self.store._record("PUT", bucket, key, exc.status)
            self.refuse(exc)
            return
        declared = self.request.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > self.store.max_object_size:
            self.store._record("PUT", bucket, key, 413)
            self.refuse(ObjectStoreError(413, "EntityTooLarge", "object too large"))
            return
        self.request.connection.set_max_body_size(self.store.max_object_size)
        self._tmp = self.store.new_temp_file()
        self._file = open(self._tmp, "wb")

    def data_received(self, chunk: bytes) -> None:
        if self._file is None:
            return
        self._size += len(chunk)
        if self._size > self.store.max_object_size:
            self._too_big = True
            return
        self._file.write(chunk)
        self._hash.update(chunk)

    def _discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tmp is not None:
            try:
                os.remove(self._tmp)
            except OSError:
                pass
            self._tmp = None

    def on_finish(self) -> None:
        self._discard()

    def on_connection_close(self) -> None:
        self._discard()

    def put(self, bucket: str, key: str) -> None:
        if self._file is None:
            return
        self._file.close()
        self._file = None
        status, err = 200, None
        if self._too_big:
            status, err = 413, ObjectStoreError(413, "EntityTooLarge", "object too large")
        elif self._constraints["size"] is not None and self._size != self._constraints["size"]:
            err = ObjectStoreError(400, "SizeMismatch",
                                   f"body has {self._size} bytes, {self._constraints['size']} were declared")
        elif self._constraints["sha256"] and self._hash.hexdigest() != self._constraints["sha256"]:
            err = ObjectStoreError(400, "BadDigest", "SHA-256 of the body differs from the declared hash_code")
        if err is not None:
            self.store._record("PUT", bucket, key, err.status)
            self.refuse(err)
            return
        tmp, self._tmp = self._tmp, None
        meta = self.store.commit_temp_file(bucket, key, tmp, self._size, self._hash.hexdigest())
        self.store._record("PUT", bucket, key, status)
        self.set_header("ETag", f'"{meta["sha256"]}"')
        self.finish()

    async def get(self, bucket: str, key: str) -> None:
        try:
            _check_key(bucket, key)
            self.store.check_presigned("GET", bucket, key,
                                       {k: self.get_query_argument(k) for k in self.request.query_arguments})
        except ObjectStoreError as exc:
            self.store._record("GET", bucket, key, exc.status)
            self.refuse(exc)
            return
        await self.send_object(bucket, key)


class TokenDownloadHandler(_StoreHandler):
    """``/ota/v1/download/{key}``: OTA v1 package download with ``Authorization: Bearer {access_token}``."""

    BUCKET = "ota-packages"

    async def get(self, key: str) -> None:
        try:
            _check_key(self.BUCKET, key)
            self.store.check_token(self.request.headers.get("Authorization"), self.BUCKET, key)
        except ObjectStoreError as exc:
            self.store._record("GET", self.BUCKET, key, exc.status)
            if exc.status == 401:
                self.set_header("WWW-Authenticate", 'Bearer realm="iotda-emulator"')
            self.refuse(exc)
            return
        # IoTDA's v1 package download names the file (clients such as Huawei's C SDK save it under that name)
        await self.send_object(self.BUCKET, key, file_name=key.rsplit("/", 1)[-1])
