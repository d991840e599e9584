"""HTTPS transfers for OTA packages and file-manager objects (beyond upstream).

``http_transfer`` downloads and uploads with ``requests`` and TLS verification always on, streams to
disk, resumes a cut download with ``Range``, checks size and SHA-256, reports progress and stops when asked,
and never logs tokens or presigned URLs. ``transfer_future.TransferFuture`` is the future the OTA and file
manager services return: ``cancel()`` stops a running transfer.
"""
from iot_device_sdk_python.transfer.http_transfer import (  # noqa: F401
    DownloadResult,
    TransferError,
    download,
    redact_url,
    safe_join,
    sha256_file,
    upload,
)
from iot_device_sdk_python.transfer.transfer_future import TransferFuture  # noqa: F401
