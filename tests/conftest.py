"""Shared fixtures: time as a parameter, API and staff clients, a committed node, the HTTP fakes of
tests/http_fakes.py, and live processes for end-to-end tests (which must be marked e2e)."""

from __future__ import annotations

import gc
import uuid
from datetime import UTC, datetime

import pytest
from django.db import connection
from rest_framework.test import APIClient

from tests import processes
from tests.http_fakes import fake_llm, raw_server, receiver, stub_agent  # noqa: F401 - for every test package


@pytest.fixture(autouse=True)
def _forget_api_keys():
    """Each test starts knowing its fresh database holds no API key (query counts stay exact), and
    keys a test created never leak into the next one. Creating or revoking a key resets the cache."""
    from executions.access import forget_reported
    from executions.services import forget_served
    from nodes.auth import forget_keys, remember_no_keys
    from nodes.ownership import forget
    from nodes.services import forget_signs_of_life

    remember_no_keys()
    forget()  # nor do node owners cached by an earlier test's database
    forget_reported()  # nor executions
    forget_served()  # nor what nodes serve
    forget_signs_of_life()  # nor when an instance last reported
    yield
    forget_keys()


@pytest.fixture(autouse=True)
def _loop_connections_closed():
    """The event loop's own connections (agentfield_project/postgres/loop_db.py) end with the test
    that opened them: the test database can then be dropped."""
    from agentfield_project.postgres import loop_db

    yield
    loop_db.database.close()


@pytest.fixture(autouse=True)
def _database_watch_closed():
    """A test that made the in-process server answer 503 leaves no open circuit to the next one."""
    from agentfield_project.postgres import availability

    yield
    availability.web._down.clear()
    availability.web.since = None
    availability._last_failure = float("-inf")


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path):
    """Callbacks a test makes the server keep go to the test's own directory, never to var/; and the
    tests' agents live on loopback (like `make run`, which also allows the private networks)."""
    settings.AGENTFIELD_CALLBACK_SPOOL_DIR = str(tmp_path / "spool")
    settings.AGENTFIELD_AGENT_ALLOWED_CIDRS = ["127.0.0.0/8", "::1/128"]


@pytest.fixture
def now() -> datetime:
    return datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def staff_client(client, db):
    """A client logged in as `staff`: staff, not a superuser (the admin's pages need `admin_client`)."""
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_user("staff", is_staff=True))
    return client


@pytest.fixture
def committed_node(transactional_db):
    """The node `batch` (reasoner `work`), committed: requests served on other threads see it."""
    from tests.factories import make_node

    yield make_node("batch", reasoners=("work",))
    # Those threads' connections (asgiref's executor threads) close only when their thread-local
    # wrappers are collected; collect now so the test database can be flushed.
    gc.collect()


@pytest.fixture
def db_url(transactional_db) -> str:
    """DATABASE_URL of the test database, for subprocesses (their writes are really committed)."""
    return processes.database_url(connection.settings_dict)


@pytest.fixture
def log_dir(tmp_path):
    return tmp_path / "logs"


class Launcher:
    """Starts real processes against one database; `stop_all()` stops every one of them."""

    def __init__(self, db_url: str, log_dir) -> None:
        self.db_url = db_url
        self.log_dir = log_dir
        self.started: list[processes.Process] = []

    def server(self, **settings) -> str:
        process, url = processes.start_server(self.db_url, self.log_dir, **settings)
        self.started.append(process)
        self.server_process = process
        return url

    def dispatcher(self, *extra: str, **settings) -> processes.Process:
        process = processes.start_dispatcher(self.db_url, self.log_dir, *extra, **settings)
        self.started.append(process)
        return process

    def agent(self, script: str, server_url: str, **env) -> processes.Process:
        process = processes.start_agent(script, server_url, self.log_dir, **env)
        self.started.append(process)
        return process

    def stop_all(self, show_logs: bool) -> None:
        for process in reversed(self.started):
            process.stop(timeout=10)
        if show_logs:
            for process in self.started:
                print(f"----- {process.name} ({process.log_path}) -----\n{process.output()[-6000:]}")


def _failed(request) -> bool:
    return request.node.rep_call.failed if hasattr(request.node, "rep_call") else False


@pytest.fixture
def launch(db_url, log_dir, request):
    """Start processes for one test and stop every one of them when it ends (logs shown on failure)."""
    launcher = Launcher(db_url, log_dir)
    yield launcher
    launcher.stop_all(show_logs=_failed(request))


@pytest.fixture(scope="session")
def throwaway_pg():
    """A PostgreSQL server of the test session's own, which fault tests stop and restart."""
    from tests.throwaway_pg import ThrowawayPostgres

    server = ThrowawayPostgres()
    try:
        server.migrate_template()
        yield server
    finally:
        server.close()


@pytest.fixture
def faulty_db(throwaway_pg):
    """A fresh migrated database on the throwaway server; the server is running again afterwards."""
    name = f"fault_{uuid.uuid4().hex[:12]}"
    throwaway_pg.database = name
    throwaway_pg.db_url = throwaway_pg.new_database(name)
    yield throwaway_pg
    if not throwaway_pg.running():
        throwaway_pg.start()


@pytest.fixture
def launch_on_faulty_db(faulty_db, log_dir, request):
    """Like `launch`, against the throwaway server's database (which the test may restart)."""
    launcher = Launcher(faulty_db.db_url, log_dir)
    yield launcher
    launcher.stop_all(show_logs=_failed(request))


PROCESS_FIXTURES = {"launch", "launch_on_faulty_db", "faulty_db", "throwaway_pg"}


def pytest_collection_modifyitems(items) -> None:
    """`make test-fast` leaves out the tests marked e2e: one that starts processes must say so."""
    unmarked = [
        item.nodeid
        for item in items
        if PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())) and not item.get_closest_marker("e2e")
    ]
    if unmarked:
        raise pytest.UsageError("tests that start processes need @pytest.mark.e2e: " + ", ".join(unmarked))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
