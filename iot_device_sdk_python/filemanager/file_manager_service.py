"""``FileManagerService``: the ``$file_manager`` system service (file upload/download through OBS).

Upstream API kept: ``upload_file`` / ``download_file`` register a local path and ask the platform for a
URL; the :class:`FileManagerListener` gets the :class:`UrlInfo` and the application does the HTTP transfer
and calls ``report_upload_result`` / ``report_download_result``.

Fixed against upstream: the caller's ``file_attributes`` are sent as given (upstream sent ``{}``); the same
file name can be uploaded or downloaded again (upstream ignored it forever); ``UrlInfo.file_attributes``
is parsed.

Beyond upstream: :meth:`FileManagerService.transfer_upload` and :meth:`FileManagerService.transfer_download`
do the whole job on a worker thread — ask for the URL, HTTP PUT/GET with TLS verification, check size and
SHA-256, report the result — and return a :class:`TransferFuture`, which reports progress to a callback and
whose ``cancel()`` stops the transfer mid-stream. For those transfers the listener is not called
(it would transfer the file a second time); plain ``upload_file``/``download_file`` keep calling it.
"""
from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

from iot_device_sdk_python.client.request.device_event import DeviceEvent
from iot_device_sdk_python.errors import IotDeviceError
from iot_device_sdk_python.filemanager.file_manager_listener import FileManagerListener
from iot_device_sdk_python.filemanager.url_info import UrlInfo
from iot_device_sdk_python.service.abstract_service import AbstractService
from iot_device_sdk_python.transfer import http_transfer
from iot_device_sdk_python.transfer.http_transfer import ProgressCallback, TransferError
from iot_device_sdk_python.transfer.transfer_future import TransferFuture
from iot_device_sdk_python.transport.action_listener import ActionListener
from iot_device_sdk_python.transport.publish_handle import PublishHandle

_LOG = logging.getLogger(__name__)

_UPLOAD = "upload"
_DOWNLOAD = "download"


@dataclass
class FileTransferResult:
    """Outcome of a successful :meth:`FileManagerService.transfer_upload` / ``transfer_download``."""

    object_name: str
    file_path: str
    status_code: int
    size: int
    sha256: str


