"""Lifecycle events: rows first, in the transaction of the state change they describe.

The id of each event comes from a counter row updated inside that transaction; the row lock is
held until commit, so events become visible in id order and "after id N" never skips one.
`pg_notify` in the same transaction is delivered by PostgreSQL only at commit (and dropped on
rollback), so listeners hear about an event only once it is durable; the payload is empty
because the table is the truth and PostgreSQL folds identical notifications of one transaction.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.db.models import QuerySet, sql

from agentfield_project.timestamps import rfc3339

if TYPE_CHECKING:
    from executions.models import Execution, ExecutionEvent

QUEUED = "execution_queued"
STARTED = "execution_started"
COMPLETED = "execution_completed"
FAILED = "execution_failed"
CANCELLED = "execution_cancelled"
RETRYING = "execution_retrying"
WAITING = "execution_waiting"
RESUMED = "execution_resumed"
TYPES = (QUEUED, STARTED, COMPLETED, FAILED, CANCELLED, RETRYING, WAITING, RESUMED)

TERMINAL_EVENT = {
    "succeeded": COMPLETED,
    "failed": FAILED,
    "timeout": FAILED,
    "cancelled": CANCELLED,
}

CHANNEL = "agentfield_events"
# Dispatchers LISTEN here: an execution became due.
DISPATCH_CHANNEL = "agentfield_executions"

# One round trip: reserve ids on the counter row (its lock is held until commit, so ids become
# visible in order), insert the events, and notify listeners (delivered at commit).
_RECORD = """
WITH counter AS (
    INSERT INTO executions_eventcounter (id, value) VALUES (1, %(count)s)
    ON CONFLICT (id) DO UPDATE SET value = executions_eventcounter.value + EXCLUDED.value
    RETURNING value
), inserted AS (
    INSERT INTO executions_executionevent (id, execution_id, run_id, node_id, target, type, status, data, created_at)
    SELECT counter.value - %(count)s + item.n, item.execution_id, item.run_id, item.node_id, item.target,
           item.type, item.status, item.data, %(now)s
      FROM counter,
           unnest(%(execution_ids)s::text[], %(run_ids)s::text[], %(node_ids)s::text[], %(targets)s::text[],
                  %(types)s::text[], %(statuses)s::text[], %(datas)s::jsonb[])
           WITH ORDINALITY AS item(execution_id, run_id, node_id, target, type, status, data, n)
    RETURNING id
)
SELECT (SELECT max(id) FROM inserted), pg_notify(channel, '') FROM unnest(%(channels)s::text[]) AS channel
"""


@functools.cache  # the few statements that go through it, made positional once each
def _positional(text: str) -> tuple[str, tuple[str, ...]]:
    """`text` with its %(name)s placeholders made positional, and the names in their order."""
    names = tuple(re.findall(r"%\((\w+)\)s", text))
    return re.sub(r"%\((\w+)\)s", "%s", text), names


def _around(
    template: tuple[str, tuple[str, ...]], statement: str, params: Sequence[Any], named: dict[str, Any]
) -> list[tuple]:
    """Run a positional `template` with `statement` (positional `params`) in its {statement} slot, which
    comes before the template's own placeholders (filled from `named`); its rows."""
    text, names = template
    with connection.cursor() as cursor:
        cursor.execute(text.replace("{statement}", statement, 1), [*params, *(named[name] for name in names)])
        return cursor.fetchall()


# The same after an INSERT of new executions (`stored`, given with positional parameters): the rows
# and their events are one autocommit statement, so a batch of submits costs one round trip and one
# commit instead of a BEGIN, an INSERT, the events and a COMMIT (executions/services.py).
_STORE_AND_RECORD = _positional("WITH stored AS ({statement}),\n" + _RECORD.strip().removeprefix("WITH "))


