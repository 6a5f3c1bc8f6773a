"""What staff do to one execution from the console (dashboard buttons, admin), each one logged.

Every action goes through the service the API uses (steering, approvals, webhook redelivery), so
the console can do nothing the API cannot; and each is written to the admin's LogEntry table
("Recent actions", the object's history) with the staff user, since an action is not a form save
and Django records nothing for it by itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from django.contrib.admin.models import CHANGE, LogEntry
from django.db import models

from executions import approvals, steering
from executions.exceptions import InvalidTransition
from executions.models import ACTIVE, TERMINAL, Approval, Execution, Status
from nodes import policy
from webhooks import services as webhooks
from webhooks.models import Delivery


@dataclass(frozen=True)
class Actor:
    """The staff user acting, and where (the dashboard, the admin): how errors and the log name them."""

    user: models.Model
    place: str

    @property
    def by(self) -> str:
        return f"staff user '{self.user}' in {self.place}"


def record(user: models.Model, objects: Iterable[models.Model], message: str) -> None:
    """One "Recent actions" entry per object, in the name of `user`."""
    LogEntry.objects.log_actions(user.pk, list(objects), CHANGE, message)


def cancel(execution: Execution, actor: Actor, now: datetime) -> str:
    _, cancelled = steering.cancel(execution.id, now, policy.STAFF, actor.by)
    others = len(cancelled) - 1
    return "Cancelled" + (f" with {others} descendant(s)." if others > 0 else ".")


def requeue(execution: Execution, actor: Actor, now: datetime) -> str:
    if execution.status not in TERMINAL:
        raise InvalidTransition(f"execution {execution.id} is {execution.status}; only a finished one is re-queued")
    execution.reset_for_retry(now)
    return "Re-queued under the same ids."


def restart(execution: Execution, actor: Actor, now: datetime) -> str:
    fresh = steering.restart(execution.id, {}, now, policy.STAFF)
    return f"Restarted as {fresh.id} (same input, new run)."


def redeliver(execution: Execution, actor: Actor, now: datetime) -> str:
    delivery = webhooks.redeliver(execution.id, now)
    return f"Webhook redelivered (delivery {delivery.id}, same webhook-id)."


def _decide(decision: str) -> Callable[[Execution, Actor, datetime], str]:
    def act(execution: Execution, actor: Actor, now: datetime) -> str:
        approval = approvals.decide(execution.id, decision, "", None, actor.by, now)
        return f"Approval {approval.approval_request_id}: {approval.get_status_display().lower()}."

    return act


ACTIONS: dict[str, Callable[[Execution, Actor, datetime], str]] = {
    "cancel": cancel,
    "requeue": requeue,
    "restart": restart,
    "redeliver": redeliver,
    "approve": _decide(Approval.Status.APPROVED),
    "reject": _decide(Approval.Status.REJECTED),
}


def perform(name: str, execution: Execution, actor: Actor, now: datetime) -> str:
    """Run the action `name` and log it; domain errors (ExecutionError, WebhookError) propagate."""
    message = ACTIONS[name](execution, actor, now)
    record(actor.user, [execution], f"{message} ({actor.place})")
    return message


def available(execution: Execution) -> list[str]:
    """The actions that make sense for the execution as it is now (the services still decide)."""
    names = []
    if execution.status in ACTIVE:
        names.append("cancel")
    if execution.status == Status.WAITING and execution.approvals.filter(status=Approval.Status.PENDING).exists():
        names += ["approve", "reject"]
    if execution.status in TERMINAL:
        names += ["requeue", "restart"]
        if execution.webhook_registered and Delivery.objects.filter(execution_id=execution.id).exists():
            names.append("redeliver")
    return names
