"""Orchestration of executions across apps: submit, callbacks, cancel, trace."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.dateparse import parse_datetime

from executions import access, events, fairness
from executions.exceptions import ExecutionError, ExecutionNotFound, IdempotencyConflict, InvalidTarget, TargetNotFound
from executions.models import Execution
from nodes import policy
from nodes.models import Node
from nodes.policy import Principal
from webhooks import services as webhooks
from webhooks.exceptions import InvalidWebhook

logger = logging.getLogger(__name__)

MAX_HEADER_VALUE = 255


def new_id(prefix: str) -> str:
    """An id in the SDK's format: `<prefix>_<unix ms>_<8 hex>`."""
    return f"{prefix}_{int(time.time() * 1000)}_{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Submission:
    """A validated execute request."""

    node_id: str
    name: str
    input: dict[str, Any]
    context: dict[str, Any]
    webhook: Any  # the raw block; validated separately (a bad one does not reject the request)
    run_id: str | None
    parent_execution_id: str | None
    session_id: str
    actor_id: str
    idempotency_key: str | None
    # Not before: an absolute moment (`run_at`) or a delay from acceptance (`delay_seconds`).
    run_at: datetime | None = None
    delay: timedelta | None = None
    priority: int | None = None  # None: the parent's, or 0 (executions/fairness.py)

    def fingerprint(self) -> str:
        canonical = json.dumps(
            [self.node_id, self.name, self.input, self.context, self.webhook], sort_keys=True, separators=(",", ":")
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


def parse_target(target: str) -> tuple[str, str]:
    """Split `node.name`; InvalidTarget unless it has exactly one dot and both parts."""
    parts = target.split(".")
    if len(parts) != 2 or not all(parts):
        raise InvalidTarget()
    return parts[0], parts[1]


def header(headers: Any, name: str) -> str:
    """A trimmed header value; ExecutionError if it is too long or has control characters."""
    value = (headers.get(name) or "").strip()
    if len(value) > MAX_HEADER_VALUE or any(ord(ch) < 32 for ch in value):
        raise ExecutionError(f"header {name} must be at most {MAX_HEADER_VALUE} printable characters")
    return value


def build_submission(target: str, body: Any, headers: Any) -> Submission:
    """Validate an execute request (target, body and headers) without touching the database."""
    node_id, name = parse_target(target)
    if not isinstance(body, dict):
        raise ExecutionError("request body must be a JSON object with an 'input' object")
    if "input" not in body or body["input"] is None:
        raise ExecutionError("input is required")
    if not isinstance(body["input"], dict):
        raise ExecutionError("input must be a JSON object (the reasoner's keyword arguments)")
    context = body.get("context")
    if context is None:
        context = {}
    if not isinstance(context, dict):
        raise ExecutionError("context must be a JSON object")
    # An inbound X-Execution-ID is the caller's own id (an app.call from inside a reasoner).
    parent = header(headers, "X-Execution-ID") or header(headers, "X-Parent-Execution-ID")
    return Submission(
        node_id=node_id,
        name=name,
        input=body["input"],
        context=context,
        webhook=body.get("webhook"),
        run_id=header(headers, "X-Run-ID") or None,
        parent_execution_id=parent or None,
        session_id=header(headers, "X-Session-ID"),
        actor_id=header(headers, "X-Actor-ID"),
        idempotency_key=header(headers, "Idempotency-Key") or None,
        priority=_priority(body.get("priority")),
        **_not_before(body),
    )


def _priority(value: Any) -> int | None:
    low, high = fairness.MIN_PRIORITY, fairness.MAX_PRIORITY
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ExecutionError(f"priority must be an integer between {low} and {high} (higher runs first)")
    return value


MAX_DELAY = timedelta(days=366)


def _not_before(body: dict[str, Any]) -> dict[str, Any]:
    """`delay_seconds` (a number) or `run_at` (ISO 8601 with a zone): when the execution becomes due."""
    delay, run_at = body.get("delay_seconds"), body.get("run_at")
    if delay is not None and run_at is not None:
        raise ExecutionError("give delay_seconds or run_at, not both")
    if delay is not None:
        if isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 <= delay <= MAX_DELAY.total_seconds():
            raise ExecutionError(f"delay_seconds must be a number between 0 and {MAX_DELAY.total_seconds():.0f}")
        return {"delay": timedelta(seconds=delay)}
    if run_at is not None:
        moment = parse_datetime(run_at) if isinstance(run_at, str) else None
        if moment is None or moment.tzinfo is None:
            raise ExecutionError("run_at must be an ISO 8601 date and time with a zone, e.g. 2026-12-24T18:00:00Z")
        return {"run_at": moment}
    return {}


def submit(sub: Submission, now: datetime, principal: Principal = policy.OPEN) -> tuple[Execution, str | None, bool]:
    """Store a queued execution fired by `principal`; return it, the webhook error (if any) and whether it is new."""
    target_type = _target_type(sub)
    fingerprint = sub.fingerprint()
    if sub.idempotency_key:
        existing = _existing_for_key(sub.idempotency_key, fingerprint, principal)
        if existing is not None:
            return existing, None, False
    access.check_run_joinable(principal, sub.run_id)
    parent = _parent(sub.parent_execution_id) if sub.parent_execution_id else None
    owners = access.owners_for_submission(principal, parent)
    if sub.priority is None and parent is not None:
        sub = dataclasses.replace(sub, priority=parent.priority)  # a child runs at its parent's priority
    spec, webhook_error = _webhook_spec(sub)
    try:
        execution = _create(sub, target_type, fingerprint, spec, now, owners)
    except IntegrityError:
        # Two requests raced with the same Idempotency-Key: the first one's row wins.
        existing = _existing_for_key(sub.idempotency_key or "", fingerprint, principal)
        if existing is None:
            raise
        return existing, None, False
    return execution, webhook_error, True


def create_submitted(
    sub: Submission, now: datetime, owners: tuple[int | None, int | None], restarted_from: str
) -> tuple[Execution, str | None]:
    """A new execution restarting `restarted_from` (executions/steering.py; no idempotency key)."""
    target_type = _target_type(sub)
    spec, webhook_error = _webhook_spec(sub)
    return _create(sub, target_type, sub.fingerprint(), spec, now, owners, restarted_from), webhook_error


def _parent(execution_id: str) -> Execution | None:
    """What a child's submission reads of its parent: owners and priority (remembered briefly: a fan-out's
    submits all name the same parent), not its input or result."""
    try:
        return access.reportable(execution_id)
    except ExecutionNotFound:
        return None


def _target_type(sub: Submission) -> str:
    node = Node.objects.filter(pk=sub.node_id).only("id", "reasoners", "skills").first()
    if node is None:
        raise TargetNotFound(f"node '{sub.node_id}' not found")
    target_type = node.target_type(sub.name)
    if target_type is None:
        raise TargetNotFound(f"target '{sub.name}' not found on node '{sub.node_id}'")
    return target_type


def _webhook_spec(sub: Submission) -> tuple[Any, str | None]:
    """The parsed webhook block, or the reason it was refused (a bad block does not reject the request)."""
    if sub.webhook is None:
        return None, None
    try:
        return webhooks.parse_spec(sub.webhook), None
    except InvalidWebhook as exc:
        return None, str(exc)


def _existing_for_key(key: str, fingerprint: str, principal: Principal) -> Execution | None:
    existing = Execution.objects.filter(idempotency_key=key).first()
    # Another key's request is a conflict too: the first execution is never shown to it.
    if existing is not None and (
        existing.request_fingerprint != fingerprint or not policy.may_read(principal, access.facts(existing))
    ):
        raise IdempotencyConflict()
    return existing


def _create(
    sub: Submission,
    target_type: str,
    fingerprint: str,
    spec: Any,
    now: datetime,
    owners: tuple[int | None, int | None],
    restarted_from: str | None = None,
) -> Execution:
    run_id = sub.run_id or new_id("run")
    execution = Execution(
        restarted_from=restarted_from,
        submitted_by_id=owners[0],
        owner_key_id=owners[1],
        id=new_id("exec"),
        run_id=run_id,
        parent_execution_id=sub.parent_execution_id,
        session_id=sub.session_id,
        actor_id=sub.actor_id,
        node_id=sub.node_id,
        target_name=sub.name,
        target_type=target_type,
        input=sub.input,
        context=sub.context,
        max_attempts=settings.AGENTFIELD_EXECUTION_MAX_ATTEMPTS,
        run_at=_due(sub, now),
        priority=sub.priority or 0,
        fair_seq=fairness.next_place(run_id),
        idempotency_key=sub.idempotency_key,
        request_fingerprint=fingerprint,
        webhook_registered=spec is not None,
        created_at=now,
        updated_at=now,
    )
    with transaction.atomic():
        execution.save(force_insert=True)
        del execution.fair_seq  # the INSERT computed it; read back only if someone asks
        if spec is not None:
            webhooks.register(execution.id, spec, now)
        events.record(execution, events.QUEUED, now, notify=(events.DISPATCH_CHANNEL,))
    return execution


def _due(sub: Submission, now: datetime) -> datetime:
    if sub.run_at is not None:
        return max(now, sub.run_at)
    return now + sub.delay if sub.delay else now


def get_execution(execution_id: str) -> Execution:
    execution = Execution.objects.filter(pk=execution_id).first()
    if execution is None:
        raise ExecutionNotFound(f"execution '{execution_id}' not found")
    return execution
