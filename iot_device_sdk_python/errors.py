"""One family for every error the SDK raises (beyond upstream, which had none).

Catch :class:`IotDeviceError` to catch them all::

    from iot_device_sdk_python import IotDevice, IotDeviceError, ConnectRefusedError

    try:
        device.connect(raise_on_failure=True)
    except ConnectRefusedError as exc:      # the platform said no: do not retry with the same secret
        print("refused:", exc.code, exc.reason)
    except IotDeviceError as exc:           # network, timeout, configuration, bootstrap ...
        print("not connected:", exc)

The family::

    IotDeviceError
     +-- ConnectError            connect() failed; ``code`` is connect()'s int (-1 network, -2 configuration)
     |    +-- ConnectRefusedError    the server refused in CONNACK; ``code`` 1..5, ``reason`` says why,
     |                               ``reason_code``/``reason_name``: the MQTT 5 reason (e.g. 0x86)
     |    +-- ConnectTimeoutError    no CONNACK in time (also an IotTimeoutError)
     +-- IotTimeoutError         a wait ran out (also a builtin TimeoutError)
     +-- PublishError            a publish did not reach the broker   (transport.publish_handle)
     +-- TransferError           an HTTP download/upload failed        (transfer.http_transfer)
     +-- FileTransferError       a file manager transfer failed        (filemanager.file_manager_service)
     +-- OTADownloadError        an OTA package download failed        (ota.ota_service)
     +-- BootstrapError          device provisioning failed            (bootstrap.bootstrap_client)
     +-- RuleParseError          a device rule cannot be used (also a ValueError; rule.rule_parser)

The last six keep their upstream-style modules (``from iot_device_sdk_python.transport.publish_handle
import PublishError`` still works); all are re-exported by the package: ``from iot_device_sdk_python
import PublishError``. This module imports nothing from the SDK, so every module can import it.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

__all__ = [
    "IotDeviceError", "ConnectError", "ConnectRefusedError", "ConnectTimeoutError", "IotTimeoutError",
    "connect_error", "CONNACK_REASONS",
]

#: MQTT 3.1.1 CONNACK return codes (what ``connect()`` returns on a refusal) and what they mean on IoTDA
CONNACK_REASONS: Dict[int, str] = {
    1: "unacceptable protocol version",
    2: "client id rejected (or keepalive out of range)",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized (for example a frozen or deleted device)",
}

#: ``connect()``'s own codes for failures that are not CONNACK refusals (see ``MqttConnection``)
_LOCAL_REASONS: Dict[int, str] = {
    -1: "network error, TLS failure or no CONNACK in time",
    -2: "local configuration error (certificate, key or secret)",
}


class IotDeviceError(Exception):
    """Base of every error the SDK raises on its own (argument checks still raise ``TypeError``/``ValueError``)."""


class IotTimeoutError(IotDeviceError, TimeoutError):
    """A wait ran out (a publish still pending, no time sync answer, no CONNACK).

    Also a builtin ``TimeoutError``, so code written as ``except TimeoutError`` keeps working.
    """


class ConnectError(IotDeviceError):
    """``connect(raise_on_failure=True)`` did not connect.

    ``code`` is the int ``connect()`` would have returned (see ``MqttConnection``: -1 network, TLS or
    timeout, -2 local configuration, 1..5 CONNACK refusals); ``reason`` is a readable explanation.
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"connect failed ({code}): {reason}")
        self.code = code
        self.reason = reason

    def __reduce__(self) -> Tuple[Any, Tuple[int, str]]:
        # rebuilt from (code, reason), not from the message: copy and pickle keep the fields
        return type(self), (self.code, self.reason)


class ConnectRefusedError(ConnectError):
    """The server answered CONNACK with a refusal; ``code`` is the CONNACK code (1..5).

    4 and 5 (bad credentials, not authorized) are never retried by the SDK: fix the credentials.
    Not a builtin ``ConnectionRefusedError`` (that one means "nothing listens on the port").
    """

    def __init__(self, code: int, reason: Optional[str] = None, reason_code: Optional[int] = None,
                 reason_name: Optional[str] = None) -> None:
        text = reason or CONNACK_REASONS.get(code, f"refused with CONNACK code {code}")
        if reason_code is not None:
            text += f" (MQTT 5 reason code 0x{reason_code:02X}: {reason_name or 'unknown'})"
        super().__init__(code, text)
        #: the MQTT 5 CONNACK reason code (e.g. 0x86 bad user name or password, 0x87 not authorized); on an
        #: MQTT 3.1.1 connection the MQTT 5 number of the return code. None when unknown.
        self.reason_code = reason_code
        #: its name as MQTT 5 spells it, e.g. "Bad user name or password"
        self.reason_name = reason_name


class ConnectTimeoutError(ConnectError, IotTimeoutError):
    """No CONNACK within ``MqttConnectConf.timeout`` (``code`` -1)."""


def connect_error(code: int, cause: Optional[BaseException] = None) -> ConnectError:
    """The error for a failed ``connect()`` that returned ``code``; ``cause`` is the underlying exception
    (``MqttConnection.last_error``), used for a more precise class and message when given."""
    if code > 0:
        if isinstance(cause, ConnectRefusedError) and cause.code == code:
            return cause  # made by the connection, with the MQTT 5 reason code
        return ConnectRefusedError(code)
    if isinstance(cause, TimeoutError):
        return ConnectTimeoutError(code, "no CONNACK in time")
    reason = _LOCAL_REASONS.get(code, f"connect() returned {code}")
    if cause is not None:
        # the cause's text only: exception messages of this SDK never carry secrets
        reason = f"{reason}: {type(cause).__name__}: {cause}" if str(cause) else f"{reason}: {type(cause).__name__}"
    return ConnectError(code, reason)
