"""Retention: finished executions, and everything kept about them, are pruned after a while.

An execution finished more than AGENTFIELD_RETENTION_DAYS ago goes with its events, trace,
approvals, notices to agents and webhook deliveries (with their attempts). The memory of its run
goes when the run's last execution goes (AGENTFIELD_RETENTION_PRUNE_MEMORY), never before: a
restart with `same_run` resumes from those checkpoints while any execution of the run is kept.
Active executions are never touched, however old.

The dispatchers prune in small batches (`Housekeeper`, executions/housekeeping.py), each batch one
short transaction whose rows are locked with SKIP LOCKED, so dispatchers never prune the same rows
and never wait on each other; `manage.py prune --dry-run` tells what would go. Through a backlog,
each batch starts where the previous one ended (`resume_at`): the index entries of the rows already
deleted stay until VACUUM, and a scan from the oldest row would step over all of them every time.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction

from executions.models import (
    TERMINAL,
    AgentNotice,
    Approval,
    Execution,
    ExecutionEvent,
    MemoryEntry,
    TraceEntry,
)
from webhooks.models import Delivery, DeliveryAttempt, Webhook


@dataclass
class Pruned:
    executions: int = 0
    events: int = 0
    trace_entries: int = 0
    approvals: int = 0
    agent_notices: int = 0
    webhook_deliveries: int = 0
    memory_entries: int = 0
    # Where the next batch of the same backlog starts: the creation time of this batch's newest row.
    resume_at: datetime | None = field(default=None, compare=False)

    def counts(self) -> list[str]:
        return [item.name for item in fields(self) if item.name != "resume_at"]

    def add(self, other: Pruned) -> None:
        for name in self.counts():
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def describe(self) -> str:
        return ", ".join(f"{getattr(self, name)} {name.replace('_', ' ')}" for name in self.counts())


def cutoff(now: datetime) -> datetime | None:
    """Executions finished before this go; None when retention is off (0 days)."""
    days = settings.AGENTFIELD_RETENTION_DAYS
    return now - timedelta(days=days) if days > 0 else None


def _due(before: datetime):
    # created_at first: the created index finds old rows without a scan of the whole table; an
    # execution created long ago that finished recently stays until its finish is old enough.
    return Execution.objects.filter(status__in=TERMINAL, created_at__lt=before, completed_at__lt=before)


def _delete_executions(ids: list[str]) -> int:
    """Delete the rows in one statement; their approvals (the one relation) are already gone."""
    # Not QuerySet.delete(): to cascade to Approval in Python it loads every row as a model first,
    # which was over half of a batch's time, all of it in a dispatcher's loop (bench scenario 10).
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM executions_execution WHERE id = ANY(%s)", [ids])
        return cursor.rowcount


def prune_batch(now: datetime, limit: int = 500, resume_at: datetime | None = None) -> Pruned:
    """Delete one batch of expired executions and what hangs off them (one transaction).

    `resume_at` (the previous batch's) skips what was created before it: pass it only within one
    backlog, then start over without it (a row created earlier may have finished since).
    """
    before = cutoff(now)
    if before is None:
        return Pruned()
    due = _due(before) if resume_at is None else _due(before).filter(created_at__gte=resume_at)
    with transaction.atomic():
        rows = list(
            due.order_by("created_at")
            .select_for_update(skip_locked=True)
            .values_list("id", "run_id", "created_at")[:limit]
        )
        if not rows:
            return Pruned()
        ids, runs = [row[0] for row in rows], {row[1] for row in rows}
        pruned = Pruned(
            resume_at=rows[-1][2],
            events=ExecutionEvent.objects.filter(execution_id__in=ids).delete()[0],
            trace_entries=TraceEntry.objects.filter(execution_id__in=ids).delete()[0],
            approvals=Approval.objects.filter(execution_id__in=ids).delete()[0],
            agent_notices=AgentNotice.objects.filter(execution_id__in=ids).delete()[0],
        )
        DeliveryAttempt.objects.filter(delivery__execution_id__in=ids).delete()
        pruned.webhook_deliveries = (
            Delivery.objects.filter(execution_id__in=ids).delete()[1].get("webhooks.Delivery", 0)
        )
        Webhook.objects.filter(execution_id__in=ids).delete()
        pruned.executions = _delete_executions(ids)
        if settings.AGENTFIELD_RETENTION_PRUNE_MEMORY:
            kept = set(Execution.objects.filter(run_id__in=runs).values_list("run_id", flat=True).distinct())
            gone = runs - kept
            pruned.memory_entries = MemoryEntry.objects.filter(scope="workflow", scope_id__in=gone).delete()[0]
    return pruned


def would_prune(now: datetime) -> Pruned:
    """What pruning everything due now would delete (counts only; for `prune --dry-run`)."""
    before = cutoff(now)
    if before is None:
        return Pruned()
    due = _due(before)
    ids = due.values("id")
    runs = set(due.values_list("run_id", flat=True).distinct())
    kept = set(
        Execution.objects.filter(run_id__in=runs).exclude(id__in=ids).values_list("run_id", flat=True).distinct()
    )
    memory = 0
    if settings.AGENTFIELD_RETENTION_PRUNE_MEMORY:
        memory = MemoryEntry.objects.filter(scope="workflow", scope_id__in=runs - kept).count()
    return Pruned(
        executions=due.count(),
        events=ExecutionEvent.objects.filter(execution_id__in=ids).count(),
        trace_entries=TraceEntry.objects.filter(execution_id__in=ids).count(),
        approvals=Approval.objects.filter(execution_id__in=ids).count(),
        agent_notices=AgentNotice.objects.filter(execution_id__in=ids).count(),
        webhook_deliveries=Delivery.objects.filter(execution_id__in=ids).count(),
        memory_entries=memory,
    )
