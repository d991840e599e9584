"""HTTP(S) download and upload helpers used by OTA and the file manager.

Facts kept here (and nowhere else):

* TLS verification is always on: ``ca_file=None`` means the default trust store of ``requests``,
  a path means "trust exactly this CA bundle". There is no switch to turn it off.
* Downloads stream to ``<dest>.part`` in chunks, resume after a cut with ``Range: bytes=N-`` (bounded
  retries), check the size and the SHA-256 before renaming the file into place, and delete the partial
  file on any failure.
* Free disk space is checked against the expected size before and while downloading.
* Presigned URLs and bearer tokens never reach a log line or an exception message: URLs are logged
  through :func:`redact_url` and exception texts from ``requests`` are scrubbed of query strings.
"""
from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from typing import BinaryIO, Callable, Dict, Optional, Union
from urllib.parse import urlsplit, urlunsplit

import requests

from iot_device_sdk_python.errors import IotDeviceError

_LOG = logging.getLogger(__name__)

_CHUNK = 64 * 1024
_SPACE_CHECK_EVERY = 1024 * 1024      # bytes written between two free-space checks
_QUERY_RE = re.compile(r"\?[^\s'\"<>)]*")
_BEARER_RE = re.compile(r"(?i)(bearer\s+)[^\s'\"]+")

ProgressCallback = Callable[[int, Optional[int]], None]


class _RedactQueryFilter(logging.Filter):
    """Scrubs query strings from urllib3's DEBUG request lines, which would show presigned signatures."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(scrub(a) if isinstance(a, str) and "?" in a else a for a in record.args)
        elif isinstance(record.msg, str) and "?" in record.msg and not record.args:
            record.msg = scrub(record.msg)
        return True


def _install_urllib3_redaction() -> None:
    # Installed once at import: requests' transport logs full request URLs at DEBUG.
    target = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _RedactQueryFilter) for f in target.filters):
        target.addFilter(_RedactQueryFilter())


class TransferError(IotDeviceError):
    """A transfer failed; ``kind`` says why (one of the class constants).

    ``status_code`` is the HTTP status when the server answered, else None. The message never
    contains a token or a presigned query string.
    """

    TIMEOUT = "timeout"   # connection lost / timed out, retries exhausted
    HTTP = "http"         # the server refused (4xx/5xx), e.g. an expired token or URL
    TLS = "tls"           # certificate verification failed
    CHECK = "check"       # size or SHA-256 mismatch
    SPACE = "space"       # not enough free disk space
    IO = "io"             # local file error
    INPUT = "input"       # bad argument (URL, file name)
    CANCELLED = "cancelled"  # stopped by the caller (``stop()`` returned True)

    def __init__(self, kind: str, message: str, status_code: Optional[int] = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status_code = status_code

    def __repr__(self) -> str:
        return f"TransferError(kind={self.kind!r}, message={str(self)!r}, status_code={self.status_code!r})"


@dataclass
class DownloadResult:
    """What :func:`download` produced."""

    path: str            # final file path
    size: int            # bytes written
    sha256: str          # hex digest of the file
    status_code: int     # HTTP status of the last response (200 or 206)
    resumed: int = 0     # how many times the transfer was resumed after a cut


def redact_url(url: object) -> str:
    """``url`` without user info, query string and fragment: safe to log.

    ``https://host/p/a?X-Signature=...`` → ``https://host/p/a?<redacted>``.
    """
    if not isinstance(url, str):
        return "<no url>"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    netloc = parts.netloc.rpartition("@")[2]
    query = "<redacted>" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def scrub(text: str) -> str:
    """Remove query strings and bearer tokens from a free text (e.g. a ``requests`` error message)."""
    return _BEARER_RE.sub(r"\1<redacted>", _QUERY_RE.sub("?<redacted>", text))


def safe_join(directory: str, file_name: str) -> str:
    """Path of ``file_name`` inside ``directory``; rejects anything that could leave it.

    Raises ``ValueError`` for an empty name, ``.``/``..``, path separators, NUL, or a name longer than
    255 characters. The directory itself is resolved (symlinks followed) first.
    """
    if not isinstance(file_name, str) or not file_name or file_name in (".", ".."):
        raise ValueError("invalid file name")
    if len(file_name) > 255 or any(c in file_name for c in ("/", "\\", "\x00")):
        raise ValueError(f"invalid file name {file_name[:64]!r}")
    base = os.path.realpath(directory)
    path = os.path.join(base, file_name)
    if os.path.dirname(path) != base:
        raise ValueError(f"invalid file name {file_name[:64]!r}")
    return path


def sha256_file(path: str) -> str:
    """SHA-256 hex digest of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _verify(ca_file: Optional[str]) -> Union[bool, str]:
    # requests: True = its default CA bundle; a path = that bundle. Never False.
    if ca_file is None:
        return True
    if not isinstance(ca_file, str) or not os.path.isfile(ca_file):
        raise TransferError(TransferError.INPUT, f"CA file not found: {ca_file!r}")
    return ca_file


