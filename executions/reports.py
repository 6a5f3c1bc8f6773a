"""What the console reports: read-only queries behind the overview and the nodes page.

Each figure is one aggregate statement (never a query per node or per target), so a page costs
the same with ten nodes or a thousand.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Count, Min, Q

from executions import overview
from executions.models import ACTIVE, Execution, Status

EPOCH = "2000-01-01T00:00:00+00:00"  # the origin of overview.floor: SQL buckets must match Python's
FAILURES_PER_NODE = 3

THROUGHPUT = """
SELECT date_bin(%(step)s, completed_at, %(origin)s::timestamptz) AS bucket, status, count(*)
  FROM executions_execution
 WHERE completed_at >= %(start)s
 GROUP BY 1, 2
"""

PERCENTILES = """
SELECT node_id || '.' || target_name AS target, count(*),
       count(*) FILTER (WHERE status IN ('failed', 'timeout')),
       percentile_disc(0.5) WITHIN GROUP (ORDER BY duration_ms),
       percentile_disc(0.9) WITHIN GROUP (ORDER BY duration_ms),
       percentile_disc(0.99) WITHIN GROUP (ORDER BY duration_ms),
       max(duration_ms)
  FROM executions_execution
 WHERE completed_at >= %(start)s AND duration_ms IS NOT NULL
 GROUP BY node_id, target_name
 ORDER BY count(*) DESC
 LIMIT 50
"""


def throughput(span: overview.Span, now: datetime) -> list[overview.Bucket]:
    """Executions finished in each step of `span`, by status."""
    params = {"step": span.step, "origin": EPOCH, "start": overview.first_bucket(span, now)}
    with connection.cursor() as cursor:
        cursor.execute(THROUGHPUT, params)
        counts = {(bucket, status): n for bucket, status, n in cursor.fetchall()}
    return overview.throughput(counts, span, now)


def durations(span: overview.Span, now: datetime) -> list[overview.Durations]:
    """Duration percentiles per target of what finished in `span` (the 50 busiest targets)."""
    with connection.cursor() as cursor:
        cursor.execute(PERCENTILES, {"start": overview.first_bucket(span, now)})
        rows = [overview.Durations(*row) for row in cursor.fetchall()]
    return overview.scaled(rows)


@dataclass(frozen=True)
class Depth:
    """The queue as it is now."""

    by_status: dict[str, int]
    due: int  # queued and due now: waiting for a dispatcher (or for its node)
    delayed: int  # queued with run_at in the future (delay_seconds, run_at, retry back-off)
    oldest_due: datetime | None
    by_node: list[tuple[str, int, float]]  # (node, queued, bar width in %)


FINISHED_WINDOW = timedelta(hours=24)


def depth(now: datetime) -> Depth:
    """Active executions counted exactly; finished ones over the last 24 hours (an index range, not the table)."""
    active = Execution.objects.filter(status__in=ACTIVE)
    finished = Execution.objects.filter(completed_at__gte=now - FINISHED_WINDOW)
    counts = {
        status: n
        for rows in (active, finished)
        for status, n in rows.values_list("status").annotate(n=Count("id")).order_by()
    }
    queued = Execution.objects.filter(status=Status.QUEUED)
    due = queued.filter(run_at__lte=now).aggregate(n=Count("id"), oldest=Min("created_at"))
    per_node = list(queued.values_list("node_id").annotate(n=Count("id")).order_by("-n", "node_id")[:20])
    top = max([n for _, n in per_node] + [1])
    return Depth(
        by_status=counts,
        due=due["n"],
        delayed=counts.get(Status.QUEUED, 0) - due["n"],
        oldest_due=due["oldest"],
        by_node=[(node, n, round(100 * n / top, 1)) for node, n in per_node],
    )


@dataclass(frozen=True)
class NodeLoad:
    queued: int = 0
    running: int = 0
    waiting: int = 0
    failed: int = 0  # in the last 24 hours


def node_loads(now: datetime) -> dict[str, NodeLoad]:
    """Active work per node, and its failures of the last 24 hours."""
    day = now - timedelta(hours=24)
    rows = (
        Execution.objects.filter(
            Q(status__in=(Status.QUEUED, Status.RUNNING, Status.WAITING)) | Q(completed_at__gte=day)
        )
        .values("node_id")
        .annotate(
            queued=Count("id", filter=Q(status=Status.QUEUED)),
            running=Count("id", filter=Q(status=Status.RUNNING)),
            waiting=Count("id", filter=Q(status=Status.WAITING)),
            failed=Count("id", filter=Q(status__in=overview.FAILED, completed_at__gte=day)),
        )
        .order_by()
    )
    return {row.pop("node_id"): NodeLoad(**row) for row in rows}


def recent_failures(now: datetime, node_ids: list[str]) -> dict[str, list[Execution]]:
    """The last few failures of each node in the last 24 hours (one query, newest first)."""
    rows = (
        Execution.objects.filter(node_id__in=node_ids, status__in=overview.FAILED,
                                 completed_at__gte=now - timedelta(hours=24))
        .only("id", "node_id", "target_name", "status", "error", "completed_at")
        .order_by("-completed_at")[: FAILURES_PER_NODE * max(len(node_ids), 1) * 4]
    )  # fmt: skip
    found: dict[str, list[Execution]] = defaultdict(list)
    for execution in rows:
        if len(found[execution.node_id]) < FAILURES_PER_NODE:
            found[execution.node_id].append(execution)
    return dict(found)
