"""Recovery of executions whose agent died: a crash is a delay, never a lost job."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from executions import queue
from executions.models import Execution
from nodes.models import NodeInstance


def _why_lost(execution: Execution, instances: set[tuple[str, str]]) -> str:
    if not any(node_id == execution.node_id for node_id, _ in instances):
        return f"agent node '{execution.node_id}' was removed while running this execution"
    if (execution.node_id, execution.node_instance_id) not in instances:
        return f"agent node '{execution.node_id}' restarted (its instance is gone) while running this execution"
    return f"agent node '{execution.node_id}' stopped heart-beating while running this execution"


def recover(now: datetime, *, alive_seconds: float, grace_seconds: float) -> int:
    """Re-queue (same ids, attempt + 1 at the next claim) or fail the executions of dead agents."""
    handled = 0
    with transaction.atomic():
        lost = queue.lost(now, alive_seconds)
        known = set(
            NodeInstance.objects.filter(node_id__in={execution.node_id for execution in lost}).values_list(
                "node_id", "instance_id"
            )
        )
        for execution in lost:
            reason = _why_lost(execution, known)
            if execution.attempt >= execution.max_attempts:
                execution.fail(f"{reason}; gave up after {execution.attempt} attempts", now)
            else:
                execution.requeue(now, now, reason)
            handled += 1
        for execution in queue.abandoned(now, alive_seconds, grace_seconds):
            execution.fail(
                f"agent node '{execution.node_id}' did not come back within {grace_seconds:g} s "
                f"after attempt {execution.attempt} of {execution.max_attempts} ({execution.error or 'lost'})",
                now,
            )
            handled += 1
    return handled