# The same, around a batch UPDATE of executions (`changed`): one autocommit statement changes the
# rows and appends one event per changed row, so a batch costs one round trip and one commit.
# `notified` is read by the final SELECT only when a row changed: no change, no NOTIFY.
_UPDATE_AND_RECORD = _positional("""
WITH changed AS ({statement}),
numbered AS (
    SELECT changed.*, row_number() OVER (ORDER BY changed.id) AS n, count(*) OVER () AS total FROM changed
), counter AS (
    INSERT INTO executions_eventcounter (id, value) SELECT 1, count(*) FROM changed HAVING count(*) > 0
    ON CONFLICT (id) DO UPDATE SET value = executions_eventcounter.value + EXCLUDED.value
    RETURNING value
), inserted AS (
    INSERT INTO executions_executionevent (id, execution_id, run_id, node_id, target, type, status, data, created_at)
    SELECT counter.value - numbered.total + numbered.n, numbered.id, numbered.run_id, numbered.node_id,
           numbered.node_id || '.' || numbered.target_name, %(event_type)s, numbered.status, '{}'::jsonb, %(now)s
      FROM counter, numbered
), notified AS (
    SELECT pg_notify(channel, '') FROM unnest(%(channels)s::text[]) AS channel
)
SELECT numbered.*, (SELECT count(*) FROM notified) FROM numbered
""")


def update_and_record(update: str, params: dict[str, Any], type: str, now: datetime) -> dict[str, tuple]:
    """Run a batch `update` of executions and record a `type` event per changed row, in one statement.

    `update` must end in `RETURNING e.id, e.run_id, e.node_id, e.target_name, e.status[, more]` and
    must not be called inside a transaction that goes on (the counter row stays locked until
    commit). Returns {execution id: the returned row} for the rows that changed.
    """
    statement, names = _positional(update)
    return _changed_and_recorded(statement, [params[name] for name in names], type, now)


def _changed_and_recorded(update: str, params: Sequence[Any], type: str, now: datetime) -> dict[str, tuple]:
    rows = _around(_UPDATE_AND_RECORD, update, params, {"event_type": type, "now": now, "channels": [CHANNEL]})
    return {row[0]: row for row in rows}


def store_and_record(
    insert: str,
    insert_params: Sequence[Any],
    items: list[tuple[Execution, str, dict[str, Any]]],
    now: datetime,
    notify: tuple[str, ...] = (),
) -> int:
    """Run `insert` (an INSERT of the executions of `items`, positional parameters) and append their
    events, in one statement; return the last event id. Like `record_many`, call it last in a transaction."""
    return _around(_STORE_AND_RECORD, insert, insert_params, _record_params(items, now, notify))[0][0]


def change_and_record(query: QuerySet, changes: dict[str, Any], type: str, now: datetime) -> dict[str, tuple]:
    """`query.update(**changes)` and a `type` event per changed row, in one statement.

    Outside a transaction it is its own autocommit transaction (one round trip instead of a BEGIN,
    the UPDATE, the events and a COMMIT); inside one it takes a savepoint, so a failure leaves
    that transaction usable. Returns {execution id: (id, run_id, node_id, target_name, status)}
    for the rows that changed.
    """
    update = query.query.chain(sql.UpdateQuery)
    update.add_update_values(changes)  # what QuerySet.update() runs, as Django compiles it
    statement, params = update.get_compiler(query.db).as_sql()
    statement += " RETURNING id, run_id, node_id, target_name, status"
    with transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext():
        return _changed_and_recorded(statement, params, type, now)


def record(
    execution: Execution, type: str, now: datetime, data: dict[str, Any] | None = None, notify: tuple[str, ...] = ()
) -> int:
    """Append one event for `execution` (call last in the transaction of the change); return its id."""
    return record_many([(execution, type, data or {})], now, notify)


def record_many(items: list[tuple[Execution, str, dict[str, Any]]], now: datetime, notify: tuple[str, ...] = ()) -> int:
    """Append events for several executions in one statement; return the last id.

    Call it as the last statement of the transaction: the counter row stays locked until commit.
    `notify` names extra channels to wake (the event channel is always notified).
    """
    if not items:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(_RECORD, _record_params(items, now, notify))
        return cursor.fetchone()[0]


def _record_params(
    items: list[tuple[Execution, str, dict[str, Any]]], now: datetime, notify: tuple[str, ...]
) -> dict[str, Any]:
    return {
        "count": len(items),
        "now": now,
        "execution_ids": [execution.id for execution, _, _ in items],
        "run_ids": [execution.run_id for execution, _, _ in items],
        "node_ids": [execution.node_id for execution, _, _ in items],
        "targets": [execution.target for execution, _, _ in items],
        "types": [type for _, type, _ in items],
        "statuses": [execution.status for execution, _, _ in items],
        "datas": [json.dumps(data) for _, _, data in items],
        "channels": [CHANNEL, *notify],
    }


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
        "timestamp": rfc3339(event.created_at),
        "data": event.data,
    }
