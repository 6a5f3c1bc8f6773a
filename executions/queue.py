"""The execution queue: the only module that locks execution rows.

Protocol: a claim leases due rows by moving `run_at` forward and stamping a `lease_token`
(status stays `queued` until an agent has accepted the work). A dispatcher that dies simply
lets the lease run out and the row becomes due again. Outcomes are recorded through the model
verbs, fenced by the lease token.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection

from executions.models import Execution

# Keep this statement short and alone in its transaction: the rows it locks stay locked until
# it commits, and no network call may happen before then. `AS MATERIALIZED` keeps the planner
# from re-running the LIMIT subquery (which could lease more rows than asked for). Only rows of
# nodes that heart-beat recently are claimed: a node that is down keeps its work queued.
_CLAIM = """
WITH due AS MATERIALIZED (
    SELECT e.id FROM executions_execution e
    WHERE e.status = 'queued' AND e.run_at <= %(now)s
      AND EXISTS (
          SELECT 1 FROM nodes_node n
          WHERE n.id = e.node_id AND n.shutdown_at IS NULL AND n.last_heartbeat_at > %(alive_after)s)
    ORDER BY e.run_at, e.id
    LIMIT %(limit)s
    FOR UPDATE OF e SKIP LOCKED
)
UPDATE executions_execution e
   SET run_at = %(lease_until)s, lease_token = %(token)s, claimed_by = %(worker)s,
       attempt = e.attempt + 1, updated_at = %(now)s
  FROM due, nodes_node n
 WHERE e.id = due.id AND n.id = e.node_id
RETURNING e.*, n.base_url AS node_base_url, n.instance_id AS node_instance,
          COALESCE(n.restarted_at, n.registered_at) AS node_since
"""

_LOST = """
SELECT e.id FROM executions_execution e
LEFT JOIN nodes_node n ON n.id = e.node_id
WHERE e.status = 'running'
  AND (n.id IS NULL OR n.last_heartbeat_at <= %(cutoff)s OR n.instance_id <> e.node_instance_id)
ORDER BY e.id
LIMIT %(limit)s
FOR UPDATE OF e SKIP LOCKED
"""

_ABANDONED = """
SELECT e.id FROM executions_execution e
LEFT JOIN nodes_node n ON n.id = e.node_id
WHERE e.status = 'queued' AND e.attempt > 0 AND e.run_at <= %(give_up_before)s
  AND (n.id IS NULL OR n.shutdown_at IS NOT NULL OR n.last_heartbeat_at <= %(cutoff)s)
ORDER BY e.id
LIMIT %(limit)s
FOR UPDATE OF e SKIP LOCKED
"""


@dataclass(frozen=True)
class Claimed:
    """A leased execution and where to send it."""

    execution: Execution
    base_url: str
    instance_id: str
    node_since: datetime  # when the node's current instance registered


def claim(worker_id: str, now: datetime, limit: int, *, lease_seconds: float, alive_seconds: float) -> list[Claimed]:
    """Lease up to `limit` due executions of live nodes; one statement, one round trip."""
    params = {
        "now": now,
        "alive_after": now - timedelta(seconds=alive_seconds),
        "limit": limit,
        "lease_until": now + timedelta(seconds=lease_seconds),
        "token": uuid.uuid4(),
        "worker": worker_id,
    }
    rows = Execution.objects.raw(_CLAIM, params)
    return [Claimed(row, row.node_base_url, row.node_instance, row.node_since) for row in rows]


def lost(now: datetime, alive_seconds: float, limit: int = 100) -> list[Execution]:
    """Lock running executions whose agent died (heartbeats stopped, or it restarted).

    Call inside a transaction and apply a verb to each row before it commits.
    """
    return _locked(_LOST, {"cutoff": now - timedelta(seconds=alive_seconds), "limit": limit})


def abandoned(now: datetime, alive_seconds: float, grace_seconds: float, limit: int = 100) -> list[Execution]:
    """Lock re-queued executions whose node has stayed away longer than the grace period."""
    params = {
        "cutoff": now - timedelta(seconds=alive_seconds),
        "give_up_before": now - timedelta(seconds=grace_seconds),
        "limit": limit,
    }
    return _locked(_ABANDONED, params)


def _locked(sql: str, params: dict) -> list[Execution]:
    if not connection.in_atomic_block:
        raise RuntimeError("row locks need a transaction: call inside transaction.atomic()")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = [row[0] for row in cursor.fetchall()]
    return list(Execution.objects.filter(pk__in=ids).order_by("pk"))
