"""The webhook payload of a terminal execution, serialised once and handed to the delivery queue."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from webhooks import services as webhooks

if TYPE_CHECKING:
    from executions.models import Execution


def rfc3339(moment: datetime | None) -> str | None:
    """UTC, second precision, `Z` suffix (what the Go control plane sends)."""
    if moment is None:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def payload(execution: Execution, now: datetime) -> dict[str, Any]:
    """The body a receiver gets: execution.completed with `result`, else execution.failed."""
    completed = execution.status == "succeeded"
    body: dict[str, Any] = {
        "event": "execution.completed" if completed else "execution.failed",
        "execution_id": execution.id,
        "workflow_id": execution.run_id,
        "status": execution.status,
        "target": execution.target,
        "type": execution.target_type,
        "duration_ms": execution.duration_ms,
    }
    if completed:
        body["result"] = execution.result
    else:
        body["error_message"] = execution.error
    body["timestamp"] = rfc3339(execution.completed_at or now)
    return body


def enqueue_webhook(execution: Execution, now: datetime) -> None:
    """Queue the webhook delivery of a terminal execution, if it registered one."""
    body = payload(execution, now)
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    webhooks.enqueue(execution.id, body["event"], raw, now)
