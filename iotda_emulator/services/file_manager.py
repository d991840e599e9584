"""``$file_manager`` on the platform side: upload/download URLs on the emulator's object store.

``get_upload_url`` → ``get_upload_url_response`` with a presigned PUT URL (bound to the declared
``file_attributes`` size/hash_code, so a different body is refused with 400); ``get_download_url`` →
``get_download_url_response`` with a presigned GET URL. Both carry ``bucket_name``, ``object_name``
(= the file name), ``expire`` (s) and ``file_attributes`` (the device's, echoed; for a download without
attributes, the stored object's ``hash_code``/``size``). ``upload_result_report`` /
``download_result_report`` are recorded.

Objects are kept per device (key ``{device_id}/{file_name}`` in bucket ``iotda-files``). This service also
mounts the object store's HTTP routes (:meth:`http_routes`).

Python API (``emu.service("$file_manager")``): ``put_file``, ``get_file``, ``results``, ``wait_result``,
``url_requests``, ``expire`` (URL validity, settable), ``store``.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Dict, List, Optional, Union

from iotda_emulator.objects import ObjectStore, ObjectStoreError
from iotda_emulator.services.base import PlatformService

log = logging.getLogger(__name__)

FILE_BUCKET = "iotda-files"


class FileManagerService(PlatformService):
    """The ``$file_manager`` platform service."""

    service_ids = ("$file_manager",)

    def __init__(self, core: Any) -> None:
        super().__init__(core)
        self.store = ObjectStore.for_core(core)
        #: validity in seconds of the URLs handed out (0: already expired, for tests)
        self.expire = 3600
        #: "https" (default when the HTTPS port runs) or "http"
        self.scheme: Optional[str] = None
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._results: List[dict] = []
        self._url_requests: List[dict] = []

    def http_routes(self) -> List[tuple]:
        """The object store's routes (shared with ``$ota``): presigned GET/PUT and OTA token downloads."""
        return self.store.routes()

    # ---- Python API ----------------------------------------------------------------------------------

    @staticmethod
    def key_of(device_id: str, file_name: str) -> str:
        """Object key of ``file_name`` for ``device_id``."""
        return f"{device_id}/{file_name}"

    def put_file(self, device_id: str, file_name: str, data: Union[bytes, str]) -> dict:
        """Place a file (bytes or a local path) for ``device_id`` to download; returns size and sha256."""
        meta = self.store.put_object(FILE_BUCKET, self.key_of(device_id, file_name), data)
        return {"size": meta["size"], "sha256": meta["sha256"]}

    def get_file(self, device_id: str, file_name: str) -> Optional[bytes]:
        """The bytes ``device_id`` uploaded as ``file_name``, or None."""
        return self.store.get_object(FILE_BUCKET, self.key_of(device_id, file_name))

    def results(self, device_id: Optional[str] = None, kind: Optional[str] = None) -> List[dict]:
        """Recorded result reports (``kind`` "upload"/"download", ``object_name``, ``result_code``,
        ``status_code``, ``status_description``, ``device_id``, ``time``), oldest first."""
        with self._lock:
            return [dict(r) for r in self._results
                    if (device_id is None or r["device_id"] == device_id) and (kind is None or r["kind"] == kind)]

    def wait_result(self, device_id: str, kind: str, object_name: Optional[str] = None,
                    timeout: float = 15.0) -> dict:
        """Wait for a result report of ``kind`` (and ``object_name``) from ``device_id``; returns it."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for r in self._results:
                    if r["device_id"] == device_id and r["kind"] == kind and (
                            object_name is None or r["object_name"] == object_name):
                        return dict(r)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no {kind} result report from {device_id}")
                self._changed.wait(remaining)

    def url_requests(self, device_id: Optional[str] = None) -> List[dict]:
        """Recorded URL requests (``kind``, ``file_name``, ``file_attributes``, ``device_id``, ``time``)."""
        with self._lock:
            return [dict(r) for r in self._url_requests if device_id is None or r["device_id"] == device_id]

    # ---- events ----------------------------------------------------------------------------------------

    def on_event(self, device_id: str, object_device_id: Optional[str], event: dict) -> None:
        target = object_device_id or device_id
        event_type = event.get("event_type")
        paras = event.get("paras")
        if not isinstance(paras, dict):
            log.warning("$file_manager %s from %s without a paras object; ignored", event_type, target)
            return
        if event_type in ("get_upload_url", "get_download_url"):
            self._grant(target, event_type, paras)
        elif event_type in ("upload_result_report", "download_result_report"):
            self._record_result(target, event_type, paras)
        else:
            log.warning("unknown $file_manager event type %r from %s; ignored", event_type, target)

    def _grant(self, device_id: str, event_type: str, paras: dict) -> None:
        upload = event_type == "get_upload_url"
        file_name = paras.get("file_name")
        attrs = paras.get("file_attributes")
        if attrs is not None and not isinstance(attrs, dict):
            log.warning("%s from %s: file_attributes is not an object; ignored", event_type, device_id)
            attrs = None
        with self._changed:
            self._url_requests.append({"kind": "upload" if upload else "download", "file_name": file_name,
                                       "file_attributes": attrs, "device_id": device_id, "time": time.time()})
            del self._url_requests[:-1000]
            self._changed.notify_all()
        if not isinstance(file_name, str) or not file_name or "/" in file_name or "\\" in file_name \
                or file_name in (".", "..") or len(file_name) > 255:
            log.warning("%s from %s with an invalid file_name; no URL granted", event_type, device_id)
            return
        key = self.key_of(device_id, file_name)
        size = attrs.get("size") if attrs else None
        sha = attrs.get("hash_code") if attrs else None
        size = size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None
        sha = sha.lower() if isinstance(sha, str) and len(sha) == 64 else None
        try:
            if upload:
                url = self.store.presign("PUT", FILE_BUCKET, key, self.expire, size=size, sha256=sha,
                                         scheme=self.scheme)
                echo = attrs
            else:
                url = self.store.presign("GET", FILE_BUCKET, key, self.expire, scheme=self.scheme)
                echo = attrs
                if echo is None:
                    meta = self.store.stat(FILE_BUCKET, key)
                    echo = {"hash_code": meta["sha256"], "size": meta["size"]} if meta else None
        except (ObjectStoreError, RuntimeError) as exc:
            log.warning("%s from %s: no URL granted (%s)", event_type, device_id, exc)
            return
        response: Dict[str, Any] = {"url": url, "bucket_name": FILE_BUCKET, "object_name": file_name,
                                    "expire": self.expire}
        if echo is not None:
            response["file_attributes"] = echo
        try:
            self.core.send_event(device_id, "$file_manager", f"{event_type}_response", response)
        except Exception as exc:
            log.warning("%s_response for %s not sent: %s", event_type, device_id, exc)

    def _record_result(self, device_id: str, event_type: str, paras: dict) -> None:
        code = paras.get("result_code")
        if not isinstance(paras.get("object_name"), str) or not isinstance(code, int) or isinstance(code, bool):
            log.warning("%s from %s without object_name/result_code; ignored", event_type, device_id)
            return
        status_code = paras.get("status_code")
        desc = paras.get("status_description")
        record = {"kind": "upload" if event_type == "upload_result_report" else "download",
                  "object_name": paras["object_name"], "result_code": code,
                  "status_code": status_code if isinstance(status_code, int) else None,
                  "status_description": desc if isinstance(desc, str) else None,
                  "device_id": device_id, "time": time.time()}
        with self._changed:
            self._results.append(record)
            del self._results[:-1000]
            self._changed.notify_all()

    def describe(self) -> Any:
        """Counts and the last result reports, for the console."""
        with self._lock:
            return {"objects": len(self.store.list_objects(FILE_BUCKET)), "url_requests": len(self._url_requests),
                    "results": [dict(r) for r in self._results[-20:]]}
