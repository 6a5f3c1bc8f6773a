"""Shared fixtures: time as a parameter, an API client, and live processes for end-to-end tests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from rest_framework.test import APIClient

from tests import processes


@pytest.fixture(autouse=True)
def _forget_api_keys():
    """Each test starts knowing its fresh database holds no API key (query counts stay exact), and
    keys a test created never leak into the next one. Creating or revoking a key resets the cache."""
    from nodes.auth import forget_keys, remember_no_keys

    remember_no_keys()
    yield
    forget_keys()


@pytest.fixture
def now() -> datetime:
    return datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def db_url(transactional_db) -> str:
    """DATABASE_URL of the test database, for subprocesses (their writes are really committed)."""
    return processes.database_url(connection.settings_dict)


@pytest.fixture
def log_dir(tmp_path):
    return tmp_path / "logs"


@pytest.fixture
def launch(db_url, log_dir, request):
    """Start processes for one test and stop every one of them when it ends (logs shown on failure)."""
    started: list[processes.Process] = []

    class Launcher:
        def server(self, **settings) -> str:
            process, url = processes.start_server(db_url, log_dir, **settings)
            started.append(process)
            self.server_process = process
            return url

        def dispatcher(self, *extra: str, **settings) -> processes.Process:
            process = processes.start_dispatcher(db_url, log_dir, *extra, **settings)
            started.append(process)
            return process

        def agent(self, script: str, server_url: str, **env) -> processes.Process:
            process = processes.start_agent(script, server_url, log_dir, **env)
            started.append(process)
            return process

    yield Launcher()
    for process in reversed(started):
        process.stop(timeout=10)
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        for process in started:
            print(f"----- {process.name} ({process.log_path}) -----\n{process.output()[-6000:]}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
