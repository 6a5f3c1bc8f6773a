"""The execution queue: the only module that locks execution rows.

Protocol: a claim leases due rows by moving `run_at` forward and stamping a `lease_token`
(status stays `queued` until an agent has accepted the work). A dispatcher that dies simply
lets the lease run out and the row becomes due again. Outcomes are recorded through the model
verbs, fenced by the lease token.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction

from executions import fairness
from executions.models import Execution, TraceEntry
from nodes import limits, liveness

# Keep this statement short and alone in its transaction: the rows it locks stay locked until
# it commits, and no network call may happen before then. Rows are served by priority, then in
# their fair order (executions/fairness.py, whose clock the same statement moves forward); the
# partial index execution_fair_idx matches that WHERE and ORDER BY. `AS MATERIALIZED` keeps the planner
# from re-running the LIMIT subquery (which could lease more rows than asked for). Only rows of
# nodes with a live instance (nodes/liveness.py, ALIVE_SQL) are claimed: a node that is down keeps
# its work queued. A lease that
# ran out is taken over only a grace period later, so a dispatcher that was cut off from the database
# (and still holds the agent's answer) gets to record it first.
#
# Each row goes to one live instance of its node: the one it was last handed to if that one is
# still alive (it may be running it: see ExecutionDispatcher._start), else one at random, which
# spreads a node's work over its instances. The claim records that hand-off (instance and time)
# before any POST, and returns what was there before, so the next claim of a row whose outcome
# was never recorded (a dispatcher died mid-call) knows where it may already be running.
LIMIT_LOCK_SPACE = 0x4146  # the first key of the advisory locks of limited nodes ("AF")
_CLAIM = """
WITH due AS MATERIALIZED (
    SELECT e.id, e.node_id, e.fair_seq, e.node_instance_id AS previous_instance, e.dispatched_at AS previous_dispatch,
           e.lease_token IS NOT NULL AS unrecorded
      FROM executions_execution e
     WHERE e.status = 'queued' AND e.run_at <= %(now)s
       AND (e.lease_token IS NULL OR e.run_at <= %(expired_before)s)
       {only}
       AND EXISTS (
           SELECT 1 FROM nodes_nodeinstance i
            WHERE i.node_id = e.node_id AND {alive})
     ORDER BY e.priority DESC, e.fair_seq, e.id
     LIMIT %(limit)s
       FOR UPDATE OF e SKIP LOCKED
), target AS (
    SELECT due.*, pick.instance_id, pick.base_url, pick.registered_at
      FROM due CROSS JOIN LATERAL (
           SELECT i.instance_id, i.base_url, i.registered_at
             FROM nodes_nodeinstance i
            WHERE i.node_id = due.node_id AND {alive}
            ORDER BY i.instance_id = due.previous_instance DESC, random()
            LIMIT 1) pick
), clock AS ({advance}
)
UPDATE executions_execution e
   SET run_at = %(lease_until)s, lease_token = %(token)s, claimed_by = %(worker)s,
       attempt = e.attempt + 1, updated_at = %(now)s,
       node_instance_id = target.instance_id, dispatched_at = %(now)s
  FROM target
 WHERE e.id = target.id
RETURNING e.*, target.base_url AS target_base_url, target.registered_at AS target_since,
          target.previous_instance, target.previous_dispatch, target.unrecorded
"""

# A running execution is lost when its instance stopped heart-beating or was replaced by a restart
# (its row is gone). Heartbeats that could not be written are no evidence: right after the
# database itself restarted every node looks silent, so nothing is judged until it has been up
# for a whole liveness window (by its own clock: `now` may be a test's).
_LOST = f"""
SELECT e.id FROM executions_execution e
LEFT JOIN nodes_nodeinstance i ON i.node_id = e.node_id AND i.instance_id = e.node_instance_id
WHERE e.status = 'running'
  AND (i.id IS NULL OR NOT ({liveness.HEARD_SQL}))
  AND pg_postmaster_start_time() <= now() - make_interval(secs => %(alive)s)
ORDER BY e.id
LIMIT %(limit)s
FOR UPDATE OF e SKIP LOCKED
"""  # noqa: S608

_ABANDONED = f"""
SELECT e.id FROM executions_execution e
WHERE e.status = 'queued' AND e.attempt > 0 AND e.run_at <= %(give_up_before)s
  AND NOT EXISTS (
      SELECT 1 FROM nodes_nodeinstance i
       WHERE i.node_id = e.node_id AND {liveness.ALIVE_SQL})
  AND pg_postmaster_start_time() <= now() - make_interval(secs => %(alive)s)
ORDER BY e.id
LIMIT %(limit)s
FOR UPDATE OF e SKIP LOCKED
"""  # noqa: S608

# How long after its lease ran out a row is left to the dispatcher that held it (by default).
LEASE_GRACE = timedelta(seconds=10)


@dataclass(frozen=True)
class Claimed:
    """A leased execution, the instance it is handed to, and where it was handed before."""

    execution: Execution
    base_url: str
    instance_id: str
    node_since: datetime  # when that instance registered
    previous_instance: str = ""  # the instance it was last handed to ("" if none, or given back)
    previous_dispatch: datetime | None = None
    unrecorded: bool = False  # the previous claim never recorded an outcome: a dispatcher died on it

    @property
    def may_run_there(self) -> bool:
        """Whether the chosen instance may already be running this execution."""
        return bool(self.previous_instance) and self.previous_instance == self.instance_id


# Nodes with concurrency limits are claimed apart (claim_limited); the common path skips them.
_ADVANCE = fairness.ADVANCE_CLOCK.format(claimed="target").rstrip()
_UNLIMITED = _CLAIM.format(
    only="AND NOT (e.node_id = ANY(%(limited)s::text[]))", advance=_ADVANCE, alive=liveness.ALIVE_SQL
)
_CHOSEN = _CLAIM.format(only="AND e.id = ANY(%(chosen)s::text[])", advance=_ADVANCE, alive=liveness.ALIVE_SQL)

# A slot is held from the claim until the execution is terminal: handed over under a live lease,
# running, or waiting on an approval.
_HELD = """
SELECT target_name, count(*) FROM executions_execution
 WHERE node_id = %(node)s
   AND (status IN ('running', 'waiting') OR (status = 'queued' AND lease_token IS NOT NULL AND run_at > %(expired_before)s))
 GROUP BY target_name
