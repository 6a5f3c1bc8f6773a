"""Orchestration of executions across apps: submit, callbacks, cancel, trace."""

from __future__ import annotations

import contextlib
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
from django.db import IntegrityError, connection, transaction
from django.db.models import sql
from django.utils.dateparse import parse_datetime

from agentfield_project.exceptions import DomainError
from agentfield_project.postgres import compiled
from agentfield_project.short_cache import ShortCache
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


Submitted = tuple[Execution, str | None, bool]  # the execution, the webhook error (if any), whether it is new


def submit(sub: Submission, now: datetime, principal: Principal = policy.OPEN) -> Submitted:
    """Store a queued execution fired by `principal`; return it, the webhook error (if any) and whether it is new."""
    outcome = submit_many([(sub, principal)], now)[0]
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def submit_many(items: list[tuple[Submission, Principal]], now: datetime) -> list[Submitted | Exception]:
    """`submit` for several submissions at once (the API's concurrent submits, runtime/batching.py): each
    one's outcome, or the error that refused it (alone) or that failed its transaction.

    Those without an Idempotency-Key are stored together: one read of their fair places, then one
    statement holding their INSERT and one turn of the event counter's row lock
    (events.store_and_record), in one transaction with their webhooks' rows if any. A keyed one is
    stored alone, because a race on its key fails its INSERT and must fail nothing else.
    """
    outcomes: list[Submitted | Exception | None] = [None] * len(items)
    plain: list[tuple[int, _Planned]] = []
    keyed: list[tuple[int, _Planned]] = []
    for index, (sub, principal) in enumerate(items):
        try:
            planned = _plan(sub, principal, now)
        except DomainError as error:
            outcomes[index] = error
            continue
        if isinstance(planned, _Planned):
            (keyed if sub.idempotency_key else plain).append((index, planned))
        else:
            outcomes[index] = planned  # an earlier request with the same Idempotency-Key
    for group in [plain] + [[one] for one in keyed]:
        if group:
            for (index, _), outcome in zip(group, _stored([planned for _, planned in group], now), strict=True):
                outcomes[index] = outcome
    return outcomes  # type: ignore[return-value] - every slot is filled above


@dataclass
class _Planned:
    """A submission checked and built, to be inserted."""

    execution: Execution
    spec: Any
    webhook_error: str | None
    principal: Principal


def _plan(sub: Submission, principal: Principal, now: datetime) -> _Planned | Submitted:
    """Check `sub` and build its execution; or the existing execution its Idempotency-Key names."""
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
    execution = _build(sub, target_type, fingerprint, spec is not None, now, owners)
    return _Planned(execution, spec, webhook_error, principal)


def _stored(group: list[_Planned], now: datetime) -> list[Submitted | Exception]:
    """Insert `group` in one transaction: each one's outcome, or the error that failed the transaction."""
    try:
        _insert(group, now)
    except IntegrityError as error:
        if len(group) == 1 and group[0].execution.idempotency_key:  # a keyed group is alone: a key race
            return [_race_lost(group[0], error)]
        return [error] * len(group)
    except Exception as error:  # noqa: BLE001 - e.g. the database is away: this group's requests answer it
        return [error] * len(group)
    return [(planned.execution, planned.webhook_error, True) for planned in group]


def _race_lost(planned: _Planned, error: IntegrityError) -> Submitted | Exception:
    """Two requests raced with the same Idempotency-Key: the first one's row wins."""
    execution = planned.execution
    try:
        existing = _existing_for_key(execution.idempotency_key or "", execution.request_fingerprint, planned.principal)
    except Exception as refused:  # noqa: BLE001 - IdempotencyConflict, or the database went away
        return refused
    return error if existing is None else (existing, None, False)


def create_submitted(
    sub: Submission, now: datetime, owners: tuple[int | None, int | None], restarted_from: str
) -> tuple[Execution, str | None]:
    """A new execution restarting `restarted_from` (executions/steering.py; no idempotency key)."""
    target_type = _target_type(sub)
    spec, webhook_error = _webhook_spec(sub)
    execution = _build(sub, target_type, sub.fingerprint(), spec is not None, now, owners, restarted_from)
    _insert([_Planned(execution, spec, webhook_error, policy.OPEN)], now)
    return execution, webhook_error


def _parent(execution_id: str) -> Execution | None:
    """What a child's submission reads of its parent: owners and priority (remembered briefly: a fan-out's
    submits all name the same parent), not its input or result."""
    try:
        return access.reportable(execution_id)
    except ExecutionNotFound:
        return None