class FileTransferError(IotDeviceError):
    """A managed transfer failed (the failure was reported to the platform when a URL had been granted).

    ``status_code`` is the HTTP status when the object store answered, ``kind`` a ``TransferError`` kind
    (or ``"url_timeout"`` when the platform never granted a URL).
    """

    def __init__(self, message: str, status_code: Optional[int] = None, kind: Optional[str] = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.kind = kind


@dataclass
class _Pending:
    direction: str
    file_name: str
    file_path: str
    file_attributes: Optional[Dict[str, Any]]
    ca_file: Optional[str]
    timeout: float
    future: "TransferFuture[FileTransferResult]"
    timer: Optional[threading.Timer] = None
    progress: Optional[ProgressCallback] = None


class FileManagerService(AbstractService):
    """The ``$file_manager`` service registered on every device (``device.get_file_manager_service()``)."""

    _SERVICE_ID = "$file_manager"

    def __init__(self) -> None:
        super().__init__()
        self._listener: Optional[FileManagerListener] = None
        self._upload_file_dict: Dict[str, str] = {}
        self._download_file_dict: Dict[str, str] = {}
        self._pending: List[_Pending] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()  # set by on_destroy: running transfers stop at their next chunk

    # ---- state and listener ---------------------------------------------------------------------

    @property
    def upload_file_dict(self) -> Dict[str, str]:
        """file name → local path of the files registered for upload (a copy)."""
        with self._lock:
            return dict(self._upload_file_dict)

    @property
    def download_file_dict(self) -> Dict[str, str]:
        """file name → local path of the files registered for download (a copy)."""
        with self._lock:
            return dict(self._download_file_dict)

    def get_listener(self) -> Optional[FileManagerListener]:
        """The listener set with :meth:`set_listener`, or None."""
        return self._listener

    def set_listener(self, listener: FileManagerListener) -> None:
        """Set the listener that receives upload/download URLs for ``upload_file``/``download_file``."""
        if listener is not None and not isinstance(listener, FileManagerListener) and not (
                callable(getattr(listener, "on_upload_url", None))
                and callable(getattr(listener, "on_download_url", None))):
            _LOG.error("set_listener: %s is not a FileManagerListener; ignored", type(listener).__name__)
            return
        self._listener = listener

    # ---- upstream API ------------------------------------------------------------------------------

    def upload_file(self, file_name: str, file_path: str,
                    file_attributes: Optional[Dict[str, Any]] = None) -> PublishHandle:
        """Register ``file_path`` under ``file_name`` (replacing an earlier one) and ask for an upload URL.

        Without ``file_attributes`` the SHA-256 and size of the file are sent. Returns the publish handle.
        """
        with self._lock:
            self._upload_file_dict[file_name] = file_path
        return self.get_upload_file_url(file_name, file_attributes)

    def get_upload_file_url(self, file_name: str, file_attributes: Optional[Dict[str, Any]] = None,
                            listener: Optional[ActionListener] = None) -> PublishHandle:
        """Publish ``get_upload_url`` for ``file_name``.

        ``file_attributes`` are sent exactly as given; when None and the name was registered with
        :meth:`upload_file`, ``{"hash_code": sha256_hex, "size": bytes}`` of that file is sent.
        Returns the publish handle.
        """
        paras: Dict[str, Any] = {"file_name": file_name}
        attrs = file_attributes
        if attrs is None:
            with self._lock:
                path = self._upload_file_dict.get(file_name)
            if path is not None:
                attrs = self._attributes_of(path)
        if attrs is not None:
            paras["file_attributes"] = attrs
        return self._report_event("get_upload_url", paras, listener)

    def download_file(self, file_name: str, file_path: str,
                      file_attributes: Optional[Dict[str, Any]] = None) -> PublishHandle:
        """Register ``file_path`` as the destination of ``file_name`` and ask for a download URL.

        Returns the publish handle.
        """
        with self._lock:
            self._download_file_dict[file_name] = file_path
        return self.get_download_file_url(file_name, file_attributes)

    def get_download_file_url(self, file_name: str, file_attributes: Optional[Dict[str, Any]] = None,
                              listener: Optional[ActionListener] = None) -> PublishHandle:
        """Publish ``get_download_url`` for ``file_name`` (``file_attributes`` sent as given when not None).

        Returns the publish handle.
        """
        paras: Dict[str, Any] = {"file_name": file_name}
        if file_attributes is not None:
            paras["file_attributes"] = file_attributes
        return self._report_event("get_download_url", paras, listener)

    def report_upload_result(self, object_name: str, result_code: int, status_code: Optional[int] = None,
                             status_description: Optional[str] = None,
                             listener: Optional[ActionListener] = None) -> PublishHandle:
        """Publish ``upload_result_report`` (``result_code`` 0 success, 1 failure). Returns the publish handle."""
        return self._report_event("upload_result_report",
                            self._result_paras(object_name, result_code, status_code, status_description), listener)

    def report_download_result(self, object_name: str, result_code: int, status_code: Optional[int] = None,
                               status_description: Optional[str] = None,
                               listener: Optional[ActionListener] = None) -> PublishHandle:
        """Publish ``download_result_report`` (``result_code`` 0 success, 1 failure). Returns the publish handle."""
        return self._report_event("download_result_report",
                            self._result_paras(object_name, result_code, status_code, status_description), listener)

    def on_event(self, device_event: DeviceEvent) -> None:
        """Handle ``get_upload_url_response`` / ``get_download_url_response`` (dispatcher thread).

        A response that matches a pending managed transfer starts it on a worker thread; any other goes
        to the listener (``on_upload_url`` / ``on_download_url``).
        """
        event_type = getattr(device_event, "event_type", None)
        paras = getattr(device_event, "paras", None)
        if event_type not in ("get_upload_url_response", "get_download_url_response"):
            _LOG.warning("unknown $file_manager event type %r; ignored", event_type)
            return
        if not isinstance(paras, dict) or not isinstance(paras.get("url"), str) or not paras.get("url"):
            _LOG.error("$file_manager %s without a url; ignored", event_type)
            return
        url_info = UrlInfo()
        url_info.convert_from_dict(paras)
        direction = _UPLOAD if event_type == "get_upload_url_response" else _DOWNLOAD
        pending = self._take_pending(direction, url_info)
        if pending is not None:
            try:
                threading.Thread(target=self._run_transfer, args=(pending, url_info),
                                 name=f"file-{direction}", daemon=True).start()
            except RuntimeError as exc:  # no thread to be had: end the future rather than leave it waiting
                _LOG.error("cannot start the %s of %r: %s", direction, pending.file_name, exc)
                pending.future._finish(exc=FileTransferError(f"cannot start the {direction}: {exc}",
                                                             kind="internal"))
            return
        listener = self._listener
        if listener is None:
            _LOG.warning("$file_manager %s received but no FileManagerListener is set; ignored", event_type)
            return
        try:
            if direction == _UPLOAD:
                listener.on_upload_url(url_info)
            else:
                listener.on_download_url(url_info)
        except Exception:
            _LOG.exception("FileManagerListener failed on %s", event_type)

    # ---- managed transfers (beyond upstream) -----------------------------------------------------------

    def transfer_upload(self, file_name: str, file_path: str, file_attributes: Optional[Dict[str, Any]] = None, *,
                        ca_file: Optional[str] = None, timeout: float = 60.0,
                        url_timeout: float = 30.0,
                        progress: Optional[ProgressCallback] = None) -> "TransferFuture[FileTransferResult]":
        """Upload ``file_path`` as ``file_name`` end to end; returns a ``Future`` of :class:`FileTransferResult`.

        Asks for an upload URL (``file_attributes`` as given, else the file's SHA-256 and size), PUTs the
        file with TLS verified against ``ca_file`` (None: default CAs), then reports the result (0 on a 2xx,
        else 1 with the HTTP status). The future raises :class:`FileTransferError` on failure, also when no
        URL arrives within ``url_timeout`` seconds.

        ``progress(bytes_sent, total_bytes)`` is called on the transfer thread as the body goes out.
        ``future.cancel()`` stops the upload (also while waiting for the URL); a transfer stopped
        mid-stream is reported to the platform as failed ("cancelled"). Once the server has accepted the
        body, ``cancel()`` returns False.
        """
        with self._lock:
            self._upload_file_dict[file_name] = file_path
        attrs = file_attributes if file_attributes is not None else self._attributes_of(file_path)
        return self._start_managed(_UPLOAD, file_name, file_path, attrs, ca_file, timeout, url_timeout,
                                   lambda: self.get_upload_file_url(file_name, attrs), progress)

    def transfer_download(self, file_name: str, file_path: str, file_attributes: Optional[Dict[str, Any]] = None, *,
                          ca_file: Optional[str] = None, timeout: float = 60.0,
                          url_timeout: float = 30.0,
                          progress: Optional[ProgressCallback] = None) -> "TransferFuture[FileTransferResult]":
        """Download ``file_name`` to ``file_path`` end to end; returns a ``Future`` of :class:`FileTransferResult`.

        Asks for a download URL, GETs it (TLS verified, resumed after a cut), checks size and SHA-256
        against the attributes the platform echoed (or the caller's ``file_attributes``), removes the file
        on a mismatch, and reports the result. The future raises :class:`FileTransferError` on failure.

        ``progress(bytes_done, total_bytes)`` is called on the transfer thread after every chunk
        (``total_bytes`` None when neither the attributes nor the server give the size).
        ``future.cancel()`` stops the download at the next chunk and removes the partial file; a transfer
        stopped mid-stream is reported to the platform as failed ("cancelled") and leaves a file already at
        ``file_path`` untouched. Once the file is complete and verified (just before it replaces
        ``file_path``), ``cancel()`` returns False.
        """
        with self._lock:
            self._download_file_dict[file_name] = file_path
        return self._start_managed(_DOWNLOAD, file_name, file_path, file_attributes, ca_file, timeout,
                                   url_timeout, lambda: self.get_download_file_url(file_name, file_attributes),
                                   progress)

    def on_destroy(self) -> None:
        """Called by ``AbstractDevice.destroy()``: fail the transfers still waiting for a URL and stop the
        running ones at their next chunk."""
        self._closing.set()
        with self._lock:
            pending, self._pending = self._pending, []
        for p in pending:
            if p.timer is not None:
                p.timer.cancel()
            p.future._finish(exc=FileTransferError("device destroyed", kind="cancelled"))

    # ---- internals --------------------------------------------------------------------------------------

    @staticmethod
    def _attributes_of(path: str) -> Optional[Dict[str, Any]]:
        try:
            return {"hash_code": http_transfer.sha256_file(path), "size": os.path.getsize(path)}
        except OSError as exc:
            _LOG.error("cannot read %s for its attributes: %s", path, exc.strerror)
            return None

    @staticmethod
    def _result_paras(object_name: str, result_code: int, status_code: Optional[int],
                      status_description: Optional[str]) -> Dict[str, Any]:
        paras: Dict[str, Any] = {"object_name": object_name, "result_code": result_code}
        if status_code is not None:
            paras["status_code"] = status_code
        if status_description is not None:
            paras["status_description"] = status_description
        return paras


    def _start_managed(self, direction: str, file_name: str, file_path: str, attrs: Optional[Dict[str, Any]],
                       ca_file: Optional[str], timeout: float, url_timeout: float, ask: Callable[[], object],
                       progress: Optional[ProgressCallback] = None) -> "TransferFuture[FileTransferResult]":
        future: "TransferFuture[FileTransferResult]" = TransferFuture()
        pending = _Pending(direction, file_name, file_path, attrs, ca_file, timeout, future, progress=progress)
        timer = threading.Timer(url_timeout, self._url_timed_out, args=(pending,))
        timer.daemon = True
        pending.timer = timer
        with self._lock:
            self._pending.append(pending)
        # cancelled while waiting for the URL: forget it (a URL arriving later goes to the listener, if any)
        # and, as no worker will run it, finish it for its waiters now
        def forget_if_cancelled(f: "Future[FileTransferResult]") -> None:
            if f.cancelled() and self._drop_pending(pending):
                future._abandon()

        future.add_done_callback(forget_if_cancelled)
        timer.start()
        try:
            ask()
        except Exception as exc:
            self._drop_pending(pending)
            future._finish(exc=FileTransferError(f"could not request a {direction} URL: {exc}", kind="publish"))
        return future

    def _drop_pending(self, pending: _Pending) -> bool:
        with self._lock:
            try:
                self._pending.remove(pending)
            except ValueError:
                return False
        if pending.timer is not None:
            pending.timer.cancel()
        return True

    def _url_timed_out(self, pending: _Pending) -> None:
        if self._drop_pending(pending):
            pending.future._finish(exc=FileTransferError(
                f"no {pending.direction} URL for {pending.file_name!r} from the platform", kind="url_timeout"))

    def _take_pending(self, direction: str, url_info: UrlInfo) -> Optional[_Pending]:
        name = url_info.object_name if isinstance(url_info.object_name, str) else ""
        with self._lock:
            candidates = [p for p in self._pending if p.direction == direction]
            chosen = next((p for p in candidates if p.file_name == name), None)
            if chosen is None and name:
                chosen = next((p for p in candidates if name.endswith("/" + p.file_name)), None)
            if chosen is None and not name and len(candidates) == 1:
                chosen = candidates[0]
            if chosen is not None:
                self._pending.remove(chosen)
        if chosen is not None and chosen.timer is not None:
            chosen.timer.cancel()
        return chosen

    def _run_transfer(self, pending: _Pending, url_info: UrlInfo) -> None:
        object_name = url_info.object_name or pending.file_name
        report = self.report_upload_result if pending.direction == _UPLOAD else self.report_download_result
        future = pending.future
        future._start()

        def stop() -> bool:
            return future.cancelled() or self._closing.is_set()

        try:
            if pending.direction == _UPLOAD:
                status = http_transfer.upload(url_info.url, pending.file_path, ca_file=pending.ca_file,
                                              timeout=pending.timeout, progress=pending.progress, stop=stop)
                size = os.path.getsize(pending.file_path)
                digest = http_transfer.sha256_file(pending.file_path)
                if not future._commit():  # cancelled: not reported as a success (the object may be stored)
                    raise TransferError(TransferError.CANCELLED, "upload cancelled")
            else:
                attrs = url_info.file_attributes or pending.file_attributes or {}
                expected_size = attrs.get("size") if isinstance(attrs.get("size"), int) else None
                expected_hash = attrs.get("hash_code") if isinstance(attrs.get("hash_code"), str) else None
                directory = os.path.dirname(os.path.abspath(pending.file_path))
                os.makedirs(directory, exist_ok=True)
                res = http_transfer.download(url_info.url, pending.file_path, ca_file=pending.ca_file,
                                             timeout=pending.timeout, expected_size=expected_size,
                                             expected_sha256=expected_hash, progress=pending.progress, stop=stop,
                                             commit=future._commit)
                status, size, digest = res.status_code, res.size, res.sha256
        except (TransferError, OSError) as exc:
            status_code = getattr(exc, "status_code", None)
            kind = getattr(exc, "kind", "io")
            message = str(exc) if isinstance(exc, TransferError) else f"local file error: {exc.strerror}"
            if kind == TransferError.CANCELLED:
                _LOG.info("%s of %r cancelled", pending.direction, pending.file_name)
            else:
                _LOG.error("%s of %r failed: %s", pending.direction, pending.file_name, message)
            self._safe_report(report, object_name, 1, status_code, message)
            future._finish(exc=FileTransferError(message, status_code, kind))
            return
        except Exception as exc:
            _LOG.exception("%s of %r failed unexpectedly", pending.direction, pending.file_name)
            self._safe_report(report, object_name, 1, None, f"internal error: {type(exc).__name__}")
            future._finish(exc=FileTransferError(f"internal error: {type(exc).__name__}", kind="internal"))
            return
        # committed: cancel() can no longer win, so success is reported only for a future that gets the result
        self._safe_report(report, object_name, 0, status, "success")
        future._finish(FileTransferResult(object_name, pending.file_path, status, size, digest))

    @staticmethod
    def _safe_report(report: Callable[[str, int, Optional[int], Optional[str]], object], object_name: str,
                     result_code: int, status_code: Optional[int], description: Optional[str]) -> None:
        try:
            report(object_name, result_code, status_code, description)
        except Exception as exc:
            _LOG.warning("could not report the %s result of %r: %s", "transfer", object_name, exc)
