"""Statements run on the event loop itself, over psycopg's async connections: no request thread.

The SDK's heartbeat is one UPDATE. Answered in a request thread, the hand-off to the thread and
back, Django's request set-up and the pool's lending cost more than the statement: a heartbeat
cost ~1.2 ms of server CPU, where daphne with an async UPDATE on its loop costs ~0.55 ms (bench
scenario 11; bench/README.md, seventh pass). A view may run such a statement here instead.

Every outcome is a value: the rows, or None when the statement could not run here now (no free
connection, the database known to be away, a connection that failed or broke). The caller then
takes the thread path, which answers as it always has (its 503 while the database is away), so
this path never has an error answer of its own.

Connections are few (`MAX_CONNECTIONS` per process, opened when first needed) and belong to the
event loop that opened them: Django's test client and the tests run each request in a new loop
(asyncio.run), and a connection is closed as soon as another loop asks for one, or by `close()`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from django.db import connections

from agentfield_project.postgres import availability

MAX_CONNECTIONS = 2
# A loop connection fails fast: while it tries, the request waits, and the thread path is the
# fallback anyway (whose pool has its own timeout).
CONNECT_TIMEOUT_SECONDS = 2
APPLICATION_NAME = "agentfield-loop"


class LoopDatabase:
    """Up to `size` autocommit connections of database `alias`, lent to one statement at a time."""

    def __init__(self, size: int = MAX_CONNECTIONS, alias: str = "default") -> None:
        self.size = size
        self.alias = alias
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: list[psycopg.AsyncConnection] = []
        self._lent = 0

    async def fetchall(self, sql: str, params: Sequence[Any] | Mapping[str, Any]) -> list[tuple] | None:
        """The rows of `sql`, or None when it cannot run on the loop now (the caller takes the thread path)."""
        self._follow(asyncio.get_running_loop())
        if availability.web.circuit_open():
            return None
        connection = await self._lend()
        if connection is None:
            return None
        try:
            cursor = await connection.execute(sql, params)
            rows = await cursor.fetchall()
        except BaseException as error:
            # Broken, cancelled mid-statement (the client left) or refused: never lend it again.
            self._lent -= 1
            _discard(connection)
            if isinstance(error, psycopg.Error):
                return None
            raise
        self._lent -= 1
        self._idle.append(connection)
        return rows

    def close(self) -> None:
        """Close the idle connections (those lent are closed when their statement ends)."""
        while self._idle:
            _discard(self._idle.pop())

    def connection_count(self) -> int:
        return len(self._idle) + self._lent

    async def _lend(self) -> psycopg.AsyncConnection | None:
        if self._idle:
            self._lent += 1
            return self._idle.pop()
        if self._lent >= self.size:
            return None  # all busy: the thread path serves this one rather than queueing it here
        self._lent += 1
        try:
            return await psycopg.AsyncConnection.connect(**self._params(), autocommit=True)
        except BaseException as error:
            self._lent -= 1
            if isinstance(error, psycopg.Error):
                return None
            raise

    def _params(self) -> dict[str, Any]:
        """Django's connection parameters for `alias`, read at call time (the tests' database included)."""
        params = connections[self.alias].get_connection_params()
        params.pop("cursor_factory", None)  # Django's is a synchronous cursor
        params["connect_timeout"] = min(
            int(params.get("connect_timeout") or CONNECT_TIMEOUT_SECONDS), CONNECT_TIMEOUT_SECONDS
        )
        params["application_name"] = APPLICATION_NAME
        return params

    def _follow(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop is not self._loop:
            self.close()  # the old loop's connections cannot be used from this one
            self._loop, self._lent = loop, 0


def _discard(connection: psycopg.AsyncConnection) -> None:
    # Closing without awaiting: the socket goes at once, whichever loop (or none) is running.
    connection.pgconn.finish()


database = LoopDatabase()
