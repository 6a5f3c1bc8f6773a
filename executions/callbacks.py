"""What agents report about their executions: status callbacks, logs, step events, notes."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from agentfield_project.exceptions import DomainError
from executions import access, statuses
from executions.exceptions import ExecutionError, InvalidTransition
from executions.models import Execution, Status, TraceEntry
from executions.services import get_execution
from nodes import policy
from nodes.policy import Principal

logger = logging.getLogger(__name__)

MAX_TRACE_ENTRIES = 100
MAX_MESSAGE = 8192
MAX_DURATION_MS = 2**53  # JSON's exact integers; far beyond any real run, inside the bigint column
MAX_PROGRESS = 2**31 - 1  # the integer column


@dataclass(frozen=True)
class Callback:
    status: str
    result: Any
    error: str
    error_details: Any
    duration_ms: int | None
    progress: int | None


def parse_callback(body: Any) -> Callback:
    """Validate a status callback body; ExecutionError (400) saying what is wrong."""
    if not isinstance(body, dict):
        raise ExecutionError("callback body must be a JSON object with a 'status'")
    status = statuses.normalize(body.get("status"))
    if status is None:
        raise ExecutionError(f"unsupported status {body.get('status')!r}")
    error = body.get("error") or body.get("error_message") or ""
    if not isinstance(error, str):
        raise ExecutionError("error must be a string")
    duration = body.get("duration_ms")
    if duration is not None and (
        isinstance(duration, bool) or not isinstance(duration, int | float) or not 0 <= duration <= MAX_DURATION_MS
    ):
        raise ExecutionError(f"duration_ms must be a number from 0 to {MAX_DURATION_MS}")
    progress = body.get("progress")
    if progress is not None and (
        isinstance(progress, bool) or not isinstance(progress, int) or not -MAX_PROGRESS <= progress <= MAX_PROGRESS
    ):
        raise ExecutionError(f"progress must be an integer of at most {MAX_PROGRESS}")
    return Callback(
        status=status,
        result=body.get("result"),
        error=error,
        error_details=body.get("error_details"),
        duration_ms=int(duration) if duration is not None else None,
        progress=progress,
    )


def apply_callback(
    execution_id: str, callback: Callback, now: datetime, principal: Principal = policy.OPEN
) -> Execution:
    """Apply an agent's callback: the first terminal status wins; a repeat of it is accepted.

    A conflicting terminal status raises InvalidTransition (409). A `cancelled` that we did not
    ask for (the SDK cancels in-flight work when its process is shut down) re-queues the
    execution under the same ids instead: the work was interrupted, not abandoned.
    """
    execution = get_execution(execution_id)
    access.check(principal, execution, policy.may_report)
    try:
        _transition(execution, callback, now)
    except InvalidTransition:
        current = get_execution(execution_id)
        if current.status == callback.status or (current.is_terminal and callback.status not in statuses.TERMINAL):
            return current
        raise
    return execution


def _transition(execution: Execution, callback: Callback, now: datetime) -> None:
    if callback.status == "succeeded":
        execution.complete(callback.result, now, callback.duration_ms)
    elif callback.status == "failed" and failed_by_our_outage(callback.error):
        if _at_an_agent(execution):  # else a repeat of this callback: the work is back in the queue
            _run_again(execution, f"the reasoner failed while the control plane was unavailable: {callback.error}", now)
    elif callback.status == "failed":
        fields = {"error_details": callback.error_details}
        if callback.result is not None:
            fields["result"] = callback.result
        execution.fail(callback.error or "agent reported failure", now, callback.duration_ms, **fields)
    elif callback.status == "timeout":
        execution.time_out(callback.error, now, callback.duration_ms)
    elif callback.status == "cancelled":
        _interrupted(execution, callback, now)
    else:
        execution.report_progress(now, callback.progress)


def _at_an_agent(execution: Execution) -> bool:
    # A queued row under a lease is being handed over right now: the agent may already have it.
    return execution.status in (Status.RUNNING, Status.WAITING) or execution.lease_token is not None


# What the SDK's error says when a call of the reasoner's to us failed because our database was
# away: our 503 body ("database unavailable; ...") or httpx's text for a 503 status.
OUR_OUTAGE_MARKERS = ("database unavailable", "503 Service Unavailable")


def failed_by_our_outage(error: str) -> bool:
    """Whether a reasoner's failure says that the control plane was unavailable (a checkpoint, an app.call).

    Such a failure is ours, not the work's: the execution runs again under the same ids (it
    resumes from its checkpoints) instead of ending `failed` because the database restarted.
    """
    return any(marker in error for marker in OUR_OUTAGE_MARKERS)


def _interrupted(execution: Execution, callback: Callback, now: datetime) -> None:
    if not _at_an_agent(execution):
        execution.cancel(now, callback.error or "cancelled by the agent")
        return
    _run_again(execution, f"agent interrupted the execution: {callback.error or 'cancelled'}", now)


def _run_again(execution: Execution, reason: str, now: datetime) -> None:
    """Back to the queue under the same ids, the agent having given the work up; failed at the attempt limit."""
    with transaction.atomic():
        if execution.attempt >= execution.max_attempts:
            execution.fail(f"{reason} (attempt {execution.attempt} of {execution.max_attempts})", now)
        else:
            execution.requeue(now, now, reason, dropped=True)


_INSERT_TRACE = """
INSERT INTO executions_traceentry (execution_id, kind, level, message, data, created_at)
SELECT execution_id, kind, level, message, data, %s
  FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::jsonb[]) AS entry(execution_id, kind, level, message, data)
