"""``OTAService``: the ``$ota`` system service (firmware/software upgrades).

Upstream behaviour kept: events are turned into :class:`OTAQueryVersion` / :class:`OTAPackageInfo` /
:class:`OTAPackageInfoV2` and handed to the :class:`OTAListener`; the device answers with
:meth:`OTAService.report_version` and :meth:`OTAService.report_ota_status`.

Beyond upstream: :meth:`OTAService.download_package` downloads a package on a worker thread (TLS
verified, bearer token for v1, presigned URL for v2, resume after a cut, SHA-256 check against ``sign``,
free-space check), reports progress while downloading and reports the matching OTA code on failure.
"""
from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import Future
from typing import Any, Callable, Dict, Optional, Union

from iot_device_sdk_python.client.request.device_event import DeviceEvent
from iot_device_sdk_python.errors import IotDeviceError
from iot_device_sdk_python.ota.ota_listener import OTAListener
from iot_device_sdk_python.ota.ota_package_info import OTAPackageInfo
from iot_device_sdk_python.ota.ota_package_info_v2 import OTAPackageInfoV2
from iot_device_sdk_python.ota.ota_query_version import OTAQueryVersion
from iot_device_sdk_python.protocol import codec
from iot_device_sdk_python.service.abstract_service import AbstractService
from iot_device_sdk_python.transfer import http_transfer
from iot_device_sdk_python.transfer.http_transfer import ProgressCallback, TransferError
from iot_device_sdk_python.transfer.transfer_future import TransferFuture
from iot_device_sdk_python.transport.action_listener import ActionListener
from iot_device_sdk_python.transport.publish_handle import PublishHandle

_LOG = logging.getLogger(__name__)

PackageInfo = Union[OTAPackageInfo, OTAPackageInfoV2]


class OTADownloadError(IotDeviceError):
    """A package download failed. ``result_code`` is the OTA code that was (or should be) reported."""

    def __init__(self, result_code: int, message: str, kind: Optional[str] = None) -> None:
        super().__init__(message)
        self.result_code = result_code
        self.kind = kind


