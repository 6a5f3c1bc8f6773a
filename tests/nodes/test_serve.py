"""`manage.py serve` is secure by default: a public address needs an API key first."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.core.management.base import CommandError
from django.test import override_settings

from nodes.auth import issue_key, revoke_key
from nodes.management.commands.serve import is_loopback, refuse_insecure_bind
from tests.processes import ROOT, Process, base_env, free_port, http, wait_until


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.1", "localhost", "::1", "[::1]"])
def test_loopback_hosts_are_recognised(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "192.168.0.5", "example.com", ""])  # noqa: S104
def test_other_hosts_count_as_public(host):
    assert not is_loopback(host)


@pytest.mark.django_db
def test_a_public_address_is_refused_without_a_key_and_allowed_with_one():
    with pytest.raises(CommandError, match="create_api_key"):
        refuse_insecure_bind("0.0.0.0")  # noqa: S104
    key, _ = issue_key("agents")
    refuse_insecure_bind("0.0.0.0")  # noqa: S104
    revoke_key(key)
    with pytest.raises(CommandError):
        refuse_insecure_bind("0.0.0.0")  # noqa: S104


@pytest.mark.django_db
@override_settings(AGENTFIELD_ALLOW_INSECURE_BIND=True)
def test_an_explicit_setting_allows_an_open_public_address():
    refuse_insecure_bind("0.0.0.0")  # noqa: S104


@pytest.mark.e2e
def test_serve_exits_non_zero_explaining_how_to_create_a_key(db_url):
    args = [sys.executable, "manage.py", "serve", "--host", "0.0.0.0", "--port", str(free_port())]  # noqa: S104
    done = subprocess.run(args, cwd=ROOT, env=base_env(db_url), capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "Refusing to listen on 0.0.0.0" in done.stderr
    assert "python manage.py create_api_key <name>" in done.stderr


@pytest.mark.e2e
def test_serve_on_loopback_runs_daphne(db_url, log_dir):
    port = free_port()
    server = Process("serve", [sys.executable, "manage.py", "serve", "--port", str(port)], base_env(db_url), log_dir)
    try:
        url = f"http://127.0.0.1:{port}/api/v1/health"

        def healthy():
            assert server.alive(), server.output()
            try:
                return http("GET", url, timeout=2)[0] == 200
            except OSError:
                return False

        wait_until(healthy, timeout=30, message="serve to answer")
    finally:
        assert server.stop() is not None
