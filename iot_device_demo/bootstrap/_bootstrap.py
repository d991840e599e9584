"""What the four bootstrap (provisioning) demos share.

The device connects to the provisioning server (IoTDP), publishes its bootstrap request, receives the address
of its IoTDA instance (and, for registration groups with a secret, its new device secret), then connects there;
all of it inside ``device.connect()``. The SDK validates the answer and caches it (mode 0600, per-user cache,
or ``bs_cache_path``); ``--bs-force`` provisions again.

Local mode: the emulator's provisioning endpoint (``emu.service("$bootstrap")``) is configured with a static
policy and a pre-registered device, or with a registration group, and assigns the emulator's own IoTDA address.
"""
from __future__ import annotations

import json
import os
from typing import List, Optional

from iot_device_sdk_python.client.connect_auth_info import ConnectAuthInfo
from iot_device_sdk_python.client.request.device_message import DeviceMessage

from iot_device_demo.common import Demo, DemoError, say

KEYWORD = "demo_keyword"
CLOUD_BS_SERVER = "iot-bs.cn-north-4.myhuaweicloud.com"


def _add_arguments(parser) -> None:
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between messages (default 5)")


def _setup_local(demo: Demo, *, x509: bool, group: bool) -> dict:
    """Configure the emulator's provisioning endpoint; returns the bootstrap settings for the device."""
    bs = demo.emulator.service("$bootstrap")
    device_id = demo.args.device_id or f"emu_product_{demo.name}"
    settings = {"server_uri": bs.host, "port": bs.port, "bs_cert_path": bs.ca_file, "bs_message": None,
                "scope_id": None}
    if group:
        grp = bs.add_registration_group(certificate=x509)
        settings["scope_id"] = grp["scope_id"]
        if x509:
            demo.cert_file, demo.key_file, _ = bs.issue_group_device_cert(device_id)
            demo.set_device(device_id)
            say(f"[platform] registration group {grp['scope_id']} (certificate: the emulator's device CA)")
        else:
            demo.set_device(device_id, grp["secret"])   # the GROUP secret: the SDK derives the device's own
            say(f"[platform] registration group {grp['scope_id']} (group secret)")
    else:
        bs.add_policy(KEYWORD, keyword_source="payload", init_config={"greeting": "hello from the policy"})
        settings["bs_message"] = json.dumps({"baseStrategyKeyword": KEYWORD})
        if x509:
            demo.cert_file, demo.key_file, fingerprint = demo.emulator.issue_device_cert(device_id)
            bs.add_bootstrap_device(device_id, fingerprint=fingerprint, name=demo.name)
            demo.set_device(device_id)
        else:
            record = bs.add_bootstrap_device(device_id, name=demo.name)
            demo.set_device(device_id, record["secret"])
        say(f"[platform] static policy '{KEYWORD}' and bootstrap device {device_id} "
              f"({'certificate' if x509 else 'secret'}) registered")
    say(f"[platform] provisioning endpoint {settings['server_uri']}:{settings['port']}")
    return settings


def _cloud_settings(demo: Demo, *, group: bool) -> dict:
    a = demo.args
    if group and not a.scope_id:
        raise DemoError("registration-group bootstrap needs --scope-id (or IOTDA_SCOPE_ID)")
    return {"server_uri": a.bs_server_uri or CLOUD_BS_SERVER, "port": a.bs_port or 8883,
            "bs_cert_path": a.bs_ca_file, "bs_message": a.bs_message, "scope_id": a.scope_id}


def run(argv: Optional[List[str]], *, name: str, description: str, x509: bool, group: bool) -> int:
    with Demo(description, argv, x509=x509, bootstrap=True, register=False, name=name,
              add_arguments=_add_arguments) as demo:
        settings = _setup_local(demo, x509=x509, group=group) if demo.local else _cloud_settings(demo, group=group)
        auth = demo.connect_auth_info(
            server_uri=settings["server_uri"], port=settings["port"],
            bs_mode=(ConnectAuthInfo.BS_MODE_BOOTSTRAP_WITH_SCOPEID if group
                     else ConnectAuthInfo.BS_MODE_STANDARD_BOOTSTRAP))
        if settings["scope_id"]:
            auth.scope_id = settings["scope_id"]
        if settings["bs_message"]:
            auth.bs_message = settings["bs_message"]
        if settings["bs_cert_path"]:
            auth.bs_cert_path = settings["bs_cert_path"]   # CA of the provisioning server
        # auth.iot_cert_path (CA of the assigned IoTDA instance) comes from --ca-file / the emulator's CA
        if demo.local:
            # a fresh cache per run: each local emulator listens on new ports
            auth.bs_cache_path = os.path.join(demo.work_dir, "bootstrap-cache.json")
        if demo.args.bs_force:
            auth.bs_force = True
        device = demo.create_device(auth=auth)
        say(f"[device] provisioning through {settings['server_uri']}:{settings['port']} "
              f"({'registration group ' + settings['scope_id'] if group else 'static policy'}, "
              f"{'X.509' if x509 else 'secret'})")
        demo.connect(device)
        say("[device] provisioned and connected to the assigned IoTDA instance")

        def report() -> None:
            msg = DeviceMessage()
            msg.content = "Hello Huawei"
            device.get_client().report_device_message(msg)
            say("[device] reported message: Hello Huawei")

        demo.device_every(demo.args.interval, report)
        demo.run()
    return 0
