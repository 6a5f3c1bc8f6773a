"""Approval gates: a reasoner pauses on a human decision (`await app.pause(...)`) and gets it back.

The SDK calls `request-approval` with its callback URL (`{base_url}/webhooks/approval`); the
execution becomes `waiting` (not `running`: the liveness reaper leaves it alone, so a wait of
three days survives agent restarts). A decision arrives from the API, the admin's Approvals inbox
or a signed webhook of an approval tool; expiry is the control plane's. Deciding puts the
execution back to `running` and queues the decision as a durable notice to the callback
(executions/notices.py), sent until the paused reasoner takes it (`resolved: true`). If the
agent died meanwhile, the execution is re-queued under the same ids like any lost work; its
reasoner pauses again with the same `approval_request_id` and gets the decision at once.

The reasoner decides what a rejection or an expiry means: it returns or raises, and the
execution ends with what it reports; the decision stays on record (`approval` in the status).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction

from agentfield_project.timestamps import rfc3339
from executions import access, notices, services
from executions.exceptions import (
    BadSignature,
    ExecutionError,
    ExecutionNotFound,
    InvalidTransition,
    NotConfigured,
)
from executions.models import AgentNotice, Approval, Execution, Status, TraceEntry
from executions.notifications import enqueue_waiting
from nodes import policy
from nodes.models import NodeInstance
from nodes.policy import Principal

DECISION_ALIASES = {
    "approve": Approval.Status.APPROVED, "approved": Approval.Status.APPROVED, "accept": Approval.Status.APPROVED,
    "accepted": Approval.Status.APPROVED, "continue": Approval.Status.APPROVED, "confirm": Approval.Status.APPROVED,
    "reject": Approval.Status.REJECTED, "rejected": Approval.Status.REJECTED, "deny": Approval.Status.REJECTED,
    "denied": Approval.Status.REJECTED, "decline": Approval.Status.REJECTED, "abort": Approval.Status.REJECTED,
    "request_changes": Approval.Status.REQUEST_CHANGES, "changes_requested": Approval.Status.REQUEST_CHANGES,
    "revise": Approval.Status.REQUEST_CHANGES,
}  # fmt: skip
SIGNATURE_HEADER = "X-AgentField-Signature"
MAX_EXPIRY_HOURS = 24 * 365


def normalize_decision(raw: Any) -> str | None:
    """approved | rejected | request_changes for what approval tools send (approve, deny, ...), else None."""
    return DECISION_ALIASES.get(raw.strip().lower()) if isinstance(raw, str) else None


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(secret: str, header: str, body: bytes, now: float, tolerance: float = 300) -> bool:
    """`t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, within `tolerance` s of now (no replays later)."""
    parts = dict(part.strip().partition("=")[::2] for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body).partition("v1=")[2]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def _execution_on(node_id: str, execution_id: str, principal: Principal) -> Execution:
    execution = services.get_execution(execution_id)
    if execution.node_id != node_id:
        raise ExecutionNotFound(f"execution '{execution_id}' not found on node '{node_id}'")
    access.check(principal, execution, policy.may_report)
    return execution


def _text(body: dict, name: str, limit: int, required: bool = False) -> str:
    value = body.get(name)
    if value in (None, "") and not required:
        return ""
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise ExecutionError(f"{name} must be a non-empty string of at most {limit} characters")
    return value.strip()


def _callback(execution: Execution, url: str) -> str:
    """The SDK's callback URL, which must lie under the instance's own base URL (no SSRF through it)."""
    if not url:
        return ""
    instance = NodeInstance.objects.filter(node_id=execution.node_id, instance_id=execution.node_instance_id).first()
    base, given = urlsplit(instance.base_url if instance else ""), urlsplit(url)
    if instance is None or (given.scheme, given.netloc) != (base.scheme, base.netloc) or given.query or given.fragment:
        raise ExecutionError("callback_url must be an address of the agent instance running the execution")
    return url


def request(execution_id: str, node_id: str, body: Any, principal: Principal, now: datetime) -> dict[str, Any]:
    """POST /api/v1/agents/{node}/executions/{id}/request-approval: the execution waits."""
    execution = _execution_on(node_id, execution_id, principal)
    if not isinstance(body, dict):
        raise ExecutionError("body must be a JSON object")
    request_id = _text(body, "approval_request_id", 255, required=True)
    request_url = _text(body, "approval_request_url", 2048)
    if request_url and urlsplit(request_url).scheme not in ("http", "https"):
        raise ExecutionError("approval_request_url must be an http(s) URL")
    hours = body.get("expires_in_hours", 72)
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 < hours <= MAX_EXPIRY_HOURS:
        raise ExecutionError(f"expires_in_hours must be a number between 0 and {MAX_EXPIRY_HOURS}")
    callback = _callback(execution, _text(body, "callback_url", 2048))
    with transaction.atomic():
        approval = (
            Approval.objects.select_for_update().filter(execution=execution, approval_request_id=request_id).first()
        )
        if approval is not None and approval.status != Approval.Status.PENDING:
            # A reasoner run again (its agent restarted) pauses anew: it gets the decision at once.
            _owe_decision(execution, approval, callback or approval.callback_url, now)
            return _request_answer(approval)
        if execution.status != Status.WAITING or approval is None:
            handing_over = execution.status == Status.QUEUED and execution.lease_token is not None
            if execution.status != Status.RUNNING and not handing_over:
                raise InvalidTransition(f"execution {execution.id} is {execution.status}; only a running one can wait")
            data = {"approval_request_id": request_id, "approval_request_url": request_url}
            execution.wait(now, data | {"expires_in_hours": hours})
        if approval is None:
            approval = Approval.objects.create(
                execution=execution,
                approval_request_id=request_id,
                request_url=request_url,
                callback_url=callback,
                requested_at=now,
                expires_at=now + timedelta(hours=hours),
            )
            enqueue_waiting(execution, request_id, request_url, approval.expires_at, now)
        elif callback:
            Approval.objects.filter(pk=approval.pk).update(callback_url=callback)
    return _request_answer(approval)


def _request_answer(approval: Approval) -> dict[str, Any]:
    return {
        "approval_request_id": approval.approval_request_id,
        "approval_request_url": approval.request_url,
        "status": approval.status,
        "expires_at": rfc3339(approval.expires_at),
    }


def status(execution_id: str, node_id: str, principal: Principal) -> dict[str, Any]:
    """GET .../approval-status: the latest approval of the execution."""
    execution = _execution_on(node_id, execution_id, principal)
    approval = execution.approvals.order_by("-requested_at", "-id").first()
    if approval is None:
        raise ExecutionNotFound(f"execution '{execution_id}' has no approval request")
    return body_of(approval)


def body_of(approval: Approval) -> dict[str, Any]:
    return {
        "approval_request_id": approval.approval_request_id,
        "status": approval.status,
        "feedback": approval.feedback,
        "response": approval.response,
        "request_url": approval.request_url,
        "requested_at": rfc3339(approval.requested_at),
        "expires_at": rfc3339(approval.expires_at),
        "responded_at": rfc3339(approval.decided_at),
        "decided_by": approval.decided_by or None,
    }


def decide(
    execution_id: str,
    decision: Any,
    feedback: Any,
    response: Any,
    by: str,
    now: datetime,
    approval_request_id: str | None = None,
) -> Approval:
    """Record the decision on the pending approval, resume the execution, owe the agent the news."""
    status = decision if decision == Approval.Status.EXPIRED else normalize_decision(decision)
    if status is None:
        raise ExecutionError("decision must be one of approved, rejected, request_changes")
    if feedback is not None and not isinstance(feedback, str):
        raise ExecutionError("feedback must be a string")
    with transaction.atomic():
        execution = Execution.objects.select_for_update().filter(pk=execution_id).first()
        if execution is None:
            raise ExecutionNotFound(f"execution '{execution_id}' not found")
        approvals = execution.approvals.select_for_update().order_by("-requested_at", "-id")
        if approval_request_id:
            approvals = approvals.filter(approval_request_id=approval_request_id)
        approval = approvals.first()
        if approval is None:
            raise ExecutionNotFound(f"execution '{execution_id}' has no such approval request")
        if approval.status != Approval.Status.PENDING:
            when = rfc3339(approval.decided_at) or "?"
            raise InvalidTransition(
                f"approval {approval.approval_request_id} was already {approval.status} by {approval.decided_by} at {when}"
            )
        if execution.status != Status.WAITING:
            raise InvalidTransition(f"execution {execution.id} is {execution.status}: the wait already ended")
        approval.decide(status, feedback or "", response, by, now)
        execution.resume(now, {"approval_request_id": approval.approval_request_id, "decision": status, "by": by})
        _owe_decision(execution, approval, approval.callback_url, now)
    return approval


def _owe_decision(execution: Execution, approval: Approval, callback: str, now: datetime) -> None:
    if not callback:
        return  # no callback (not the SDK): the agent polls approval-status
    body = {
        "execution_id": execution.id,
        "approval_request_id": approval.approval_request_id,
        "decision": approval.status,
        "feedback": approval.feedback,
        "response": approval.response,
    }
    notices.owe(execution, AgentNotice.Kind.APPROVAL, now, url=callback, body=body)


def expire_due(now: datetime, limit: int = 100) -> int:
    """Decide `expired` for pending approvals past their expiry (the dispatchers call this)."""
    due = list(
        Approval.objects.filter(status=Approval.Status.PENDING, expires_at__lte=now)
        .order_by("expires_at")
        .values_list("execution_id", "approval_request_id")[:limit]
    )
    expired = 0
    for execution_id, request_id in due:
        try:
            decide(execution_id, Approval.Status.EXPIRED, "", None, "the control plane (expired)", now, request_id)
            expired += 1
        except (InvalidTransition, ExecutionNotFound):
            # Decided meanwhile, or its execution ended: nothing waits any more.
            Approval.objects.filter(execution_id=execution_id, approval_request_id=request_id).filter(
                status=Approval.Status.PENDING
            ).update(status=Approval.Status.EXPIRED, decided_at=now, decided_by="the control plane (expired)")
    return expired


def awaiter(execution_id: str, node_id: str, body: Any, principal: Principal, now: datetime) -> dict[str, Any]:
    """POST .../awaiter-status: a parent reports that it waits on a paused child (kept in its trace)."""
    execution = _execution_on(node_id, execution_id, principal)
    if not isinstance(body, dict) or body.get("status") not in ("waiting", "running"):
        raise ExecutionError("status must be 'waiting' or 'running'")
    reason = body.get("reason") if isinstance(body.get("reason"), str) else ""
    TraceEntry.objects.create(
        execution_id=execution.id,
        kind=TraceEntry.Kind.NOTE,
        message=f"awaiter {body['status']}: {reason}"[:2000],
        data={"tags": ["awaiter", body["status"]]},
        created_at=now,
    )
    return {"success": True, "execution_id": execution.id, "status": body["status"]}


def decide_from_webhook(raw: bytes, header: str, payload: Any, now: datetime) -> Approval:
    """An approval tool's signed decision (POST /api/v1/webhooks/approval-response)."""
    secret = settings.AGENTFIELD_APPROVAL_WEBHOOK_SECRET
    if not secret:
        raise NotConfigured()
    if not verify_signature(secret, header, raw, now.timestamp()):
        raise BadSignature()
    if not isinstance(payload, dict):
        raise ExecutionError("body must be a JSON object")
    request_id = payload.get("approval_request_id") or payload.get("requestId")
    if not isinstance(request_id, str) or not request_id:
        raise ExecutionError("approval_request_id is required")
    matches = Approval.objects.filter(approval_request_id=request_id)
    if isinstance(payload.get("execution_id"), str):
        matches = matches.filter(execution_id=payload["execution_id"])
    execution_ids = sorted(set(matches.values_list("execution_id", flat=True)))
    if not execution_ids:
        raise ExecutionNotFound(f"approval request '{request_id}' not found")
    if len(execution_ids) > 1:
        raise ExecutionError(f"approval request '{request_id}' is used by several executions: send execution_id")
    decision = payload.get("decision") or payload.get("action")
    return decide(
        execution_ids[0],
        decision,
        payload.get("feedback"),
        payload.get("response"),
        "approval webhook",
        now,
        request_id,
    )
