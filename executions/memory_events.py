"""Memory change events for the SDK's `@app.memory.on_change`: a WebSocket and a history route.

Every memory set or delete writes a small `MemoryEvent` row and NOTIFYs in the same statement
(executions/memory.py). Each server process runs one `MemoryFeed` (started by the first socket):
a LISTEN connection that reads new rows and hands them to the open sockets of this process, so
agents on any server hear changes made through any other. A socket
(`/api/v1/memory/events/ws?patterns=a*,b&scope=workflow&scope_id=run_1`) authenticates like
the API (X-API-Key) and receives only changes of scopes its key may read (nodes/policy.py).

Rows are read by id with a trailing window of a few seconds, because ids are handed out before
commit: a row that commits after a higher one is still seen, and each is sent once.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db.models import Q
from psycopg.rows import dict_row

from agentfield_project.postgres.listen import listen_forever, next_notification
from agentfield_project.runtime import intake
from agentfield_project.timestamps import rfc3339
from executions import access
from executions.memory import MEMORY_CHANNEL
from executions.models import MemoryEntry, MemoryEvent
from nodes import auth, policy

WINDOW = timedelta(seconds=10)  # how late a row may commit after a higher id and still be sent
POLL_SECONDS = 5.0
QUEUE_SIZE = 1000

_SELECT = """
SELECT e.id, e.scope, e.scope_id, e.key, e.action, e.created_at, m.data
  FROM executions_memoryevent e
  LEFT JOIN executions_memoryentry m
    ON e.action = 'set' AND m.scope = e.scope AND m.scope_id = e.scope_id AND m.key = e.key
 WHERE e.id > %(after)s OR e.created_at > %(since)s
 ORDER BY e.id
 LIMIT 1000
"""


def key_matches(patterns: list[str], key: str) -> bool:
    """The SDK's wildcard rule: `*` matches anything; no pattern matches every key."""
    if not patterns:
        return True
    return any(re.fullmatch(".*".join(re.escape(part) for part in pattern.split("*")), key) for pattern in patterns)


def body(row: dict[str, Any]) -> dict[str, Any]:
    """The SDK's MemoryChangeEvent (the data is the entry's current value; null once deleted)."""
    return {
        "id": str(row["id"]),
        "type": "memory_change",
        "timestamp": rfc3339(row["created_at"]),
        "scope": row["scope"],
        "scope_id": row["scope_id"],
        "key": row["key"],
        "action": row["action"],
        "data": row.get("data"),
        "previous_data": None,
        "metadata": {},
    }


class Subscription:
    def __init__(self, patterns: list[str], scope: str, scope_id: str) -> None:
        self.patterns, self.scope, self.scope_id = patterns, scope, scope_id
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)

    def wants(self, event: dict[str, Any]) -> bool:
        if self.scope and event["scope"] != self.scope:
            return False
        if self.scope_id and event["scope_id"] != self.scope_id:
            return False
        return key_matches(self.patterns, event["key"])


