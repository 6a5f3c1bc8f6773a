"""Django's PostgreSQL backend whose pool pings a connection only after it sat idle, and which
fails at once while this process knows the database is away (availability.Watch).

With a pool, Django's CONN_HEALTH_CHECKS makes psycopg_pool run an empty query every time it
lends a connection: under load one extra round trip per request, for a connection that answered
a moment ago. Here a connection is pinged only when it has not been lent for
AGENTFIELD_DB_CHECK_IDLE_SECONDS (or looks broken, or the database failed in this process a
moment ago: it may have restarted and dropped them all); one lent more recently is trusted, and if
the server dropped it in between, that one request fails and the pool discards the connection.
"""

from __future__ import annotations

import time

import psycopg
from django.conf import settings
from django.db.backends.postgresql import base
from psycopg import Connection
from psycopg_pool import ConnectionPool

from agentfield_project.postgres import availability

# Kept on the connection object itself: the pool calls the check from any thread.
LENT_AT = "_agentfield_lent_at"


def check_connection(conn: Connection) -> None:
    """Raise unless `conn` is usable; ping the server only after an idle spell."""
    now = time.monotonic()
    lent_at = getattr(conn, LENT_AT, None)
    idle = lent_at is None or now - lent_at >= settings.AGENTFIELD_DB_CHECK_IDLE_SECONDS
    if conn.broken or idle or availability.failed_recently():
        ConnectionPool.check_connection(conn)
    setattr(conn, LENT_AT, now)


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        # Fail at once while this process knows the database is away (see availability.Watch).
        if availability.web.circuit_open():
            raise psycopg.OperationalError("database unavailable: waiting for it to answer again")
        return super().get_new_connection(conn_params)

    @property
    def pool(self) -> ConnectionPool | None:
        pool = super().pool
        # Django builds the pool with check=ConnectionPool.check_connection when
        # CONN_HEALTH_CHECKS is on and offers no way to pass another check.
        if pool is not None and pool._check is ConnectionPool.check_connection:
            pool._check = check_connection
        return pool
