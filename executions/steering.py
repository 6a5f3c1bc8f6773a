"""Steering a run from outside: cancel an execution with its descendants, cancel a run, restart.

A cancel is recorded first (the status, its event and webhook in one transaction) and the agent
is told afterwards, durably: the same transaction queues an `AgentNotice` that the dispatchers
deliver until the agent instance answers (executions/notices.py). Descendants (the tree of
`parent_execution_id`: `app.call` children) are cancelled with their ancestor, newest first, so
no parent is cancelled while a child it waits on still runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import connection, transaction

from executions import access, notices, services
from executions.exceptions import ExecutionError, ExecutionNotFound, InvalidTransition
from executions.models import ACTIVE, Execution, Status
from nodes import policy
from nodes.exceptions import NotPermitted
from nodes.models import ApiKey
from nodes.policy import Principal
from webhooks import crypto
from webhooks.models import Webhook

MAX_DEPTH = 100  # a tree of app.calls deeper than this is a loop, not a workflow

DESCENDANTS = """
WITH RECURSIVE tree(id, depth) AS (
    SELECT id, 0 FROM executions_execution WHERE id = ANY(%(roots)s)
    UNION
    SELECT child.id, tree.depth + 1
      FROM executions_execution child JOIN tree ON child.parent_execution_id = tree.id
     WHERE tree.depth < %(max_depth)s
)
SELECT DISTINCT id FROM tree
"""


def who(principal: Principal, username: str = "") -> str:
    """How a cancel or restart names its author: the key's name, the staff user, or the open API."""
    if principal.key_id is not None:
        name = ApiKey.objects.filter(pk=principal.key_id).values_list("name", flat=True).first()
        return f"API key '{name}'" if name else f"API key #{principal.key_id}"
    return f"staff user '{username}'" if username else "the open API (no key exists)"


def cancel(execution_id: str, now: datetime, principal: Principal, by: str) -> tuple[Execution, list[str]]:
    """Cancel an active execution and its active descendants; the execution and every id cancelled."""
    execution = services.get_execution(execution_id)
    access.check(principal, execution, policy.may_steer)
    if execution.is_terminal:
        raise InvalidTransition(f"execution {execution.id} is {execution.status}; cannot change it to cancelled")
    cancelled = cancel_trees([execution.id], now, f"cancelled by {by}")
    execution.refresh_from_db()
    return execution, cancelled


def cancel_run(run_id: str, now: datetime, principal: Principal, by: str) -> list[str]:
    """Cancel every active execution of the run that `principal` may steer; 404 if it sees none."""
    seen = list(access.visible(principal, Execution.objects.filter(run_id=run_id)))
    if not seen:
        raise ExecutionNotFound(f"run '{run_id}' not found")
    steerable = [e.id for e in seen if principal.is_admin or policy.may_steer(principal, access.facts(e))]
    if not steerable:
        raise NotPermitted(f"this key may not cancel run '{run_id}'")
    return cancel_trees(steerable, now, f"cancelled by {by} (the whole run)")


def cancel_trees(root_ids: list[str], now: datetime, reason: str) -> list[str]:
    """Cancel the active executions among `root_ids` and their descendants, newest first."""
    with connection.cursor() as cursor:
        cursor.execute(DESCENDANTS, {"roots": root_ids, "max_depth": MAX_DEPTH})
        ids = [row[0] for row in cursor.fetchall()]
    roots = set(root_ids)
    cancelled = []
    # A child is always created after its parent: newest first is bottom-up.
    for execution in Execution.objects.filter(id__in=ids, status__in=ACTIVE).order_by("-created_at", "-id"):
        own = reason if execution.id in roots else f"{reason}, with an ancestor"
        if cancel_one(execution, now, own):
            cancelled.append(execution.id)
    return cancelled


def cancel_one(execution: Execution, now: datetime, reason: str) -> bool:
    """Cancel one execution and queue the notice to its agent instance; False if it had just ended."""
    running = execution.status in (Status.RUNNING, Status.WAITING)
    # A queued row under a lease is being handed to an agent right now: tell that instance once
    # the hand-over is over (its lease end); a dispatcher that records the agent's 202 for an
    # execution cancelled meanwhile tells it at once (executions/dispatcher.py).
    handing_over = execution.status == Status.QUEUED and execution.lease_token is not None
    try:
        with transaction.atomic():
            execution.cancel(now, reason)
            if running:
                notices.owe_cancel(execution, now)
            elif handing_over:
                notices.owe_cancel(execution, now, due=max(now, execution.run_at))
    except InvalidTransition:
        return False
    return True


def restart(execution_id: str, body: Any, now: datetime, principal: Principal) -> Execution:
    """A new execution of the same target: the same input (or `input`), a new run (or `same_run`)."""
    original = services.get_execution(execution_id)
    access.check(principal, original, policy.may_steer)
    if not isinstance(body, dict):
        raise ExecutionError("restart body must be a JSON object")
    new_input = body.get("input", original.input)
    if not isinstance(new_input, dict):
        raise ExecutionError("input must be a JSON object")
    same_run = body.get("same_run", False)
    if not isinstance(same_run, bool):
        raise ExecutionError("same_run must be true or false")
    submission = services.Submission(
        node_id=original.node_id,
        name=original.target_name,
        input=new_input,
        context=original.context,
        webhook=body["webhook"] if "webhook" in body else _webhook_block(original),
        run_id=original.run_id if same_run else None,
        parent_execution_id=original.parent_execution_id,
        session_id=original.session_id,
        actor_id=original.actor_id,
        idempotency_key=None,
        priority=original.priority,
    )
    # The restart stays with the original's owner (a client still sees it); who asked is `submitted_by`.
    owners = (principal.key_id, original.owner_key_id)
    execution, _ = services.create_submitted(submission, now, owners, restarted_from=original.id)
    return execution


def _webhook_block(original: Execution) -> dict[str, Any] | None:
    webhook = Webhook.objects.filter(execution_id=original.id).first()
    if webhook is None:
        return None
    return {"url": webhook.url, "secret": crypto.decrypt(webhook.secret), "headers": webhook.headers,
            "events": webhook.events}  # fmt: skip
