"""The ``Emulator`` facade: Mosquitto + access front + platform core (+ HTTP server) in one object."""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from typing import Any, Callable, Dict, List, Optional, Union

from iotda_emulator.access_front import AccessFront, FrontLimits, IotdaAuthenticator
from iotda_emulator.bridge_protocol import BridgeAuthenticator, BridgeTopicRules
from iotda_emulator.bridge_protocol import implicit_subscriptions as bridge_implicit_subscriptions
from iotda_emulator.broker import BrokerAddress, MosquittoBroker
from iotda_emulator.certs import CertificateAuthority, advertised_host, server_names
from iotda_emulator.core import PlatformCore, TraceEntry
from iotda_emulator import device_policies
from iotda_emulator.datalock import DataDirLock
from iotda_emulator.device_ca import DeviceCaRegistry
from iotda_emulator.errors import EmulatorError
from iotda_emulator.products import USER_TOPIC_CHECKS
from iotda_emulator.store import Store
from iotda_emulator.topic_acl import TopicAuthorizer

logger = logging.getLogger(__name__)


class Emulator:
    """A local IoTDA on a real Mosquitto. ``start()`` brings everything up; ``stop()`` tears it down.

    Ports given as 0 are picked free. Without ``data_dir`` a temporary directory is used and removed
    on stop; with one, the registry, shadows, trace and certificates are kept there.

    ``app_keys`` (``{access_key: secret_key}``): when given, the HTTP API requires ``SDK-HMAC-SHA256``
    signatures by one of them (``self.app_keys``, read at every request, may be changed at run time).
    ``strict`` (default True) enforces IoTDA's publish limits on devices: QoS 2, RETAIN or a payload over
    1 MB closes the connection (traced with kind ``"violation"``). ``rate_limit``: PUBLISH per second per
    device beyond which publishes are dropped and counted (:meth:`throttled`); None = unlimited.

    ``advertise_host``: the name put in URLs and bootstrap answers (default: ``host``, or for a wildcard
    ``host`` such as ``0.0.0.0`` the machine's host name / 127.0.0.1). ``bootstrap_host``/``bootstrap_port``:
    where the provisioning (IoTDP) endpoint listens (see ``services/bootstrap.py``). One data directory is
    used by one emulator at a time (``{data_dir}/emulator.lock``); a second ``start()`` on it raises
    ``DataDirInUse``.

    ``user_topic_check``: how devices' ``$oc/devices/{id}/user/...`` topics are checked against their product's
    custom topics: ``"defined"`` (only products that define some), ``"all"`` or ``"off"`` (doc/emulator.md).

    ``wss_port``: MQTT over WebSocket with TLS (``wss://{host}:{wss_port}/mqtt``, IoTDA's port 443; 0 = a free
    port, None = not served), with the same rules as the MQTT(S) listeners.

    ``direct_uplinks`` (default True): devices' own system uplinks go from the access front straight to the
    platform core in this process instead of through Mosquitto (``AccessFront.platform_intake``; the same
    behaviour, less CPU), and a device link opens its Mosquitto connection only once the device needs the
    broker (brokerless links: the core hands its downlinks to ``AccessFront.deliver_direct`` until then; one
    descriptor per device instead of two). False sends everything through the broker.
    """

    def __init__(self, data_dir: Optional[str] = None, host: str = "127.0.0.1", mqtt_port: int = 0,
                 mqtts_port: int = 0, http_port: int = 0, https_port: int = 0, command_timeout: float = 20.0,
                 sign_tolerance_hours: float = 1, http: bool = True, app_keys: Optional[Dict[str, str]] = None,
                 strict: bool = True, rate_limit: Optional[float] = None, advertise_host: Optional[str] = None,
                 bootstrap_host: Optional[str] = None, bootstrap_port: Optional[int] = None,
                 user_topic_check: str = "defined", wss_port: Optional[int] = 0,
                 direct_uplinks: bool = True) -> None:
        self._own_dir = data_dir is None
        self.data_dir = os.path.abspath(data_dir) if data_dir else tempfile.mkdtemp(prefix="iotda-emulator-")
        self.host = host
        self.advertise_host = advertised_host(host, advertise_host)
        self.bootstrap_host = bootstrap_host or host
        self.bootstrap_port = bootstrap_port
        self._data_lock = DataDirLock(self.data_dir)
        self._want = dict(mqtt=mqtt_port, mqtts=mqtts_port, http=http_port, https=https_port, wss=wss_port)
        self.command_timeout = command_timeout
        self.sign_tolerance_hours = sign_tolerance_hours
        self._http_enabled = http
        self.app_keys: Dict[str, str] = dict(app_keys or {})
        if rate_limit is not None and rate_limit <= 0:
            raise ValueError("rate_limit must be positive (or None for no limit)")
        self.limits = FrontLimits(strict=bool(strict), rate_limit=rate_limit)
        if user_topic_check not in USER_TOPIC_CHECKS:
            raise ValueError(f"user_topic_check must be one of {', '.join(USER_TOPIC_CHECKS)}")
        self._user_topic_check = user_topic_check
        self.direct_uplinks = bool(direct_uplinks)
        self.mqtt_port: Optional[int] = None
        self.mqtts_port: Optional[int] = None
        #: MQTT over WebSocket with TLS: ``wss://{host}:{wss_port}/mqtt`` (None = not served)
        self.wss_port: Optional[int] = None
        self.http_port: Optional[int] = None
        self.https_port: Optional[int] = None
        self.certs: Optional[CertificateAuthority] = None
        #: device CA certificates uploaded by the application (REST AddCertificate); set by start()
        self.device_cas: Optional[DeviceCaRegistry] = None
        self.broker: Optional[MosquittoBroker] = None
        self.store: Optional[Store] = None
        self.core: Optional[PlatformCore] = None
        self.front: Optional[AccessFront] = None
        self.http_server: Any = None
        self._fronts: List[AccessFront] = []
        self._started = False

    # ---- life cycle -------------------------------------------------------------------------------
    def start(self) -> "Emulator":
        """Start broker, access front, platform core, platform services and HTTP server; returns self."""
        if self._started:
            return self
        os.makedirs(self.data_dir, exist_ok=True)
        self._data_lock.acquire()  # before anything touches the directory; raises DataDirInUse
        try:
            self.certs = CertificateAuthority.create(
                os.path.join(self.data_dir, "certs"),
                server_names(self.host, self.advertise_host, self.bootstrap_host,
                             advertised_host(self.bootstrap_host, None)))
            self.store = Store(os.path.join(self.data_dir, "emulator.sqlite3"))
            self.broker = MosquittoBroker(os.path.join(self.data_dir, "broker"), host="127.0.0.1").start()
            broker = self.broker
            self.core = PlatformCore(self.store, self.broker_address, command_timeout=self.command_timeout,
                                     emulator=self, service_account=broker.service_account,
                                     broker_epoch=lambda: broker.epoch)
            self.core.products.user_topic_check = self._user_topic_check
            self.core.start()
            # device CAs uploaded over REST (AddCertificate): trusted by TLS once verified, checked at CONNECT
            self.device_cas = DeviceCaRegistry(self.store, self.certs.device_ca_file)
            device_tls = self.certs.server_context(request_client_cert=True)
            self.device_cas.attach(device_tls)
            bridging = self.core.bridging   # bridges share the front: they wrap the device rules (bridge_protocol.py)
            self.front = AccessFront(
                self.broker_address,
                BridgeAuthenticator(
                    IotdaAuthenticator(self.core.get_device, self.core.bind_fingerprint, self.sign_tolerance_hours,
                                       cert_check=self.device_cas.check),
                    self.core.bridges.get_bridge, self.sign_tolerance_hours),
                host=self.host, port=self._want["mqtt"], tls_port=self._want["mqtts"],
                ssl_context=device_tls, implicit_topics=bridge_implicit_subscriptions,
                on_online=bridging.on_online, on_ready=bridging.on_ready,
                on_offline=bridging.on_offline, name="iotda-front",
                limits=self.limits if self.limits.active else None,
                on_violation=self._on_violation, topic_authorizer=BridgeTopicRules(self.topic_authorizer()),
                platform_ready=self.core.is_ready, service_account=broker.service_account,
                ws_port=self._want["wss"],
                platform_intake=self.core.take_uplink if self.direct_uplinks else None,
                brokerless_links=self.direct_uplinks)
            if self.direct_uplinks:   # before the first device: its link may have no broker connection
                self.core.direct_downlink = self.front.deliver_direct
                self.core.on_broker_lost = self.front.drop_brokerless
            self.front.start()
            self._fronts.append(self.front)
            self.mqtt_port, self.mqtts_port = self.front.port, self.front.tls_port
            self.wss_port = self.front.ws_port
            self._started = True
            self.core.start_services()
            if self._http_enabled:
                self._start_http()
        except BaseException:
            self.stop()
            raise
        logger.info("emulator up: mqtt %s:%s, mqtts %s, http %s, data %s", self.host, self.mqtt_port,
                    self.mqtts_port, self.http_port, self.data_dir)
        return self

    def _start_http(self) -> None:
        try:
            from iotda_emulator.http.server import HttpServer  # written by the emulator-http helper
        except ImportError as exc:
            logger.info("HTTP server not available: %s", exc)
            return
        self.http_server = HttpServer(self, self.host, self._want["http"], self._want["https"],
                                      self.certs.server_context(request_client_cert=False))
        self.http_server.start()
        self.http_port = self.http_server.http_port
        self.https_port = self.http_server.https_port

    def stop(self) -> None:
        """Stop everything started (idempotent); removes the temporary data dir."""
        self._started = False
        if self.http_server is not None:
            _quietly(self.http_server.stop)
            self.http_server = None
        for front in self._fronts:
            _quietly(front.stop)
        self._fronts = []
        if self.core is not None:
            _quietly(self.core.stop)
        if self.broker is not None:
            _quietly(self.broker.stop)
        if self.store is not None:
            _quietly(self.store.close)
        self._data_lock.release()
        if self._own_dir and os.path.isdir(self.data_dir):
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- addresses ----------------------------------------------------------------------------------
    def broker_address(self) -> BrokerAddress:
        """Where the internal Mosquitto listens (a private unix socket; devices must use the access front)."""
        return self.broker.address

    @property
    def ca_file(self) -> str:
        """PEM of the CA that signed the server certificate (for MQTTS and HTTPS clients)."""
        return self.certs.ca_file

    @property
    def device_ca_file(self) -> str:
        """PEM of the device CA that signs device client certificates."""
        return self.certs.device_ca_file

    @property
    def http_url(self) -> Optional[str]:
        return f"http://{self.advertise_host}:{self.http_port}" if self.http_port else None

    @property
    def https_url(self) -> Optional[str]:
        return f"https://{self.advertise_host}:{self.https_port}" if self.https_port else None

    def add_front(self, front: AccessFront) -> AccessFront:
        """Register (and start, if needed) another access front, e.g. the bootstrap endpoint; stopped with us.

        A front without limits of its own gets the emulator's (``strict``/``rate_limit``) and violation tracing.
        """
        if front.limits is None and self.limits.active:
            front.limits = self.limits
        if front.on_violation is None:
            front.on_violation = self._on_violation
        if front.platform_ready is None and self.core is not None:
            front.platform_ready = self.core.is_ready
        if self.broker is not None:
            front.service_account = self.broker.service_account
        if front.port is None and front.tls_port is None:
            front.start()
        self._fronts.append(front)
        return front

    def service(self, service_id: str):
        """The platform service handling ``service_id`` (KeyError when none)."""
        return self.core.services[service_id]

    # ---- registry -------------------------------------------------------------------------------------
    def create_device(self, device_id: Optional[str] = None, secret: Optional[str] = None, **kwargs) -> dict:
        """Register a device (see :meth:`PlatformCore.create_device`); returns its record with the secret.

        Emulator convenience (REST AddDevice refuses an unknown product, as IoTDA does): when the device's
        product (``product_id``, default "emu_product") does not exist, a minimal one is created.
        """
        record = self.core.create_device(device_id, secret, **kwargs)
        self.core.products.ensure_product(record["product_id"])
        return record

    # ---- products -------------------------------------------------------------------------------------
    def create_product(self, product_id: Optional[str] = None, name: Optional[str] = None, **fields: Any) -> dict:
        """Create a product (IoTDA's CreateProduct fields as keywords, plus ``topics``: custom topics
        ``[{"name", "permission": "publish"|"subscribe"|"both"}]``); see :meth:`ProductCatalog.create_product`."""
        return self.core.products.create_product(product_id, name, **fields)

    def get_product(self, product_id: str) -> Optional[dict]:
        """The product record (``service_capabilities``, ``topics``, ...) or None."""
        return self.core.products.get_product(product_id)

    def list_products(self) -> List[dict]:
        """Every product, newest first."""
        return self.core.products.list_products()[0]

    def update_product(self, product_id: str, **fields: Any) -> dict:
        """Change product fields (``service_capabilities`` replaces the list); raises ``ProductNotFound``."""
        return self.core.products.update_product(product_id, **fields)

    def delete_product(self, product_id: str) -> bool:
        """Delete a product (its devices stay, as on IoTDA); True when it existed."""
        return self.core.products.delete_product(product_id)

    def set_product_topics(self, product_id: str, topics: List[dict]) -> List[dict]:
        """Replace the product's custom topics (``user/{name}``, permission publish, subscribe or both)."""
        return self.core.products.set_topics(product_id, topics)

    def delete_device(self, device_id: str) -> bool:
        return self.core.delete_device(device_id)

    def get_device(self, device_id: str) -> Optional[dict]:
        return self.core.get_device(device_id)

    def list_devices(self) -> List[dict]:
        return self.core.list_devices()

    def freeze_device(self, device_id: str, frozen: bool = True) -> None:
        self.core.freeze_device(device_id, frozen)

    def reset_device_secret(self, device_id: str, secret: Optional[str] = None,
                            force_disconnect: bool = False) -> str:
        """Reset the secret of a secret-authenticated device, as IoTDA's ResetDeviceSecret does.

        ``secret`` (8-32 letters, digits, ``_``, ``-``) becomes the device's secret; without it a random one
        is generated. A connected device keeps its connection unless ``force_disconnect`` is True, in which
        case it is dropped at once; any later connection must use the new secret (the old one gets CONNACK 4).
        Returns the new secret. Raises ``ValueError`` for an invalid secret or a certificate-authenticated
        device and ``DeviceNotFound`` for an unknown one.
        """
        return self.core.reset_device_secret(device_id, secret, force_disconnect)

    def reset_device_fingerprint(self, device_id: str, fingerprint: Optional[str] = None,
                                 force_disconnect: bool = False) -> Optional[str]:
        """Replace the certificate fingerprint of an X.509 device, as IoTDA's ResetFingerprint does.

        ``fingerprint`` (40 or 64 hex digits) becomes the registered one; None clears it, and the device's next
        certificate connection binds its certificate's SHA-256 fingerprint. The current connection stays unless
        ``force_disconnect``; later CONNECTs with another certificate get CONNACK 4. Returns the stored (lower
        case) fingerprint. ``DeviceNotFound`` for an unknown device.
        """
        record = self.core.update_device(device_id, fingerprint=fingerprint)
        if force_disconnect:
            self._disconnect_device(device_id)
        logger.info("device %s: fingerprint reset%s", device_id, ", connection dropped" if force_disconnect else "")
        return record.get("fingerprint")

    def add_topic_policy(self, pattern: str) -> None:
        """Allow every device to publish and subscribe on ``pattern`` (an IoTDA device policy).

        ``pattern`` is an MQTT filter outside ``$oc`` in which the level ``%u`` stands for the device's own id,
        e.g. ``"policy/%u/#"``; the platform traces that traffic under the device's id. It becomes resources of
        the device policy ``emulator_topic_policies`` bound to the resource space, which the REST device-policy
        API shows and changes like any other (:mod:`iotda_emulator.device_policies`). Raises ValueError for a
        ``$`` topic, a malformed filter, ``*`` or ``?`` (IoTDA policy wildcards) or a full policy.
        """
        if not isinstance(pattern, str) or not pattern or pattern.startswith("$") or "\x00" in pattern:
            raise ValueError("pattern: a topic filter outside $oc, e.g. 'policy/%u/#'")
        levels = pattern.split("/")
        if any(("#" in lv and (lv != "#" or i != len(levels) - 1)) or ("+" in lv and lv != "+")
               or ("%" in lv and lv != "%u") for i, lv in enumerate(levels)):
            raise ValueError(f"pattern: malformed topic filter {pattern!r}")
        # one source of truth with the REST device policies: a resource of the policy "emulator_topic_policies"
        self.core.policies.add_mqtt_pattern(pattern, device_policies.APP_ID)

    def issue_device_cert(self, device_id: str, password: Optional[str] = None):
        """A client certificate for ``device_id`` from the device CA: (cert_path, key_path, sha256 hex)."""
        return self.certs.issue_device_cert(device_id, password)

    def is_online(self, device_id: str) -> bool:
        return self.core.is_online(device_id)

    def wait_online(self, device_id: str, timeout: float = 10) -> bool:
        return self.core.wait_online(device_id, timeout, True)

    def wait_offline(self, device_id: str, timeout: float = 10) -> bool:
        return self.core.wait_online(device_id, timeout, False)

    # ---- platform -> device ---------------------------------------------------------------------------
    def send_command(self, device_id: str, service_id: Optional[str], command_name: Optional[str], paras: Any,
                     timeout: Optional[float] = None, request_id: Optional[str] = None) -> dict:
        """Send a command and return the device's response (see :meth:`PlatformCore.send_command`).

        ``request_id`` is the id in the command topic (IoTDA's ``command_id``); generated when None.
        """
        return self.core.send_command(device_id, service_id, command_name, paras, timeout, request_id)

    def set_properties(self, device_id: str, services: List[dict], timeout: Optional[float] = None,
                       request_id: Optional[str] = None) -> dict:
        """Write properties and return the device's answer; ``request_id`` as in :meth:`send_command`."""
        return self.core.set_properties(device_id, services, timeout, request_id)

    def get_properties(self, device_id: str, service_id: Optional[str] = None, timeout: Optional[float] = None,
                       request_id: Optional[str] = None) -> dict:
        """Query properties and return the device's answer; ``request_id`` as in :meth:`send_command`."""
        return self.core.get_properties(device_id, service_id, timeout, request_id)

    def send_message(self, device_id: str, payload: Union[bytes, str, dict], **kwargs) -> str:
        return self.core.send_message(device_id, payload, **kwargs)

    def send_event(self, device_id: str, service_id: str, event_type: str, paras: Any,
                   object_device_id: Optional[str] = None, event_id: Optional[str] = None) -> str:
        return self.core.send_event(device_id, service_id, event_type, paras, object_device_id, event_id)

    # ---- shadow and trace -----------------------------------------------------------------------------
    def shadow(self, device_id: str) -> List[dict]:
        return self.core.shadow(device_id)

    def set_desired(self, device_id: str, service_id: str, properties: dict,
                    expected_version: Optional[int] = None) -> int:
        """Merge desired values into the shadow (see :meth:`PlatformCore.set_desired`); the new version."""
        return self.core.set_desired(device_id, service_id, properties, expected_version)

    def delete_shadow(self, device_id: str) -> int:
        """Delete the device's whole shadow (DeleteDeviceShadow); returns the services removed."""
        return self.core.delete_shadow(device_id)

    def update_device(self, device_id: str, **fields: Any) -> dict:
        """Change a device's registry fields (see :meth:`PlatformCore.update_device`); the new record."""
        return self.core.update_device(device_id, **fields)

    def trace(self, device_id: Optional[str] = None, direction: Optional[str] = None,
              kind: Optional[str] = None, *, since_id: int = 0, since: Optional[float] = None,
              limit: Optional[int] = None, newest: bool = False) -> List[TraceEntry]:
        """Traced messages oldest first, filtered in SQL (see :meth:`PlatformCore.trace`)."""
        return self.core.trace(device_id, direction, kind, since_id, since=since, limit=limit, newest=newest)

    def wait_for_trace(self, predicate: Callable[[TraceEntry], bool], timeout: float = 10,
                       since_id: int = 0) -> TraceEntry:
        """The first trace entry (past or future, row id above ``since_id``) matching ``predicate``."""
        return self.core.wait_for_trace(predicate, timeout, since_id)

    # ---- limits -------------------------------------------------------------------------------------------
    def throttled(self, device_id: Optional[str] = None) -> int:
        """Publishes dropped by ``rate_limit``: of ``device_id``, or of every device when None."""
        return sum(f.throttled(device_id) for f in self._fronts)

    def topic_authorizer(self) -> TopicAuthorizer:
        """IoTDA's topic rules for this emulator's devices: device policies and the products' custom topics."""
        core = self.core

        def product_of(device_id: str) -> Optional[str]:
            record = core.get_device(device_id)
            return record.get("product_id") if record else None

        return TopicAuthorizer(policy_check=core.policies.topic_check(product_of, core.groups.static_groups_of),
                               custom_topic_check=core.custom_topic_allowed)

    def _on_violation(self, device_id: str, reason: str, topic: str, details: dict) -> None:
        if self.core is not None:
            self.core.trace_violation(device_id, reason, topic, **details)

    # ---- faults -----------------------------------------------------------------------------------------
    def pause(self, device_id: str) -> bool:
        """Half-open the device's link: nothing is forwarded either way, nothing is closed."""
        return any([f.pause(device_id) for f in self._fronts])

    def resume(self, device_id: str) -> bool:
        return any([f.resume(device_id) for f in self._fronts])

    def delay(self, device_id: str, seconds: float) -> None:
        """Add latency to every packet of the device's link, both ways (0 removes it)."""
        for f in self._fronts:
            f.delay(device_id, seconds)

    def cut(self, device_id: str) -> bool:
        """Close the device's link abruptly (both sides)."""
        return any([f.cut(device_id) for f in self._fronts])

    def _disconnect_device(self, device_id: str) -> None:
        self.core.bridging.drop_device(device_id)   # a device logged in through a bridge: the bridge is told
        for f in self._fronts:
            _quietly(f.cut, device_id)

    def kill_broker(self) -> None:
        """SIGKILL Mosquitto: every device link drops, the core starts reconnecting."""
        self.broker.kill()
        self.core.wait_disconnected(10)

    def restart_broker(self, timeout: float = 15.0) -> None:
        """Start Mosquitto again on the same port and wait until the platform core is back."""
        self.broker.restart()
        if not self.core.wait_connected(timeout):
            raise EmulatorError("platform core did not reconnect to the restarted broker")


def _quietly(fn, *args) -> None:
    try:
        fn(*args)
    except Exception:  # noqa: BLE001 - shutdown continues whatever fails
        logger.debug("ignored error in %s", getattr(fn, "__name__", fn), exc_info=True)
