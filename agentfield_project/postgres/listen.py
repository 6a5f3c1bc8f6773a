"""The one LISTEN helper: the dedicated connections of the dispatcher's wake-up, the server's hub, the memory feed.

`listen_forever` (async, the server) and `listen_until` (a thread, the dispatcher) share everything
but the I/O: the connection settings below, the LISTEN statements, and the policy when the
connection is lost (one log line per outage, a traceback for anything else, full-jitter back-off
from BACKOFF_BASE_SECONDS up to the caller's cap, then connect again: a listener that stopped would
silently starve everything waiting on it).

A LISTEN connection lives outside Django's pool for as long as the process does. It takes the
same settings as every other connection (settings.py adds a connect timeout and TCP keepalives,
so a half-open connection after a failover becomes an error within about half a minute instead
of a wait that never ends), minus the parts that only make sense inside Django.

LISTEN needs a connection of its own on the server: behind PgBouncer in transaction mode a
notification goes to whichever client holds the server connection at that moment. There,
AGENTFIELD_LISTEN_DATABASE_URL names a way around the pooler (PostgreSQL itself, or a
session-mode pool) for these connections only.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection
from psycopg import sql

from agentfield_project.postgres import availability

logger = logging.getLogger(__name__)

# After a lost connection each listener waits a random delay up to this doubled per failure.
BACKOFF_BASE_SECONDS = 0.2


def listen_params() -> dict[str, Any]:
    """psycopg keyword arguments for a LISTEN connection (Django's database unless redirected)."""
    params = dict(connection.get_connection_params())
    for name in ("cursor_factory", "context", "pool"):
        params.pop(name, None)
    # Never prepare statements (psycopg would after five runs): a pooler may not keep them.
    params["prepare_threshold"] = None
    direct = settings.AGENTFIELD_LISTEN_DATABASE
    if direct:
        fields = {"dbname": "NAME", "user": "USER", "password": "PASSWORD", "host": "HOST", "port": "PORT"}
        params.update({name: direct[key] for name, key in fields.items() if direct.get(key)})
        params.update(direct.get("OPTIONS", {}))
    return params


def connect_params(name: str) -> dict[str, Any]:
    """Everything `psycopg.connect` needs for the LISTEN connection called `name` (autocommit, named)."""
    return {**listen_params(), "autocommit": True, "application_name": f"agentfield-{name.replace(' ', '-')}"}


def listen_statements(channels: Sequence[str]) -> list[sql.Composed]:
    """One `LISTEN "channel"` per channel (quoted: a channel name is an identifier)."""
    return [sql.SQL("LISTEN {}").format(sql.Identifier(channel)) for channel in channels]


class _Attempts:
    """The shared policy of both loops: what a connection's end means and how long to wait before the next."""

    def __init__(self, name: str, backoff_cap: float, on_lost: Callable[[], None]) -> None:
        self.name, self.backoff_cap, self.on_lost = name, backoff_cap, on_lost
        self.failures = 0
        self.outage = availability.Outage(name)

    def connected(self) -> None:
        self.failures = 0
        self.outage.recovered()

    def ended(self, error: BaseException | None) -> float:
        """Record how the session ended (None: it returned); the seconds to wait before connecting again."""
        if isinstance(error, psycopg.Error | OSError):
            self.outage.failed(error)
        elif error is not None:
            logger.error("%s failed; starting over", self.name, exc_info=error)
        self.failures += 1
        self.on_lost()
        return availability.backoff_seconds(self.failures, base=BACKOFF_BASE_SECONDS, cap=self.backoff_cap)


async def listen_forever(
    channels: Sequence[str],
    session: Callable[[psycopg.AsyncConnection], Awaitable[None]],
    *,
    name: str,
    backoff_cap: float,
    on_lost: Callable[[], None] = lambda: None,
) -> None:
    """Until cancelled: connect, LISTEN on `channels`, run `session(conn)`; after it ends back off and again.

    A database that goes away is logged once as an outage (and its recovery once); any other error
    is a bug, logged with its traceback, and the loop starts over. `on_lost` runs each time the
    connection is lost.
    """
    attempts = _Attempts(name, backoff_cap, on_lost)
    while True:
        error: Exception | None = None
        try:
            async with await psycopg.AsyncConnection.connect(**connect_params(name)) as conn:
                for statement in listen_statements(channels):
                    await conn.execute(statement)
                attempts.connected()
                await session(conn)
        except Exception as caught:  # noqa: BLE001 - judged by the shared policy; cancellation is not an Exception
            error = caught
        await asyncio.sleep(attempts.ended(error))


def listen_until(
    stop: threading.Event,
    channels: Sequence[str],
    session: Callable[[psycopg.Connection], None],
    *,
    name: str,
    backoff_cap: float,
    on_lost: Callable[[], None] = lambda: None,
) -> None:
    """Until `stop` is set: connect, LISTEN on `channels`, run `session(conn)`; after it ends back off and again.

    The blocking twin of `listen_forever`, for a thread (the session returns once `stop` is set; the
    back-off ends early when it is). The same policy: never raises, so the thread never dies.
    """
    attempts = _Attempts(name, backoff_cap, on_lost)
    while not stop.is_set():
        error: Exception | None = None
        try:
            with psycopg.connect(**connect_params(name)) as conn:
                for statement in listen_statements(channels):
                    conn.execute(statement)
                attempts.connected()
                session(conn)
        except Exception as caught:  # noqa: BLE001 - judged by the shared policy
            error = caught
        if stop.is_set():
            return
        stop.wait(attempts.ended(error))


async def next_notification(conn: psycopg.AsyncConnection, timeout: float) -> None:
    """Return at the next notification on `conn`, or after `timeout` (the fallback if one was missed)."""
    async for _ in conn.notifies(timeout=timeout, stop_after=1):
        pass
