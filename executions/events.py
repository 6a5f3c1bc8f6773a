"""Lifecycle events: rows first, in the transaction of the state change they describe.

The id of each event comes from a counter row updated inside that transaction; the row lock is
held until commit, so events become visible in id order and "after id N" never skips one.
`pg_notify` in the same transaction is delivered by PostgreSQL only at commit (and dropped on
rollback), so listeners hear about an event only once it is durable; the payload is empty
because the table is the truth and PostgreSQL folds identical notifications of one transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import connection

if TYPE_CHECKING:
    from executions.models import Execution, ExecutionEvent

QUEUED = "execution_queued"
STARTED = "execution_started"
COMPLETED = "execution_completed"
FAILED = "execution_failed"
CANCELLED = "execution_cancelled"
RETRYING = "execution_retrying"
TYPES = (QUEUED, STARTED, COMPLETED, FAILED, CANCELLED, RETRYING)

TERMINAL_EVENT = {
    "succeeded": COMPLETED,
    "failed": FAILED,
    "timeout": FAILED,
    "cancelled": CANCELLED,
}

CHANNEL = "agentfield_events"

_NEXT_IDS = """
INSERT INTO executions_eventcounter (id, value) VALUES (1, %s)
ON CONFLICT (id) DO UPDATE SET value = executions_eventcounter.value + EXCLUDED.value
RETURNING value
"""


def allocate_ids(count: int) -> range:
    """Reserve `count` consecutive event ids; must run inside the transaction that inserts them."""
    with connection.cursor() as cursor:
        cursor.execute(_NEXT_IDS, [count])
        last = cursor.fetchone()[0]
    return range(last - count + 1, last + 1)


def record(execution: Execution, type: str, now: datetime, data: dict[str, Any] | None = None) -> ExecutionEvent:
    """Append one event for `execution` (call inside the transaction of the change)."""
    return record_many([(execution, type, data or {})], now)[0]


def record_many(items: list[tuple[Execution, str, dict[str, Any]]], now: datetime) -> list[ExecutionEvent]:
    """Append events for several executions with one id allocation and one INSERT."""
    from executions.models import ExecutionEvent

    if not items:
        return []
    ids = allocate_ids(len(items))
    rows = [
        ExecutionEvent(
            id=event_id,
            execution_id=execution.id,
            run_id=execution.run_id,
            node_id=execution.node_id,
            target=execution.target,
            type=type,
            status=execution.status,
            data=data,
            created_at=now,
        )
        for event_id, (execution, type, data) in zip(ids, items, strict=True)
    ]
    ExecutionEvent.objects.bulk_create(rows)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [CHANNEL])
    return rows


def as_frame(event: ExecutionEvent) -> dict[str, Any]:
    """The event as the SSE stream and the dashboard show it."""
    return {
        "type": event.type,
        "execution_id": event.execution_id,
        "workflow_id": event.run_id,
        "run_id": event.run_id,
        "agent_node_id": event.node_id,
        "target": event.target,
        "status": event.status,
        "timestamp": event.created_at.isoformat().replace("+00:00", "Z"),
        "data": event.data,
    }