# What each node serves ({name: "reasoner" or "skill"}), remembered briefly: a burst of submits
# names the same few nodes, and their reasoners change only when they register again. A name not
# remembered is read again, so a reasoner registered a moment ago is never refused; one removed
# may still be accepted for the short window (its execution then fails like any call to a gone
# reasoner), the same window as a revoked key's.
_served: ShortCache[str, dict[str, str]] = ShortCache()


def _target_type(sub: Submission) -> str:
    served = _served.get(sub.node_id, _read_served)
    if sub.name not in served:
        _served.forget(sub.node_id)
        served = _served.get(sub.node_id, _read_served)
    if sub.name not in served:
        raise TargetNotFound(f"target '{sub.name}' not found on node '{sub.node_id}'")
    return served[sub.name]


def _read_served(node_id: str) -> dict[str, str]:
    node = Node.objects.filter(pk=node_id).only("id", "reasoners", "skills").first()
    if node is None:
        raise TargetNotFound(f"node '{node_id}' not found")
    names = {*node.reasoner_ids(), *node.skill_ids()}
    return {name: target_type for name in names if (target_type := node.target_type(name))}


def forget_served() -> None:
    """Drop what `_target_type` remembers (tests: a database rolled back between them)."""
    _served.forget()


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


def _build(
    sub: Submission,
    target_type: str,
    fingerprint: str,
    webhook_registered: bool,
    now: datetime,
    owners: tuple[int | None, int | None],
    restarted_from: str | None = None,
) -> Execution:
    """The new execution's row, not yet stored."""
    return Execution(
        restarted_from=restarted_from,
        submitted_by_id=owners[0],
        owner_key_id=owners[1],
        id=new_id("exec"),
        run_id=sub.run_id or new_id("run"),
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
        idempotency_key=sub.idempotency_key,
        request_fingerprint=fingerprint,
        webhook_registered=webhook_registered,
        created_at=now,
        updated_at=now,
    )


def _insert(planned: list[_Planned], now: datetime) -> None:
    """Store the executions, their webhooks and their `queued` events, all or nothing.

    The executions and their events are one statement, so without webhooks (the common case) a
    batch is its own autocommit transaction. A webhook is a row of its own (keyed by the execution's
    id, no foreign key), stored first in a transaction, so the statement that takes the event
    counter's row lock is still the last one.
    """
    executions = [one.execution for one in planned]
    for execution, place in zip(executions, fairness.next_places([e.run_id for e in executions]), strict=True):
        execution.fair_seq = place
    hooked = [one for one in planned if one.spec is not None]
    # Inside a caller's transaction, a savepoint: a failure must leave that transaction usable.
    with transaction.atomic() if hooked or connection.in_atomic_block else contextlib.nullcontext():
        for one in hooked:
            webhooks.register(one.execution.id, one.spec, now)
        queued = [(execution, events.QUEUED, {}) for execution in executions]
        events.store_and_record(*_insert_statement(executions), queued, now, (events.DISPATCH_CHANNEL,))
    for execution in executions:
        execution._state.adding, execution._state.db = False, connection.alias


def _insert_statement(executions: list[Execution]) -> tuple[str, tuple[Any, ...]]:
    """Django's own INSERT of `executions` (`bulk_create`'s), to run inside a larger statement.

    Plain values only: for many rows Django then writes one UNNEST of an array per column.
    """
    query = sql.InsertQuery(Execution)
    query.insert_values([f for f in Execution._meta.concrete_fields if not f.generated], executions)
    [(statement, params)] = query.get_compiler(connection=connection).as_sql()
    return statement, params


def _due(sub: Submission, now: datetime) -> datetime:
    if sub.run_at is not None:
        return max(now, sub.run_at)
    return now + sub.delay if sub.delay else now


async def get_execution_on_loop(execution_id: str) -> Execution | None:
    """`get_execution` on the event loop; None: not found, or not readable there now (the thread path answers)."""
    return await compiled.get_by_pk_on_loop(Execution, execution_id)


def get_execution(execution_id: str) -> Execution:
    try:
        # The status poll's and the callback's read (the SDK's hottest): get(pk=...)'s SELECT, compiled once.
        return compiled.get_by_pk(Execution, execution_id)
    except Execution.DoesNotExist:
        raise ExecutionNotFound(f"execution '{execution_id}' not found") from None
