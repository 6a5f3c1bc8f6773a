"""`manage.py serve` is secure by default: a public address needs an API key first."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.core.management.base import CommandError
from django.test import override_settings

from agentfield_project.runtime.server import UnsupportedAddress, bind
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
    env = base_env(db_url, DJANGO_SECRET_KEY="k" * 50)  # a set key: the missing API key is what is refused
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "Refusing to listen on 0.0.0.0: no API key exists" in done.stderr
    assert "python manage.py create_api_key <name> --role admin" in done.stderr


def _children(pid: int) -> list[int]:
    """Pids of the live child processes of `pid` (from /proc)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return True
    return state == "Z"  # exited, not yet reaped by its (dead) parent's successor


@contextmanager
def _serving(db_url: str, log_dir, *options: str) -> Iterator[tuple[Process, str]]:
    """`manage.py serve OPTIONS` on a free port, answering /api/v1/health; stopped afterwards."""
    port = free_port()
    args = [sys.executable, "manage.py", "serve", "--port", str(port), *options]
    server = Process("serve", args, base_env(db_url), log_dir)
    url = f"http://127.0.0.1:{port}"

    def healthy():
        assert server.alive(), server.output()
        try:
            return http("GET", f"{url}/api/v1/health", timeout=2)[0] == 200
        except OSError:
            return False

    try:
        wait_until(healthy, timeout=30, message="serve to answer")
        yield server, url
    finally:
        server.stop()


@contextmanager
def _serving_processes(db_url: str, log_dir, processes: int) -> Iterator[tuple[Process, str, list[int]]]:
    """`serve --processes N` and its N children; any child still alive afterwards is killed."""
    children: list[int] = []
    try:
        with _serving(db_url, log_dir, "--processes", str(processes)) as (server, url):
            found = wait_until(lambda: len(_children(server.pid)) == processes and _children(server.pid), timeout=10)
            children.extend(found)
            yield server, url, children
    finally:
        for child in children:
            if not _gone(child):
                os.kill(child, signal.SIGKILL)


@pytest.mark.e2e
def test_serve_on_loopback_runs_daphne(db_url, log_dir):
    with _serving(db_url, log_dir) as (server, _):
        assert server.alive()
    assert server.popen.returncode is not None


@pytest.mark.e2e
def test_serve_with_two_processes_answers_and_stops_every_child_on_sigterm(db_url, log_dir):
    with _serving_processes(db_url, log_dir, 2) as (server, url, children):
        for _ in range(20):  # fresh connections, accepted by either child
            status, body, _ = http("POST", f"{url}/api/v1/executions/batch-status", {"execution_ids": ["nope"]})
            assert (status, body) == (200, {"nope": {"execution_id": "nope", "status": "not_found"}})
        os.kill(server.pid, signal.SIGTERM)  # the supervisor alone: it must pass the signal on
        assert server.popen.wait(timeout=30) == 0
        wait_until(lambda: all(_gone(child) for child in children), timeout=10, message="children to exit")


@pytest.mark.e2e
def test_serve_stops_the_other_processes_and_fails_when_one_dies(db_url, log_dir):
    with _serving_processes(db_url, log_dir, 2) as (server, _, children):
        os.kill(children[0], signal.SIGKILL)
        assert server.popen.wait(timeout=30) == 128 + signal.SIGKILL
        wait_until(lambda: all(_gone(child) for child in children), timeout=10, message="children to exit")


@pytest.mark.e2e
def test_serve_children_exit_when_the_supervisor_is_killed(db_url, log_dir):
    with _serving_processes(db_url, log_dir, 2) as (server, _, children):
        os.kill(server.pid, signal.SIGKILL)
        server.popen.wait(timeout=10)
        wait_until(lambda: all(_gone(child) for child in children), timeout=20, message="orphans to exit")


def test_several_processes_need_an_ipv4_address():
    with pytest.raises(UnsupportedAddress):
        bind("::1", free_port())
    sock = bind("localhost", 0)
    try:
        assert sock.getsockname()[0] == "127.0.0.1" and sock.get_inheritable()
    finally:
        sock.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "[::1]", "0.0.0.0"])  # noqa: S104
def test_the_single_process_server_listens_with_our_backlog_not_twisteds_fifty(host):
    from twisted.internet import endpoints, reactor

    from agentfield_project.runtime.server import BACKLOG, endpoint

    parsed = endpoints.serverFromString(reactor, endpoint(host, 8080))
    assert (parsed._interface, parsed._port, parsed._backlog) == (host.strip("[]"), 8080, BACKLOG)
