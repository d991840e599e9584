"""Fixtures of the console tests: a headless Chromium (``browser``) and screenshots kept as test artefacts.

Screenshots go to ``$CONSOLE_SCREENSHOT_DIR`` when set, else to ``artefacts/console/`` at the top of the
repository (ignored by git); the directory is printed once per session.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from typing import Callable, Iterator

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def screenshot_dir() -> str:
    """Where screenshots are written (created when missing)."""
    path = os.environ.get("CONSOLE_SCREENSHOT_DIR") or os.path.join(REPO, "artefacts", "console")
    os.makedirs(path, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def shots_dir() -> str:
    path = screenshot_dir()
    print(f"\nconsole screenshots: {path}")
    return path


@pytest.fixture
def shot(shots_dir: str, request) -> Callable[..., str]:
    """``shot(driver, name)`` saves a PNG named after the test and ``name``; returns its path."""

    def save(driver, name: str) -> str:
        path = os.path.join(shots_dir, f"{request.node.name}-{name}.png".replace("/", "_"))
        assert driver.save_screenshot(path), f"screenshot {path} not written"
        print(f"screenshot: {path}")
        return path

    return save


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """A headless Chromium driven by selenium (skipped, with the reason, when either is missing)."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.skip(f"headless browser test needs {', '.join(missing)} "
                    "(Debian: apt-get install -y chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in requirements-dev.txt")
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="console-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                 "--disable-dev-shm-usage", "--window-size=1400,1000", f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})   # for script_errors()
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def script_errors(driver) -> list:
    """JavaScript errors the page logged since the last call (failed HTTP answers are not script errors)."""
    return [e["message"] for e in driver.get_log("browser")
            if e.get("level") == "SEVERE" and "Failed to load resource" not in e.get("message", "")]
