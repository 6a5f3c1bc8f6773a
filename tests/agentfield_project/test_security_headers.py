"""Browser-facing hardening: CSP everywhere, no framing, CSRF on the admin, secure cookies on https."""

import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model

from tests.processes import ROOT, base_env

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/admin/login/", "/api/v1/health", "/api/v1/nodes"])
def test_every_response_carries_a_content_security_policy(client, url):
    policy = client.get(url)["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "object-src 'none'" in policy


def test_admin_forbids_framing_and_sniffing(client):
    response = client.get("/admin/login/")
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_admin_login_without_a_csrf_token_is_refused():
    from django.test import Client

    get_user_model().objects.create_superuser("root", "root@localhost", "pw-for-tests")
    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/admin/login/", {"username": "root", "password": "pw-for-tests"})
    assert response.status_code == 403


def test_admin_is_staff_only(client):
    client.force_login(get_user_model().objects.create_user("someone", password="pw-for-tests"))
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def _settings_under(env: dict[str, str]) -> str:
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.e2e
def test_cookies_are_secure_only_when_served_over_https(db_url):
    assert _settings_under(base_env(db_url)) == "False False 0"
    https = base_env(db_url, AGENTFIELD_HTTPS="true", AGENTFIELD_HSTS_SECONDS="3600")
    assert _settings_under(https) == "True True 3600"
