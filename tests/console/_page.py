"""Helpers of the console tests: URLs, selenium waits and bare devices (no SDK) that report to the emulator."""
from __future__ import annotations

import json
import uuid
from typing import Any, Callable, Dict, List, Optional

from tests.conformance._device import Device, hour_stamp, password, raw_connack

WAIT = 20.0          # generous: the machine may be loaded; every wait returns as soon as it holds


def base(emu: Any) -> str:
    return emu.http_url.rstrip("/")


def api(emu: Any, path: str) -> str:
    return base(emu) + "/console/api" + path


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def wait(driver: Any, condition: Callable[[Any], Any], what: str, timeout: float = WAIT) -> Any:
    """``condition(driver)`` once truthy (its value); AssertionError naming ``what`` after ``timeout``."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1,
                             ignored_exceptions=(StaleElementReferenceException,)).until(condition)
    except TimeoutException:
        raise AssertionError(f"page never showed {what}") from None


def by(css: str) -> tuple:
    """The selenium locator of a CSS selector: ``driver.find_element(*by(css))``."""
    from selenium.webdriver.common.by import By

    return By.CSS_SELECTOR, css


def open_console(browser: Any, emu: Any, device_id: Optional[str] = None) -> None:
    """Load the console (on ``device_id``'s page if given) at 1400x1000 and wait until it is connected."""
    browser.set_window_size(1400, 1000)
    browser.get(base(emu) + "/console" + (f"?device={device_id}" if device_id else ""))
    wait(browser, lambda d: d.find_element(*by("#api-status")).text == "connected", "the console connected")


def fill(driver: Any, element_id: str, text: str) -> None:
    from selenium.webdriver.common.by import By

    field = driver.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(text)


def click(driver: Any, element_id: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, element_id).click()


def texts(driver: Any, css: str) -> List[str]:
    from selenium.webdriver.common.by import By

    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, css)]


def connack(emu: Any, device_id: str, secret: Optional[str]) -> Optional[int]:
    """The CONNACK return code one MQTT 3.1.1 CONNECT of ``device_id`` with ``secret`` gets (IoTDA rules)."""
    stamp = hour_stamp()
    return raw_connack(emu.host, emu.mqtt_port, f"{device_id}_0_0_{stamp}", device_id,
                       password(secret, stamp) if secret else None)


def connect(emu: Any, record: Dict[str, Any]) -> Device:
    """A connected bare device for ``record`` (close it with ``.close()``)."""
    dev = Device(emu.host, emu.mqtt_port, record["device_id"], record["secret"])
    assert dev.connect() == 0
    return dev


def report(dev: Device, service_id: str, properties: Dict[str, Any]) -> None:
    """One ``properties/report`` of ``dev``, acknowledged by the broker."""
    dev.publish(f"$oc/devices/{dev.id}/sys/properties/report",
                json.dumps({"services": [{"service_id": service_id, "properties": properties}]}))


def message_up(dev: Device, text: str) -> None:
    dev.publish(f"$oc/devices/{dev.id}/sys/messages/up", json.dumps({"content": text}))