"""


class _TraceRows:
    """Trace entries gathered from several requests, stored with one INSERT."""

    def __init__(self) -> None:
        self.columns: tuple[list[str], ...] = ([], [], [], [], [])  # execution_id, kind, level, message, data

    def add(self, execution_id: str, kind: str, level: str, message: str, data: dict[str, Any]) -> None:
        for column, value in zip(self.columns, (execution_id, kind, level, message, json.dumps(data)), strict=True):
            column.append(value)

    def insert(self, now: datetime) -> None:
        if self.columns[0]:
            with connection.cursor() as cursor:  # one statement in autocommit: one round trip, no BEGIN/COMMIT
                cursor.execute(_INSERT_TRACE, [now, *self.columns])


@dataclass(frozen=True)
class LogPost:
    """One request's log lines: for which execution, the body as sent, and who sent it."""

    execution_id: str
    body: Any
    principal: Principal = policy.OPEN


def store_logs(execution_id: str, body: Any, now: datetime, principal: Principal = policy.OPEN) -> int:
    """Keep the SDK's structured log lines as the trace of an existing execution (one INSERT)."""
    [stored] = store_log_posts([LogPost(execution_id, body, principal)], now)
    if isinstance(stored, Exception):
        raise stored
    return stored


def store_log_posts(posts: list[LogPost], now: datetime) -> list[int | DomainError]:
    """Each post's number of lines stored, or the error that refused it; the accepted lines of all in one INSERT.

    A post is refused alone (a bad body, an unknown execution, one its key may not report on); a
    database error fails them all.
    """
    results: list[int | DomainError] = []
    rows = _TraceRows()
    # A fan-out's children each post about eight lines: one query for the batch's unremembered ones.
    access.remember_reportable(post.execution_id for post in posts)
    for post in posts:
        try:
            entries = _log_entries(post.body)
            # An unknown (or over-long) id would leave orphan rows, or fail the INSERT with a 500.
            access.check(post.principal, access.reportable(post.execution_id), policy.may_report)
        except DomainError as error:  # ExecutionError, or the nodes app's NotPermitted
            results.append(error)
            continue
        for entry in entries:
            rows.add(
                post.execution_id,
                TraceEntry.Kind.LOG,
                str(entry.get("level") or "info")[:16],
                str(entry.get("message") or "")[:MAX_MESSAGE],
                {key: value for key, value in entry.items() if key not in ("message", "level")},
            )
        results.append(len(entries))
    rows.insert(now)
    return results


def _log_entries(body: Any) -> list[dict]:
    entries = body.get("entries") if isinstance(body, dict) else None
    if entries is None and isinstance(body, dict):
        entries = [body]
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise ExecutionError("logs body must be {'entries': [objects]}")
    if len(entries) > MAX_TRACE_ENTRIES:
        raise ExecutionError(f"at most {MAX_TRACE_ENTRIES} log entries per request")
    return entries


def store_step_event(body: Any, now: datetime, principal: Principal = policy.OPEN) -> None:
    """The SDK's start/finish step event: trace only (it never changes the execution's status)."""
    [refused] = store_step_events([(body, principal)], now)
    if refused is not None:
        raise refused


def store_step_events(posts: list[tuple[Any, Principal]], now: datetime) -> list[DomainError | None]:
    """`store_step_event` for several requests (body, sender): the error that refused each, or None; one INSERT."""
    results: list[DomainError | None] = []
    rows = _TraceRows()
    access.remember_reportable(  # the ids `_step_event` will check (not an admin's), in one query
        body["execution_id"]
        for body, principal in posts
        if not principal.is_admin and isinstance(body, dict) and isinstance(body.get("execution_id"), str)
    )
    for body, principal in posts:
        try:
            execution_id, status, data = _step_event(body, principal)
        except DomainError as error:
            results.append(error)
            continue
        rows.add(execution_id, TraceEntry.Kind.STEP, "info", f"step {status}", data)
        results.append(None)
    rows.insert(now)
    return results


def _step_event(body: Any, principal: Principal) -> tuple[str, str, dict[str, Any]]:
    if not isinstance(body, dict):
        raise ExecutionError("event body must be a JSON object")
    execution_id = body.get("execution_id")
    if not isinstance(execution_id, str) or not execution_id or len(execution_id) > 255:
        raise ExecutionError("execution_id is required")
    if not principal.is_admin:  # an admin may trace anything, even before the execution is stored
        access.check(principal, access.reportable(execution_id), policy.may_report)
    status = statuses.normalize(body.get("status")) or str(body.get("status") or "")[:32]
    data = {key: body[key] for key in ("status", "reasoner_id", "agent_node_id", "duration_ms", "error") if key in body}
    return execution_id, status, data


def store_note(execution_id: str, body: Any, now: datetime, principal: Principal = policy.OPEN) -> TraceEntry:
    """A note on an execution (`app.note`)."""
    if not execution_id:
        raise ExecutionError("execution_id is required in the X-Execution-ID header")
    if not isinstance(body, dict) or not isinstance(body.get("message"), str) or not body["message"].strip():
        raise ExecutionError("message cannot be empty")
    tags = body.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise ExecutionError("tags must be a list of strings")
    access.check(principal, access.reportable(execution_id), policy.may_report)
    return TraceEntry.objects.create(
        execution_id=execution_id,
        kind=TraceEntry.Kind.NOTE,
        message=body["message"][:MAX_MESSAGE],
        data={"tags": tags},
        created_at=now,
    )