def _free_bytes(directory: str) -> int:
    return shutil.disk_usage(directory).free


def _check_space(directory: str, needed: int, reserve_bytes: int) -> None:
    if needed <= 0:
        return
    free = _free_bytes(directory)
    if free - reserve_bytes < needed:
        raise TransferError(TransferError.SPACE,
                            f"not enough disk space: need {needed} bytes, {max(free - reserve_bytes, 0)} available")


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        _LOG.warning("could not remove %s: %s", path, exc)


def _content_range_start(value: Optional[str]) -> Optional[int]:
    # "bytes 100-199/200" -> 100
    m = re.match(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", value or "")
    return int(m.group(1)) if m else None


def download(url: str, dest_path: str, *, headers: Optional[Dict[str, str]] = None,
             ca_file: Optional[str] = None, timeout: float = 30.0,
             expected_size: Optional[int] = None, expected_sha256: Optional[str] = None,
             progress: Optional[ProgressCallback] = None, max_retries: int = 3,
             reserve_bytes: int = 0, chunk_size: int = _CHUNK,
             session: Optional[requests.Session] = None,
             stop: Optional[Callable[[], bool]] = None,
             commit: Optional[Callable[[], bool]] = None) -> DownloadResult:
    """Download ``url`` to ``dest_path`` (written as ``dest_path + ".part"`` then renamed).

    ``timeout`` is the connect/read socket timeout in seconds. ``expected_size`` (bytes) and
    ``expected_sha256`` (hex) are checked when given; a body longer than ``expected_size`` is cut short.
    ``progress(done_bytes, total_bytes_or_None)`` is called after each chunk. A connection cut or a
    timeout is retried up to ``max_retries`` times, resuming with ``Range`` when the server honours it.
    ``reserve_bytes`` is disk space that must stay free. ``stop()`` returning True aborts the transfer
    (checked before each request, between chunks and once more when the file is complete).
    ``commit()`` is called once the file is complete and checked, right before it replaces ``dest_path``:
    False aborts as cancelled, leaving ``dest_path`` untouched (the caller's point of no return).
    Returns a :class:`DownloadResult`; raises :class:`TransferError` (the partial file is removed).
    """
    if not isinstance(url, str) or not url.lower().startswith(("https://", "http://")):
        raise TransferError(TransferError.INPUT, "download URL must be http(s)")
    verify = _verify(ca_file)
    directory = os.path.dirname(os.path.abspath(dest_path))
    part = dest_path + ".part"
    safe_url = redact_url(url)
    if expected_size is not None:
        if not isinstance(expected_size, int) or isinstance(expected_size, bool) or expected_size < 0:
            raise TransferError(TransferError.INPUT, f"invalid expected size {expected_size!r}")
        _check_space(directory, expected_size, reserve_bytes)
    own_session = session is None
    sess = session or requests.Session()
    h = hashlib.sha256()
    have = 0
    attempts = 0
    resumed = 0
    status = 0
    progress_failed = False
    try:
        try:
            f = open(part, "wb")
        except OSError as exc:
            raise TransferError(TransferError.IO, f"cannot write {part}: {exc.strerror}") from None
        with f:
            while True:
                if stop is not None and stop():  # also after a retry's back-off
                    raise TransferError(TransferError.CANCELLED, "download cancelled")
                req_headers = dict(headers or {})
                if have:
                    req_headers["Range"] = f"bytes={have}-"
                try:
                    with sess.get(url, headers=req_headers, stream=True, timeout=timeout, verify=verify) as r:
                        status = r.status_code
                        if have and status == 206 and _content_range_start(r.headers.get("Content-Range")) == have:
                            resumed += 1
                            _LOG.info("resuming download of %s at byte %d", safe_url, have)
                        elif status in (200, 206) and not have and (status == 200 or
                                                                   _content_range_start(r.headers.get("Content-Range")) == 0):
                            pass
                        elif status == 200 and have:
                            # the server ignored Range: start again from byte 0
                            _LOG.info("server ignored Range for %s; restarting download", safe_url)
                            f.seek(0)
                            f.truncate()
                            h = hashlib.sha256()
                            have = 0
                        else:
                            raise TransferError(TransferError.HTTP, f"download refused: HTTP {status}", status)
                        total: Optional[int] = None
                        length = r.headers.get("Content-Length")
                        if length is not None and length.isdigit():
                            total = have + int(length)
                        if total is not None and expected_size is not None and total != expected_size:
                            raise TransferError(TransferError.CHECK,
                                                f"server size {total} differs from expected size {expected_size}")
                        if total is not None:
                            _check_space(directory, total - have, reserve_bytes)
                        since_check = 0
                        for chunk in r.iter_content(chunk_size):
                            if not chunk:
                                continue
                            if stop is not None and stop():
                                raise TransferError(TransferError.CANCELLED, "download cancelled")
                            if expected_size is not None and have + len(chunk) > expected_size:
                                raise TransferError(TransferError.CHECK,
                                                    f"body is larger than the expected size {expected_size}")
                            try:
                                f.write(chunk)
                            except OSError as exc:
                                kind = TransferError.SPACE if exc.errno == errno.ENOSPC else TransferError.IO
                                raise TransferError(kind, f"write failed: {exc.strerror}") from None
                            h.update(chunk)
                            have += len(chunk)
                            since_check += len(chunk)
                            if since_check >= _SPACE_CHECK_EVERY:
                                since_check = 0
                                f.flush()
                                remaining = (expected_size if expected_size is not None else (total or have)) - have
                                _check_space(directory, remaining, reserve_bytes)
                            if progress is not None and not progress_failed:
                                try:
                                    progress(have, expected_size if expected_size is not None else total)
                                except Exception:  # a user callback must not abort the transfer
                                    progress_failed = True
                                    _LOG.exception("download progress callback failed (further calls skipped)")
                        wanted = expected_size if expected_size is not None else total
                        if wanted is not None and have < wanted:
                            # the connection closed early without an error: treat as a cut
                            raise requests.exceptions.ChunkedEncodingError("body ended early")
                    break
                except requests.exceptions.SSLError as exc:
                    raise TransferError(TransferError.TLS, f"TLS verification failed: {scrub(str(exc))[:300]}") from None
                except (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                        requests.exceptions.ChunkedEncodingError) as exc:
                    attempts += 1
                    if attempts > max_retries:
                        raise TransferError(TransferError.TIMEOUT,
                                            f"download of {safe_url} failed after {attempts} attempts "
                                            f"({type(exc).__name__})") from None
                    _LOG.warning("download of %s interrupted at byte %d (%s); retry %d/%d",
                                 safe_url, have, type(exc).__name__, attempts, max_retries)
                    time.sleep(min(0.2 * (2 ** (attempts - 1)), 2.0))
                except requests.exceptions.RequestException as exc:
                    raise TransferError(TransferError.INPUT, f"download failed: {type(exc).__name__}: "
                                        f"{scrub(str(exc))[:300]}") from None
        digest = h.hexdigest()
        if expected_size is not None and have != expected_size:
            raise TransferError(TransferError.CHECK, f"size {have} differs from expected size {expected_size}")
        if expected_sha256 and digest != str(expected_sha256).strip().lower():
            raise TransferError(TransferError.CHECK, "SHA-256 of the download does not match the expected sign")
        # a stop asked from the last progress call must not let the file replace what is at dest_path
        if (stop is not None and stop()) or (commit is not None and not commit()):
            raise TransferError(TransferError.CANCELLED, "download cancelled")
        os.replace(part, dest_path)
        _LOG.info("downloaded %s (%d bytes) to %s", safe_url, have, dest_path)
        return DownloadResult(dest_path, have, digest, status, resumed)
    except BaseException:
        _remove(part)
        raise
    finally:
        if own_session:
            sess.close()


class _Stopped(Exception):
    """Raised inside the HTTP client by :class:`_ProgressReader` to abort a body mid-stream (not an
    ``OSError``, so neither urllib3 nor requests takes it for a network error to retry)."""


class _ProgressReader:
    """The upload body: a file read in the HTTP client's block size, telling ``progress`` and asking
    ``stop`` at every block."""

    def __init__(self, f: BinaryIO, size: int, progress: Optional[ProgressCallback],
                 stop: Optional[Callable[[], bool]]) -> None:
        self._f = f
        self._size = size
        self._done = 0
        self._progress = progress
        self._stop = stop

    def __len__(self) -> int:  # requests sizes the body with it
        return max(self._size - self._done, 0)

    def read(self, n: int = -1) -> bytes:
        if self._stop is not None and self._stop():
            raise _Stopped()
        chunk = self._f.read(n)
        if chunk and self._progress is not None:
            self._done += len(chunk)
            try:
                self._progress(self._done, self._size)
            except Exception:  # a user callback must not abort the transfer
                self._progress = None
                _LOG.exception("upload progress callback failed (further calls skipped)")
        return chunk


def upload(url: str, file_path: str, *, ca_file: Optional[str] = None, timeout: float = 60.0,
           headers: Optional[Dict[str, str]] = None, content_type: str = "application/octet-stream",
           max_retries: int = 2, session: Optional[requests.Session] = None,
           progress: Optional[ProgressCallback] = None, stop: Optional[Callable[[], bool]] = None) -> int:
    """HTTP PUT the file at ``file_path`` to ``url`` (e.g. a presigned object-store URL), streamed.

    A connection failure is retried (the whole body again) up to ``max_retries`` times. Returns the
    2xx status code; raises :class:`TransferError` (``HTTP`` carries the refusing status code).
    ``progress(bytes_sent, total_bytes)`` is called as the body is read into the connection (from 0 again
    on a retry); ``stop()`` returning True aborts mid-body with a ``CANCELLED`` error.
    """
    if not isinstance(url, str) or not url.lower().startswith(("https://", "http://")):
        raise TransferError(TransferError.INPUT, "upload URL must be http(s)")
    verify = _verify(ca_file)
    safe_url = redact_url(url)
    try:
        size = os.path.getsize(file_path)
    except OSError as exc:
        raise TransferError(TransferError.IO, f"cannot read {file_path}: {exc.strerror}") from None
    own_session = session is None
    sess = session or requests.Session()
    attempts = 0
    try:
        while True:
            if stop is not None and stop():  # also after a retry's back-off
                raise TransferError(TransferError.CANCELLED, "upload cancelled")
            req_headers = {"Content-Type": content_type, "Content-Length": str(size)}
            req_headers.update(headers or {})
            try:
                f = open(file_path, "rb")
            except OSError as exc:
                raise TransferError(TransferError.IO, f"cannot read {file_path}: {exc.strerror}") from None
            try:
                body = _ProgressReader(f, size, progress, stop)
                with f, sess.put(url, data=body, headers=req_headers, timeout=timeout, verify=verify) as r:
                    if 200 <= r.status_code < 300:
                        _LOG.info("uploaded %s (%d bytes) to %s", file_path, size, safe_url)
                        return r.status_code
                    raise TransferError(TransferError.HTTP, f"upload refused: HTTP {r.status_code}", r.status_code)
            except _Stopped:
                raise TransferError(TransferError.CANCELLED, "upload cancelled") from None
            except requests.exceptions.SSLError as exc:
                raise TransferError(TransferError.TLS, f"TLS verification failed: {scrub(str(exc))[:300]}") from None
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                attempts += 1
                if attempts > max_retries:
                    raise TransferError(TransferError.TIMEOUT,
                                        f"upload to {safe_url} failed ({type(exc).__name__})") from None
                _LOG.warning("upload to %s failed (%s); retry %d/%d", safe_url, type(exc).__name__,
                             attempts, max_retries)
                time.sleep(min(0.2 * (2 ** (attempts - 1)), 2.0))
            except requests.exceptions.RequestException as exc:
                raise TransferError(TransferError.INPUT,
                                    f"upload failed: {type(exc).__name__}: {scrub(str(exc))[:300]}") from None
    finally:
        if own_session:
            sess.close()


_install_urllib3_redaction()
