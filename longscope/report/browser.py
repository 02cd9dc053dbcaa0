"""Open a report in headless Chromium through selenium: what the browser test and the screenshot script use."""

from __future__ import annotations

import base64
import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Debian's packages; the Makefile's test target installs them when missing.
INSTALL = "apt-get install -y chromium chromium-driver"


def missing() -> str | None:
    """Why a browser cannot be started here, or None when it can."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            return f"{path} is missing (install with `{INSTALL}`)"
    return None


@contextlib.contextmanager
def headless(width: int = 1280, height: int = 1000) -> Iterator:
    """A headless Chromium driven by selenium, with a fresh profile that is removed afterwards.

    Background networking and component updates are off, so the browser itself makes no requests either.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="longscope-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-dev-shm-usage", "--hide-scrollbars",
                     f"--user-data-dir={profile}", f"--window-size={width},{height}"):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def emulate_phone(driver, width: int = 390, height: int = 844) -> None:
    """Lay pages out as a phone would (a desktop window cannot be made narrower than about 500 pixels)."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 3, "mobile": True},
    )


def screenshot(driver, target: Path, full_page: bool = False) -> Path:
    """Save the current page as PNG: the window, or with ``full_page`` everything down to its end."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not full_page:
        driver.save_screenshot(str(target))
        return target
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {"format": "png", "captureBeyondViewport": True,
         "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}},
    )  # fmt: skip
    target.write_bytes(base64.b64decode(shot["data"]))
    return target
