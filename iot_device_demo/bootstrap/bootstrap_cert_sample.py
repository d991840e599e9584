"""Bootstrap with a static provisioning policy and an X.509 certificate.

    python -m iot_device_demo.bootstrap.bootstrap_cert_sample                      # local emulator
    python -m iot_device_demo.bootstrap.bootstrap_cert_sample --bs-server-uri iot-bs.cn-north-4.myhuaweicloud.com \
        --device-id ... --cert device.crt --key device.key --bs-message '{"baseStrategyKeyword":"kw"}' \
        --bs-ca-file bs-root.pem --ca-file iotda-root.pem
"""
from __future__ import annotations

from typing import List, Optional

from iot_device_demo.bootstrap import _bootstrap
from iot_device_demo.common import main_guard


def main(argv: Optional[List[str]] = None) -> int:
    return _bootstrap.run(argv, name="bootstrap_cert_sample", x509=True, group=False,
                          description="Bootstrap with a static provisioning policy and an X.509 certificate.")


if __name__ == "__main__":
    main_guard(main)