"""
_CANDIDATES = """
SELECT id, target_name FROM executions_execution
 WHERE node_id = %(node)s AND status = 'queued' AND run_at <= %(now)s
   AND (lease_token IS NULL OR run_at <= %(expired_before)s)
 ORDER BY priority DESC, fair_seq, id
 LIMIT %(scan)s
"""


def claim(
    worker_id: str,
    now: datetime,
    limit: int,
    *,
    lease_seconds: float,
    alive_seconds: float,
    lease_grace: timedelta = LEASE_GRACE,
    limited: Iterable[str] = (),
) -> list[Claimed]:
    """Lease up to `limit` due executions of live nodes (not of the `limited` ones); one statement."""
    return _claim(_UNLIMITED, worker_id, now, limit, lease_seconds, alive_seconds, lease_grace, limited=list(limited))


def due_among(now: datetime, nodes: list[str], lease_grace: timedelta = LEASE_GRACE) -> list[str]:
    """Which of `nodes` have due queued work (one query, before any per-node claim)."""
    if not nodes:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT node_id FROM executions_execution WHERE status = 'queued' AND run_at <= %s"
            " AND (lease_token IS NULL OR run_at <= %s) AND node_id = ANY(%s::text[])",
            [now, now - lease_grace, nodes],
        )
        return [row[0] for row in cursor.fetchall()]


def claim_limited(
    worker_id: str,
    now: datetime,
    node: str,
    node_limits: tuple[int | None, dict[str, int]],
    capacity: int,
    *,
    lease_seconds: float,
    alive_seconds: float,
    lease_grace: timedelta = LEASE_GRACE,
) -> list[Claimed]:
    """Lease what fits the free slots of a node with concurrency limits (nodes/limits.py).

    One short transaction per node. A transaction-scoped advisory lock on the node makes the count
    of held slots and the lease one step for every dispatcher: no two can both see the last slot
    free. It is taken with try (a dispatcher finding it held skips the node this round), so nobody
    waits, and no lock is global: nodes without limits never take it.
    """
    if capacity <= 0:
        return []
    expired_before = now - lease_grace
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, hashtext(%s))", [LIMIT_LOCK_SPACE, node])
        if not cursor.fetchone()[0]:
            return []
        cursor.execute(_HELD, {"node": node, "expired_before": expired_before})
        held = dict(cursor.fetchall())
        total, per_target = node_limits
        scan = capacity * 4 + sum(per_target.values())  # enough to skip past targets at their limit
        cursor.execute(_CANDIDATES, {"node": node, "now": now, "expired_before": expired_before, "scan": scan})
        chosen = limits.pick(cursor.fetchall(), held, total, per_target, capacity)
        if not chosen:
            return []
        return _claim(_CHOSEN, worker_id, now, len(chosen), lease_seconds, alive_seconds, lease_grace, chosen=chosen)


def _claim(
    sql: str,
    worker_id: str,
    now: datetime,
    limit: int,
    lease_seconds: float,
    alive_seconds: float,
    lease_grace: timedelta,
    **selection: list[str],
) -> list[Claimed]:
    params = {
        "now": now,
        "alive_after": liveness.cutoff(now, alive_seconds),
        "expired_before": now - lease_grace,
        "limit": limit,
        "lease_until": now + timedelta(seconds=lease_seconds),
        "token": uuid.uuid4(),
        "worker": worker_id,
        **selection,
    }
    rows = Execution.objects.raw(sql, params)
    return [
        Claimed(
            row,
            row.target_base_url,
            row.node_instance_id,
            row.target_since,
            row.previous_instance,
            row.previous_dispatch,
            row.unrecorded,
        )
        for row in rows
    ]


def started_since(execution_id: str, moment: datetime) -> bool:
    """Whether the agent reported on the execution since `moment` (the SDK posts a step event at start)."""
    return TraceEntry.objects.filter(execution_id=execution_id, created_at__gte=moment).exists()


def lost(now: datetime, alive_seconds: float, limit: int = 100) -> list[Execution]:
    """Lock running executions whose agent died (heartbeats stopped, or it restarted).

    Call inside a transaction and apply a verb to each row before it commits.
    """
    params = {"alive_after": liveness.cutoff(now, alive_seconds), "alive": alive_seconds, "limit": limit}
    return _locked(_LOST, params)


def abandoned(now: datetime, alive_seconds: float, grace_seconds: float, limit: int = 100) -> list[Execution]:
    """Lock re-queued executions whose node has stayed away longer than the grace period."""
    params = {
        "alive_after": liveness.cutoff(now, alive_seconds),
        "alive": alive_seconds,
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
