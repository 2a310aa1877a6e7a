"""Headless Chromium for the web page's tests and screenshots: Debian's `chromium` driven by Selenium
through Debian's `chromium-driver` (no browser download; scripts/install-system-deps.sh installs both).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = os.environ.get("MESOS_GPU_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("MESOS_GPU_CHROMEDRIVER", "/usr/bin/chromedriver")
WINDOW = (1440, 900)  # a laptop screen


def missing() -> str | None:
    """Why no browser can be started here (None when chromium and chromedriver are both present)."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists() and shutil.which(path) is None:
            return f"{path} is missing: run scripts/install-system-deps.sh (chromium, chromium-driver)"
    return None


def chromium(profile: Path, width: int = WINDOW[0], height: int = WINDOW[1]) -> webdriver.Chrome:
    """A headless Chromium with its own profile directory, loopback only."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new", f"--window-size={width},{height}", "--no-sandbox", "--disable-dev-shm-usage",
        "--disable-gpu", "--no-first-run", "--disable-extensions", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--metrics-recording-only", "--mute-audio",
        f"--user-data-dir={profile}", "--proxy-server=direct://", "--proxy-bypass-list=*",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=CHROMEDRIVER, log_output=os.devnull)
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    return driver