class OTAService(AbstractService):
    """The ``$ota`` service registered on every device (``device.get_ota_service()``)."""

    OTA_CODE_SUCCESS = 0          # success / processing normally
    OTA_CODE_BUSY = 1             # device in use
    OTA_CODE_SIGNAL_BAD = 2       # poor signal
    OTA_CODE_NO_NEED = 3          # already the latest version
    OTA_CODE_LOW_POWER = 4        # low battery
    OTA_CODE_LOW_SPACE = 5        # insufficient storage
    OTA_CODE_DOWNLOAD_TIMEOUT = 6  # download timed out (also: download refused or cut, retries exhausted)
    OTA_CODE_CHECK_FAIL = 7       # package verification failed
    OTA_CODE_UNKNOWN_TYPE = 8     # unsupported package type
    OTA_CODE_LOW_MEMORY = 9       # insufficient memory
    OTA_CODE_INSTALL_FAIL = 10    # installation failed
    OTA_CODE_INNER_ERROR = 255    # internal exception

    _SERVICE_ID = "$ota"
    _V1_EVENTS = ("firmware_upgrade", "software_upgrade")
    _V2_EVENTS = ("firmware_upgrade_v2", "software_upgrade_v2")

    def __init__(self) -> None:
        super().__init__()
        self._ota_listener: Optional[OTAListener] = None
        self._lock = threading.Lock()
        self._downloads: "set[threading.Thread]" = set()
        self._closing = threading.Event()

    # ---- listener ----------------------------------------------------------------------------

    def set_ota_listener(self, ota_listener: OTAListener) -> None:
        """Set the listener that receives version queries and package notifications.

        An object that is not an :class:`OTAListener` (and lacks its two methods) is refused with an
        error log, as upstream does.
        """
        if ota_listener is not None and not isinstance(ota_listener, OTAListener) and not (
                callable(getattr(ota_listener, "on_query_version", None))
                and callable(getattr(ota_listener, "on_receive_package_info", None))):
            _LOG.error("set_ota_listener: %s is not an OTAListener; ignored", type(ota_listener).__name__)
            return
        self._ota_listener = ota_listener

    def get_ota_listener(self) -> Optional[OTAListener]:
        """The listener set with :meth:`set_ota_listener`, or None."""
        return self._ota_listener

    # ---- inbound -----------------------------------------------------------------------------

    def on_event(self, device_event: DeviceEvent) -> None:
        """Handle one ``$ota`` event from the platform (called on the device's dispatcher thread).

        ``version_query`` → ``on_query_version``; ``firmware_upgrade``/``software_upgrade`` →
        ``on_receive_package_info(OTAPackageInfo)``; the ``_v2`` variants → ``OTAPackageInfoV2``.
        Without a listener the event is only logged. Malformed paras are logged and dropped.
        """
        listener = self._ota_listener
        event_type = getattr(device_event, "event_type", None)
        paras = getattr(device_event, "paras", None)
        if listener is None:
            _LOG.warning("$ota event %r received but no OTAListener is set; ignored", event_type)
            return
        if not isinstance(paras, dict):
            _LOG.error("$ota event %r has no paras object; ignored", event_type)
            return
        try:
            if event_type == "version_query":
                query = OTAQueryVersion()
                query.convert_from_dict(paras)
                listener.on_query_version(query)
            elif event_type in self._V1_EVENTS:
                pkg = OTAPackageInfo()
                pkg.convert_from_dict(paras)
                _LOG.info("OTA package received: %r", pkg)
                listener.on_receive_package_info(pkg)
            elif event_type in self._V2_EVENTS:
                pkg2 = OTAPackageInfoV2()
                pkg2.convert_from_dict(paras)
                _LOG.info("OTA package (v2) received: %r", pkg2)
                listener.on_receive_package_info(pkg2)
            else:
                _LOG.warning("unknown $ota event type %r; ignored", event_type)
        except Exception:
            _LOG.exception("OTAListener failed on $ota event %r", event_type)

    # ---- outbound ----------------------------------------------------------------------------


    def report_version(self, fw_version: Optional[str] = None, sw_version: Optional[str] = None,
                       listener: Optional[ActionListener] = None) -> PublishHandle:
        """Publish ``version_report`` with the firmware and/or software version (None ones omitted).

        Returns the publish handle of the report (``result(timeout)`` waits for the PUBACK).
        """
        paras: Dict[str, Any] = {}
        if fw_version is not None:
            paras["fw_version"] = fw_version
        if sw_version is not None:
            paras["sw_version"] = sw_version
        return self._report_event("version_report", paras, listener)

    def report_ota_status(self, result_code: int, version: str, progress: Optional[int] = None,
                          description: Optional[str] = None, listener: Optional[ActionListener] = None) -> PublishHandle:
        """Publish ``upgrade_progress_report``: ``result_code`` (an ``OTA_CODE_*``), the ``version``,
        and optionally ``progress`` (0-100) and ``description``. Returns the publish handle.

        A finished upgrade is reported as ``(OTA_CODE_SUCCESS, new_version, 100)``.
        """
        paras: Dict[str, Any] = {"result_code": result_code, "version": version}
        if progress is not None:
            paras["progress"] = progress
        if description is not None:
            paras["description"] = description
        return self._report_event("upgrade_progress_report", paras, listener)

    # ---- download helper (beyond upstream) ------------------------------------------------------

    def download_package(self, pkg: PackageInfo, target_dir: str, ca_file: Optional[str] = None,
                         timeout: float = 30.0, *, file_name: Optional[str] = None, max_retries: int = 3,
                         reserve_bytes: int = 0, report_progress: bool = True, progress_step: int = 10,
                         callback: Optional[Callable[["Future[str]"], None]] = None,
                         progress: Optional[ProgressCallback] = None) -> "TransferFuture[str]":
        """Download ``pkg`` into ``target_dir`` on a worker thread; returns a ``Future`` of the file path.

        * v1 (:class:`OTAPackageInfo`): ``Authorization: Bearer {access_token}``; v2: the presigned URL.
        * TLS is verified against ``ca_file`` (None: the default CA bundle). ``timeout`` is the socket
          timeout in seconds; a cut or timeout is retried ``max_retries`` times, resuming with ``Range``.
        * The file is written only inside ``target_dir``, named ``file_name`` or ``pkg.file_name`` (or the
          URL's last path segment); a name that would leave the directory is refused.
        * ``file_size`` is checked against free space (minus ``reserve_bytes``) before and during the
          download, and the file's size and SHA-256 against ``file_size`` and ``sign`` afterwards.
        * With ``report_progress``, ``report_ota_status(0, pkg.version, p)`` is sent every
          ``progress_step`` percent (capped at 99: 100 is the installer's success report), and on
          failure the matching code: 5 low space, 6 download failed/timed out, 7 check failed,
          255 internal error. Failed downloads leave no file behind.

        * ``progress(bytes_done, total_bytes)`` (beyond upstream) is called on the worker thread after
          every chunk; ``total_bytes`` is ``file_size`` (or the server's length), None when neither is known.

        The future (a :class:`TransferFuture`) resolves to the path, or raises :class:`OTADownloadError`
        (``result_code``). ``future.cancel()`` stops the download at the next chunk and removes the partial
        file, leaving a file already at the destination untouched; nothing is reported to the platform then
        (the application reports the code it chooses). Once the file is complete and verified (just before
        it replaces the destination), ``cancel()`` returns False.
        ``callback(future)`` is called when it is done (on the worker thread, or on the cancelling one).
        Installing the package and reporting success stay the caller's job.
        """
        future: "TransferFuture[str]" = TransferFuture()
        if callback is not None:
            future.add_done_callback(callback)
        worker = threading.Thread(target=self._download_worker,
                                  args=(future, pkg, target_dir, ca_file, timeout, file_name, max_retries,
                                        reserve_bytes, report_progress, progress_step, progress),
                                  name="ota-download", daemon=True)
        with self._lock:
            self._downloads.add(worker)
        worker.start()
        return future

    def _safe_report(self, result_code: int, version: str, progress: Optional[int], description: Optional[str]) -> None:
        try:
            self.report_ota_status(result_code, version, progress, description)
        except Exception as exc:  # reporting must never turn a finished download into a crash
            _LOG.warning("could not report OTA status %s: %s", result_code, exc)

    def _download_worker(self, future: "TransferFuture[str]", pkg: PackageInfo, target_dir: str,
                         ca_file: Optional[str], timeout: float, file_name: Optional[str], max_retries: int,
                         reserve_bytes: int, report_progress: bool, progress_step: int,
                         progress: Optional[ProgressCallback]) -> None:
        version = str(getattr(pkg, "version", "") or "")
        future._start()
        try:
            path = self._download(pkg, target_dir, ca_file, timeout, file_name, max_retries, reserve_bytes,
                                  report_progress, progress_step, version, progress, future.cancelled,
                                  future._commit)
        except OTADownloadError as exc:
            if future.cancelled():  # the application's cancel(): not a failure to report
                _LOG.info("OTA download of version %s cancelled", version)
            else:
                _LOG.error("OTA download of version %s failed (code %d): %s", version, exc.result_code, exc)
                if report_progress:
                    self._safe_report(exc.result_code, version, None, str(exc))
            future._finish(exc=exc)
        except Exception as exc:  # programming or unexpected error: still report and resolve the future
            _LOG.exception("OTA download of version %s failed unexpectedly", version)
            err = OTADownloadError(self.OTA_CODE_INNER_ERROR, f"internal error: {type(exc).__name__}")
            if report_progress:
                self._safe_report(err.result_code, version, None, str(err))
            future._finish(exc=err)
        else:
            future._finish(path)  # committed before the rename: cancel() can no longer win here
        finally:
            with self._lock:
                self._downloads.discard(threading.current_thread())


    def _download(self, pkg: PackageInfo, target_dir: str, ca_file: Optional[str], timeout: float,
                  file_name: Optional[str], max_retries: int, reserve_bytes: int, report_progress: bool,
                  progress_step: int, version: str, progress: Optional[ProgressCallback] = None,
                  cancelled: Optional[Callable[[], bool]] = None,
                  commit: Optional[Callable[[], bool]] = None) -> str:
        url = getattr(pkg, "url", None)
        if not isinstance(url, str) or not url:
            raise OTADownloadError(self.OTA_CODE_INNER_ERROR, "package has no download URL", TransferError.INPUT)
        name = file_name or getattr(pkg, "file_name", None) or url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        try:
            os.makedirs(target_dir, exist_ok=True)
            dest = http_transfer.safe_join(target_dir, name)
        except ValueError as exc:
            raise OTADownloadError(self.OTA_CODE_CHECK_FAIL, f"package file name refused: {exc}",
                                   TransferError.INPUT) from None
        except OSError as exc:
            raise OTADownloadError(self.OTA_CODE_INNER_ERROR, f"cannot create {target_dir}: {exc.strerror}",
                                   TransferError.IO) from None
        size = codec.as_int(getattr(pkg, "file_size", None))
        if size is not None and size < 0:
            size = None
        sign = getattr(pkg, "sign", None) or None
        if not sign:
            _LOG.warning("OTA package %s has no sign: its integrity cannot be verified", version)
        headers = {}
        token = getattr(pkg, "access_token", None)
        if isinstance(pkg, OTAPackageInfo) and token:
            headers["Authorization"] = f"Bearer {token}"

        step = max(1, int(progress_step))
        last = {"reported": -1}

        user_progress = [progress]

        def on_progress(done: int, total: Optional[int]) -> None:
            callback = user_progress[0]
            if callback is not None:
                try:
                    callback(done, total)
                except Exception:  # the application's callback must not stop the download nor its reports
                    user_progress[0] = None
                    _LOG.exception("OTA download progress callback failed (further calls skipped)")
            if not report_progress or not total:
                return
            pct = min(99, done * 100 // total)
            if pct >= last["reported"] + step or (last["reported"] < 0):
                last["reported"] = pct
                self._safe_report(self.OTA_CODE_SUCCESS, version, pct, "downloading")

        if report_progress:
            last["reported"] = 0
            self._safe_report(self.OTA_CODE_SUCCESS, version, 0, "download started")
        try:
            http_transfer.download(url, dest, headers=headers, ca_file=ca_file, timeout=timeout,
                                   expected_size=size, expected_sha256=sign, progress=on_progress,
                                   max_retries=max_retries, reserve_bytes=reserve_bytes,
                                   stop=lambda: self._closing.is_set() or bool(cancelled and cancelled()),
                                   commit=commit)
        except TransferError as exc:
            code = {
                TransferError.SPACE: self.OTA_CODE_LOW_SPACE,
                TransferError.CHECK: self.OTA_CODE_CHECK_FAIL,
                TransferError.TIMEOUT: self.OTA_CODE_DOWNLOAD_TIMEOUT,
                TransferError.HTTP: self.OTA_CODE_DOWNLOAD_TIMEOUT,
                TransferError.TLS: self.OTA_CODE_DOWNLOAD_TIMEOUT,
            }.get(exc.kind, self.OTA_CODE_INNER_ERROR)
            raise OTADownloadError(code, str(exc), exc.kind) from None
        return dest

    def on_destroy(self) -> None:
        """Called by ``AbstractDevice.destroy()``: stop running downloads."""
        self.close(timeout=2.0)

    def close(self, timeout: float = 5.0) -> None:
        """Stop running downloads (their futures fail) and wait up to ``timeout`` s for each worker thread."""
        self._closing.set()
        with self._lock:
            workers = list(self._downloads)
        for w in workers:
            if w is not threading.current_thread():
                w.join(timeout)
