"""Pooled connections are pinged before they are lent only after an idle spell (or when broken)."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection

from agentfield_project.postgres.availability import Outage
from agentfield_project.postgres.base import check_connection


class FakeConnection:
    autocommit = True
    broken = False

    def __init__(self) -> None:
        self.pings = 0

    def execute(self, query: str) -> None:
        self.pings += 1


def test_a_connection_is_pinged_when_first_lent_and_not_again_right_after(settings):
    settings.AGENTFIELD_DB_CHECK_IDLE_SECONDS = 60
    conn = FakeConnection()
    check_connection(conn)
    check_connection(conn)
    assert conn.pings == 1


def test_a_connection_idle_longer_than_the_setting_is_pinged(settings):
    settings.AGENTFIELD_DB_CHECK_IDLE_SECONDS = 0
    conn = FakeConnection()
    check_connection(conn)
    check_connection(conn)
    assert conn.pings == 2


def test_a_broken_connection_is_always_pinged(settings):
    settings.AGENTFIELD_DB_CHECK_IDLE_SECONDS = 60
    conn = FakeConnection()
    check_connection(conn)
    conn.broken = True
    check_connection(conn)
    assert conn.pings == 2


def test_after_a_database_failure_every_connection_is_pinged_before_it_is_lent(settings):
    # The database may have restarted: each connection it dropped would otherwise fail a request.
    settings.AGENTFIELD_DB_CHECK_IDLE_SECONDS = 60
    conn = FakeConnection()
    check_connection(conn)
    Outage("test").failed(psycopg.OperationalError("server closed the connection unexpectedly"))
    check_connection(conn)
    check_connection(conn)
    assert conn.pings == 3


@pytest.mark.django_db
def test_the_project_pool_uses_this_check():
    connection.ensure_connection()
    assert connection.pool._check is check_connection
