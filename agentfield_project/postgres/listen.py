"""The dedicated LISTEN connections (the dispatcher's wake-up, the server's hub, the memory feed).

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
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection

from agentfield_project.postgres import availability

logger = logging.getLogger(__name__)


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


async def listen_forever(
    channel: str,
    session: Callable[[psycopg.AsyncConnection], Awaitable[None]],
    *,
    name: str,
    backoff_cap: float,
    on_lost: Callable[[], None] = lambda: None,
) -> None:
    """Until cancelled: connect, LISTEN on `channel`, run `session(conn)`; after a failure back off and again.

    A database that goes away is logged once as an outage (and its recovery once); any other error
    is a bug, logged with its traceback, and the loop starts over: a listener that stopped would
    silently starve everything waiting on it. `on_lost` runs each time the connection is lost.
    """
    failures = 0
    outage = availability.Outage(name)
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(
                **listen_params(), autocommit=True, application_name=f"agentfield-{name.replace(' ', '-')}"
            ) as conn:
                failures = 0
                outage.recovered()
                await conn.execute(f"LISTEN {channel}")
                await session(conn)
        except (psycopg.Error, OSError) as error:
            outage.failed(error)
        except Exception:
            logger.exception("%s failed; starting over", name)
        failures += 1
        on_lost()
        await asyncio.sleep(availability.backoff_seconds(failures, base=0.2, cap=backoff_cap))


async def next_notification(conn: psycopg.AsyncConnection, timeout: float) -> None:
    """Return at the next notification on `conn`, or after `timeout` (the fallback if one was missed)."""
    async for _ in conn.notifies(timeout=timeout, stop_after=1):
        pass
