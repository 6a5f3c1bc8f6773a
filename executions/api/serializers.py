"""JSON shapes of executions, as the SDK and the Go control plane's clients read them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from agentfield_project.timestamps import rfc3339
from executions import timing
from executions.models import Execution
from webhooks import services as webhooks


def accepted_body(execution: Execution, webhook_error: str | None = None) -> dict[str, Any]:
    """The 202 body of an execute request."""
    body = {
        "execution_id": execution.id,
        "run_id": execution.run_id,
        "workflow_id": execution.run_id,
        "status": execution.status,
        "target": execution.target,
        "type": execution.target_type,
        "created_at": rfc3339(execution.created_at),
        "webhook_registered": execution.webhook_registered,
    }
    if execution.run_at > execution.created_at and execution.status == "queued" and not execution.attempt:
        body["run_at"] = rfc3339(execution.run_at)  # delayed: not dispatched before then
    if webhook_error:
        body["webhook_error"] = webhook_error
    return body


def duration_ms(execution: Execution, now: datetime | None = None) -> int | None:
    """From started_at to completed_at; while the execution is active, from started_at until now."""
    return timing.elapsed_ms(execution.status, execution.started_at, execution.duration_ms, now or timezone.now())


def status_body(execution: Execution, webhook_events: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """GET /api/v1/executions/{id}: status, result and timings of one execution."""
    error = execution.error or None if execution.status != "succeeded" else None
    return {
        "execution_id": execution.id,
        "run_id": execution.run_id,
        "workflow_id": execution.run_id,
        "status": execution.status,
        "target": execution.target,
        "node_id": execution.node_id,
        "type": execution.target_type,
        "parent_execution_id": execution.parent_execution_id,
        "restarted_from": execution.restarted_from,
        "session_id": execution.session_id or None,
        "actor_id": execution.actor_id or None,
        "result": execution.result,
        "error": error,
        "error_message": error,
        "error_details": execution.error_details,
        "progress": execution.progress,
        "priority": execution.priority,
        "created_at": rfc3339(execution.created_at),
        "started_at": rfc3339(execution.started_at),
        "completed_at": rfc3339(execution.completed_at),
        "duration_ms": duration_ms(execution),
        "attempt": execution.attempt,
        "max_attempts": execution.max_attempts,
        "webhook_registered": execution.webhook_registered,
        "webhook_events": webhook_events or [],
    }


def status_bodies(executions: list[Execution]) -> dict[str, dict[str, Any]]:
    """Status bodies of several executions with one query for all their webhook attempts."""
    with_webhook = [execution.id for execution in executions if execution.webhook_registered]
    attempts = webhooks.attempts_for(with_webhook) if with_webhook else {}
    return {execution.id: status_body(execution, attempts.get(execution.id)) for execution in executions}
