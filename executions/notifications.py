"""The webhook payload of a terminal execution, serialised once and handed to the delivery queue."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from agentfield_project.timestamps import rfc3339
from webhooks import queue as webhook_queue
from webhooks import services as webhooks

if TYPE_CHECKING:
    from executions.models import Execution


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


def enqueue_waiting(execution: Execution, approval_request_id: str, request_url: str, expires_at: datetime,
                    now: datetime) -> None:  # fmt: skip
    """`execution.waiting` to a webhook that opted in (`"events": ["execution.waiting"]`)."""
    if not execution.webhook_registered:
        return
    body = {
        "event": "execution.waiting",
        "execution_id": execution.id,
        "workflow_id": execution.run_id,
        "status": "waiting",
        "target": execution.target,
        "approval_request_id": approval_request_id,
        "approval_request_url": request_url,
        "expires_at": rfc3339(expires_at),
        "timestamp": rfc3339(now),
    }
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    webhooks.enqueue_optional(execution.id, body["event"], raw, now)


def enqueue_webhooks(executions: list[Execution], now: datetime) -> tuple[str, ...]:
    """Queue the webhook deliveries of terminal executions that registered one.

    Returns the channels to NOTIFY (folded by the caller into its event statement).
    """
    queued = False
    for execution in executions:
        if not execution.webhook_registered:
            continue
        body = payload(execution, now)
        raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        queued |= webhooks.enqueue(execution.id, body["event"], raw, now, notify=False) is not None
    return (webhook_queue.CHANNEL,) if queued else ()
