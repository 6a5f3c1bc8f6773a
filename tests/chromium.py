"""Headless Chromium (Debian's, driven by Playwright) for the browser tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip


@contextmanager
def headless() -> Iterator:
    """Chromium for one test. Start it once the test's rows and users exist: Playwright's sync API
    runs an event loop in this thread, and Django refuses ORM calls while one is running."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


def log_in(page, url: str, username: str, next_path: str = "/dashboard/") -> None:
    """Log in through the admin's form (every browser test user's password is `browser-password`)."""
    page.goto(f"{url}/admin/login/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", "browser-password")
    page.click("input[type=submit]")
