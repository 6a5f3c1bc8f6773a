"""Fixtures of the dashboard's browser tests (test_dashboard_browser.py, test_dashboard_console_browser.py)."""

from __future__ import annotations

import pytest

from tests.chromium import headless


@pytest.fixture
def users(db_url) -> dict[str, str]:
    """A staff login, and the session cookie of a logged-in non-staff user."""
    from django.contrib.auth.models import User
    from django.test import Client

    # Made before the browser starts (the writer process does the rest).
    User.objects.create_user("staff", password="browser-password", is_staff=True)
    client = Client()
    client.force_login(User.objects.create_user("visitor"))
    return {"visitor": client.cookies["sessionid"].value}


@pytest.fixture
def browser(users):
    """Chromium, started once `users` exist."""
    with headless() as chromium:
        yield chromium
