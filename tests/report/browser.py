"""Headless Chromium (Debian's chromium and chromium-driver) through selenium, for the page tests
and the page benchmark."""

from __future__ import annotations

import contextlib
import os
import shutil


def chromium_paths() -> tuple[str | None, str | None]:
    """The browser and its driver, where installed."""
    return (shutil.which("chromium") or shutil.which("chromium-browser"),
            shutil.which("chromedriver"))


@contextlib.contextmanager
def headless_chromium(width: int = 1400, height: int = 1000, page_load_strategy: str = "normal"):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = chromium_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    options.page_load_strategy = page_load_strategy  # "none": get() returns at once (timing)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--window-size={width},{height}", "--allow-file-access-from-files"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path, env={**os.environ}), options=options)
    try:
        yield driver
    finally:
        driver.quit()