class MemoryFeed:
    """One per server process: LISTEN, read new event rows, hand them to this process's sockets."""

    def __init__(self) -> None:
        self.subscriptions: set[Subscription] = set()
        self._task: asyncio.Task | None = None
        self._last_id = 0
        self._sent: dict[int, datetime] = {}

    def subscribe(self, subscription: Subscription) -> None:
        self.subscriptions.add(subscription)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run())

    def unsubscribe(self, subscription: Subscription) -> None:
        self.subscriptions.discard(subscription)

    async def run(self) -> None:
        await listen_forever([MEMORY_CHANNEL], self.session, name="memory event feed", backoff_cap=5.0)

    async def session(self, conn: psycopg.AsyncConnection) -> None:
        if not self._last_id:
            cursor = await conn.execute("SELECT coalesce(max(id), 0) FROM executions_memoryevent")
            self._last_id = (await cursor.fetchone())[0]
        while True:
            await self.catch_up(conn)
            await next_notification(conn, POLL_SECONDS)

    async def catch_up(self, conn: psycopg.AsyncConnection) -> None:
        now = datetime.now(UTC)
        async with conn.cursor(row_factory=dict_row) as cursor:
            await cursor.execute(_SELECT, {"after": self._last_id, "since": now - WINDOW})
            rows = await cursor.fetchall()
        self.publish(row for row in rows if row["id"] not in self._sent)
        for row in rows:
            self._sent[row["id"]] = now
            self._last_id = max(self._last_id, row["id"])
        self._sent = {event_id: at for event_id, at in self._sent.items() if at > now - 2 * WINDOW}

    def publish(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            event = body(row)
            for subscription in list(self.subscriptions):
                if subscription.wants(event):
                    try:
                        subscription.queue.put_nowait(event)
                    except asyncio.QueueFull:
                        pass  # a socket this far behind misses events, like any pub/sub listener


FEED = MemoryFeed()


def _list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


class MemoryEventsConsumer(AsyncWebsocketConsumer):
    """`/api/v1/memory/events/ws`: the SDK's memory change socket."""

    async def connect(self) -> None:
        headers = {name.lower(): value for name, value in self.scope["headers"]}
        self.principal = await sync_to_async(_principal)(headers)
        if self.principal is None:
            await self.close(code=4401)
            return
        query = dict(
            part.partition("=")[::2] for part in self.scope.get("query_string", b"").decode().split("&") if part
        )
        self.subscription = Subscription(
            _list(query.get("patterns", "")), query.get("scope", ""), query.get("scope_id", "")
        )
        self.readable: dict[tuple[str, str], bool] = {}
        await self.accept()
        FEED.subscribe(self.subscription)
        self.pump = asyncio.get_running_loop().create_task(self._pump())

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "subscription"):
            FEED.unsubscribe(self.subscription)
        if hasattr(self, "pump"):
            self.pump.cancel()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        pass  # the socket is one-way

    async def _pump(self) -> None:
        while True:
            event = await self.subscription.queue.get()
            if await self._may_read(event["scope"], event["scope_id"]):
                await self.send(text_data=json.dumps(event))

    async def _may_read(self, scope: str, scope_id: str) -> bool:
        if (scope, scope_id) not in self.readable:
            allowed = await sync_to_async(access.may_use_memory)(self.principal, scope, scope_id, False)
            self.readable[(scope, scope_id)] = allowed
        return self.readable[(scope, scope_id)]


def _principal(headers: dict[bytes, bytes]) -> policy.Principal | None:
    """The socket's principal by the API's rule: anyone while no key exists, else a valid key's."""
    if not auth.keys_required():
        return policy.OPEN
    return auth.match_key(intake.presented_key(headers))


def history(principal: policy.Principal, params: Any) -> list[dict[str, Any]]:
    """GET /api/v1/memory/events/history: past changes (oldest first) the key may read."""
    try:
        limit = max(1, min(int(params.get("limit") or 100), 1000))
    except ValueError:
        limit = 100
    rows = MemoryEvent.objects.order_by("-id")
    if scope := params.get("scope"):
        rows = rows.filter(scope=scope)
    if scope_id := params.get("scope_id"):
        rows = rows.filter(scope_id=scope_id)
    if since := params.get("since"):
        try:
            rows = rows.filter(created_at__gt=datetime.fromisoformat(since))
        except ValueError:
            pass
    patterns = _list(params.get("patterns", ""))
    found = [r for r in rows[: limit * 5] if key_matches(patterns, r.key)][:limit]
    readable: dict[tuple[str, str], bool] = {}
    visible = []
    for event in found:
        where = (event.scope, event.scope_id)
        if where not in readable:
            readable[where] = access.may_use_memory(principal, event.scope, event.scope_id, False)
        if readable[where]:
            visible.append(event)
    current = _current_data(visible)
    return [
        body({"id": e.id, "scope": e.scope, "scope_id": e.scope_id, "key": e.key, "action": e.action,
              "created_at": e.created_at, "data": current.get((e.scope, e.scope_id, e.key)) if e.action == "set" else None})
        for e in reversed(visible)
    ]  # fmt: skip


def _current_data(events: list[MemoryEvent]) -> dict[tuple[str, str, str], Any]:
    where = Q(pk__in=[])
    for event in events:
        where |= Q(scope=event.scope, scope_id=event.scope_id, key=event.key)
    return {(m.scope, m.scope_id, m.key): m.data for m in MemoryEntry.objects.filter(where)}


def prune(now: datetime) -> int:
    """Delete events older than the retention (the dispatchers call this now and then)."""
    cutoff = now - timedelta(hours=settings.AGENTFIELD_MEMORY_EVENT_RETENTION_HOURS)
    deleted, _ = MemoryEvent.objects.filter(created_at__lt=cutoff).delete()
    return deleted
