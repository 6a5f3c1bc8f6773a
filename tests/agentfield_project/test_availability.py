"""Which database errors mean "unavailable" (503, back off) and which are bugs or bad requests."""

from __future__ import annotations

import psycopg
import pytest
from django.db import IntegrityError, OperationalError, connection
from psycopg import errors
from psycopg_pool import PoolTimeout

from agentfield_project.postgres.availability import Outage, backoff_seconds, is_unavailable
from tests.processes import free_port, wait_until


def test_a_refused_connection_is_unavailable():
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect(host="127.0.0.1", port=free_port(), connect_timeout=2)
    assert is_unavailable(refused.value)


@pytest.mark.parametrize(
    "error",
    [
        PoolTimeout("couldn't get a connection after 4.00 sec"),
        psycopg.InterfaceError("the connection is closed"),
        errors.AdminShutdown("terminating connection due to administrator command"),
        errors.CannotConnectNow("the database system is starting up"),
        errors.TooManyConnections("sorry, too many clients already"),
        psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly"),
    ],
)
def test_shutdowns_pool_timeouts_and_lost_connections_are_unavailable(error):
    assert is_unavailable(error)


@pytest.mark.parametrize(
    "error",
    [errors.DeadlockDetected("deadlock detected"), errors.QueryCanceled("statement timeout"), ValueError("x"), None],
)
def test_deadlocks_timeouts_and_other_errors_are_not(error):
    assert not is_unavailable(error)


def test_djangos_wrapped_errors_are_judged_by_their_cause():
    try:
        try:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        except psycopg.OperationalError as cause:
            raise OperationalError("wrapped") from cause
    except OperationalError as wrapped:
        assert is_unavailable(wrapped)


@pytest.mark.django_db
def test_a_constraint_violation_from_the_real_database_is_not():
    with pytest.raises(IntegrityError) as violation, connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE t (id int PRIMARY KEY)")
        cursor.execute("INSERT INTO t VALUES (1), (1)")
    assert not is_unavailable(violation.value)


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(caplog):
    outage = Outage("test")
    assert not outage.recovered()
    assert outage.failed(psycopg.OperationalError("gone"))
    assert not outage.failed(psycopg.OperationalError("still gone"))
    assert outage.ongoing
    assert outage.recovered()
    assert not outage.recovered()
    assert [record.getMessage().split(" (")[0] for record in caplog.records] == [
        "test: database unavailable",
        "test: database is back after 0.0 s",
    ]


def test_the_back_off_grows_with_failures_and_stays_under_its_cap():
    assert all(0.25 <= backoff_seconds(1) <= 0.5 for _ in range(50))
    assert all(0.25 <= backoff_seconds(20, cap=3.0) <= 3.0 for _ in range(50))
    assert max(backoff_seconds(4) for _ in range(200)) > 1.0


@pytest.mark.django_db(transaction=True)
def test_a_failed_request_while_the_database_answers_opens_no_circuit(caplog):
    # Right after a restart a pooled connection the server dropped fails one request: the watch's
    # ping answers, so nothing else is refused.
    from agentfield_project.postgres.availability import Watch

    watch = Watch("test-server")
    replayed = []
    watch.on_recovery(lambda: replayed.append(True))
    assert watch.failed(psycopg.OperationalError("server closed the connection unexpectedly"))
    wait_until(lambda: not watch.ongoing, timeout=20, message="the watch to see the database answer")
    assert not watch.circuit_open() and replayed == [True]
