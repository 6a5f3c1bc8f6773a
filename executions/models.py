"""Executions and their status machine; the append-only event log; memory; the SDK's trace.

A status changes only here, through a verb method that is a conditional UPDATE: a cancel can race
a finishing agent, a callback can race the dispatcher recording the agent's 202, and exactly one
of them must win. Terminal transitions write the event and the webhook delivery row in the same
transaction (see `_finish`); without a webhook the change and its event are one statement.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.db.models import F, Q

from agentfield_project import metrics
from executions import cron, events
from executions.exceptions import InvalidTarget, InvalidTransition
from executions.notifications import enqueue_webhooks


class Status(models.TextChoices):
    QUEUED = "queued", "Queued"  # waiting for a dispatcher (or claimed: run_at is its lease)
    RUNNING = "running", "Running"  # handed to an agent instance; waits for its callback
    WAITING = "waiting", "Waiting"  # the reasoner paused on an approval (executions/approvals.py)
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    TIMEOUT = "timeout", "Timed out"


ACTIVE = (Status.QUEUED, Status.RUNNING, Status.WAITING)
TERMINAL = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.TIMEOUT)


class Execution(models.Model):
    id = models.CharField(primary_key=True, max_length=64)
    run_id = models.CharField(max_length=255)
    parent_execution_id = models.CharField(max_length=255, null=True, blank=True)
    # The execution this one restarts (`POST /api/v1/executions/{id}/restart`), if any.
    restarted_from = models.CharField(max_length=64, null=True, blank=True)
    session_id = models.CharField(max_length=255, blank=True, default="")
    actor_id = models.CharField(max_length=255, blank=True, default="")
    node_id = models.CharField(max_length=255)
    target_name = models.CharField(max_length=255)
    target_type = models.CharField(max_length=16, default="reasoner")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    input = models.JSONField(default=dict)
    context = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    error_details = models.JSONField(null=True, blank=True)
    progress = models.IntegerField(null=True, blank=True)
    # Higher first; within a priority the fair order below (executions/fairness.py).
    priority = models.SmallIntegerField(default=0)
    # The execution's place in the fair order: its run's previous place + 1, but never behind the
    # place the claims have reached (FairClock). A run that fanned out 5,000 children thus takes
    # turns with a run that arrived later instead of being served first in full.
    fair_seq = models.BigIntegerField(default=0)
    # Dispatch attempts so far: a claim counts one, whatever happens next.
    attempt = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=5)
    # When the execution is next due. A claim moves it forward by the lease: if the dispatcher
    # dies before recording the outcome, the row simply becomes due again.
    run_at = models.DateTimeField()
    lease_token = models.UUIDField(null=True, blank=True)
    claimed_by = models.CharField(max_length=255, blank=True, default="")
    # The instance the execution was last handed to, and when: recorded by the claim before the
    # POST, so a crash between the agent's 202 and its record cannot lose where the work went.
    node_instance_id = models.CharField(max_length=255, blank=True, default="")
    dispatched_at = models.DateTimeField(null=True, blank=True)
    # Who fired it (an app.call's agent key, a client key), and who owns its run: the root's owner,
    # inherited by every descendant (nodes/policy.py). Null while no key exists, or for staff.
    submitted_by = models.ForeignKey(
        "nodes.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    owner_key = models.ForeignKey(
        "nodes.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True, default="")
    webhook_registered = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.BigIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # Matches the claim in executions/queue.py: WHERE status='queued' ORDER BY priority DESC, fair_seq, id.
            models.Index(
                fields=["-priority", "fair_seq", "id"], name="execution_fair_idx", condition=Q(status="queued")
            ),
            # The reaper looks only at running rows.
            models.Index(fields=["node_id"], name="execution_running_idx", condition=Q(status="running")),
            models.Index(fields=["-created_at", "-id"], name="execution_created_idx"),
            models.Index(fields=["status", "-created_at"], name="execution_status_created_idx"),
            # The overview's throughput, durations and 24-hour counts (executions/reports.py): only
            # finished rows have an entry, written once when they finish (the update that sets it
            # rewrites every index anyway), so in-flight work pays nothing for it.
            models.Index(
                fields=["completed_at"], name="execution_completed_idx", condition=Q(completed_at__isnull=False)
            ),
            # Every claim and outcome writes a new row version into each index (the status and
            # run_at columns they change are indexed, so no update is HOT): keep the set small.
            # Plain btrees only (no LIKE variants); the optional columns are indexed where set.
            # Also answers "the last fair place of this run" (executions/fairness.py) from the index alone.
            models.Index(fields=["run_id", "fair_seq"], name="execution_run_fair_idx"),
            models.Index(fields=["node_id"], name="execution_node_idx"),
            models.Index(
                fields=["parent_execution_id"],
                name="execution_parent_idx",
                condition=Q(parent_execution_id__isnull=False),
            ),
            # A client's list: its own executions, newest first (only rows fired with a key).
            models.Index(
                fields=["owner_key", "-created_at"], name="execution_owner_idx", condition=Q(owner_key__isnull=False)
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["idempotency_key"],
                name="execution_idempotency_key_unique",
                condition=Q(idempotency_key__isnull=False),
            ),
            models.CheckConstraint(condition=Q(status__in=[s.value for s in Status]), name="execution_status_valid"),
        ]

    def __str__(self) -> str:
        return self.id

    @property
    def target(self) -> str:
        return f"{self.node_id}.{self.target_name}"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    # -- transitions ---------------------------------------------------------------------------

    def _transition(self, allowed: tuple[str, ...], extra_filter: Q | None = None, **changes: Any) -> None:
        """Apply `changes` if the row is still in an allowed status; raise InvalidTransition otherwise."""
        if not self._allowed(allowed, extra_filter).update(**changes):
            raise self._refused(changes)
        self._changed(changes)

    def _transition_and_record(
        self, allowed: tuple[str, ...], extra_filter: Q | None, event_type: str, now: datetime, changes: dict[str, Any]
    ) -> None:
        """`_transition` and its event in one statement (events.change_and_record): no BEGIN or COMMIT of its own."""
        if not events.change_and_record(self._allowed(allowed, extra_filter), changes, event_type, now):
            raise self._refused(changes)
        self._changed(changes)

    def _allowed(self, allowed: tuple[str, ...], extra_filter: Q | None) -> models.QuerySet[Execution]:
        query = Execution.objects.filter(pk=self.pk, status__in=allowed)
        return query if extra_filter is None else query.filter(extra_filter)

    def _refused(self, changes: dict[str, Any]) -> InvalidTransition:
        current = Execution.objects.filter(pk=self.pk).values_list("status", flat=True).first()
        return InvalidTransition(
            f"execution {self.pk} is {current or 'gone'}; cannot change it to {changes.get('status', 'that')}"
        )

    def _changed(self, changes: dict[str, Any]) -> None:
        """Bring this instance up to date with the UPDATE that applied `changes`."""
        for name, value in changes.items():
            if not hasattr(value, "resolve_expression"):
                setattr(self, name, value)
        if "attempt" in changes:
            self.refresh_from_db(fields=["attempt"])

    def mark_running(self, lease_token: uuid.UUID, instance_id: str, now: datetime) -> None:
        """The agent accepted the work (202): running on `instance_id`, no lease, waits for the callback."""
        with transaction.atomic():
            self._transition(
                (Status.QUEUED,),
                Q(lease_token=lease_token),
                status=Status.RUNNING,
                node_instance_id=instance_id,
                started_at=self.started_at or now,
                lease_token=None,
                updated_at=now,
            )
            events.record(self, events.STARTED, now)

    @classmethod
    def mark_running_many(cls, items: list[tuple[Execution, str]], now: datetime) -> list[Execution]:
        """Batch `mark_running` for (execution, instance id) pairs; return those still leased by us.

        One statement (update + events, autocommit): this is the path of every SDK dispatch.
        """
        sql = """
            UPDATE executions_execution e
               SET status = 'running', node_instance_id = v.instance, lease_token = NULL,
                   started_at = COALESCE(e.started_at, %(now)s), updated_at = %(now)s
              FROM unnest(%(ids)s::text[], %(tokens)s::uuid[], %(instances)s::text[]) AS v(id, token, instance)
             WHERE e.id = v.id AND e.status = 'queued' AND e.lease_token = v.token
            RETURNING e.id, e.run_id, e.node_id, e.target_name, e.status
        """
        params = {
            "now": now,
            "ids": [execution.id for execution, _ in items],
            "tokens": [execution.lease_token for execution, _ in items],
            "instances": [instance for _, instance in items],
        }
        done = events.update_and_record(sql, params, events.STARTED, now)
        moved = [execution for execution, _ in items if execution.id in done]
        for execution in moved:
            execution.status, execution.lease_token = Status.RUNNING, None
        return moved

    @classmethod
    def complete_many(cls, items: list[tuple[Execution, Any, int | None]], now: datetime) -> list[Execution]:
        """Batch `complete(..., lease=...)` for (execution, result, duration_ms); return those still leased by us.

        Executions without a webhook finish in one statement (update + events); those with one
        also queue their delivery, in one transaction with their update and events.
        """
        plain = [item for item in items if not item[0].webhook_registered]
        hooked = [item for item in items if item[0].webhook_registered]
        finished = []
        if plain:
            rows = events.update_and_record(_COMPLETE_MANY, _complete_params(plain, now), events.COMPLETED, now)
            finished += _completed(plain, rows, now)
        if hooked:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(_COMPLETE_MANY, _complete_params(hooked, now))
                    rows = {row[0]: row for row in cursor.fetchall()}
                done = _completed(hooked, rows, now)
                channels = enqueue_webhooks(done, now)
                events.record_many([(execution, events.COMPLETED, {}) for execution in done], now, notify=channels)
            finished += done
        metrics.observe_finished(finished)  # committed: the plain ones in autocommit, the others just above
        return finished

    def wait(self, now: datetime, data: dict[str, Any]) -> None:
        """running -> waiting (paused on an approval); the liveness reaper leaves waiting rows alone.

        A reasoner may pause before its dispatcher recorded the agent's 202 (the row is still
        queued under the hand-over's lease): that counts as running, and the lease is dropped.
        """
        with transaction.atomic():
            self._transition(
                (Status.RUNNING, Status.QUEUED),
                Q(status=Status.RUNNING) | Q(lease_token__isnull=False),
                status=Status.WAITING,
                lease_token=None,
                started_at=self.started_at or now,
                updated_at=now,
            )
            events.record(self, events.WAITING, now, data)

    def resume(self, now: datetime, data: dict[str, Any]) -> None:
        """waiting -> running (a decision arrived: the reasoner goes on with it)."""
        with transaction.atomic():
            self._transition((Status.WAITING,), status=Status.RUNNING, updated_at=now)
            events.record(self, events.RESUMED, now, data)

    def report_progress(self, now: datetime, progress: int | None = None) -> None:
        """A non-terminal callback (`running`, `processing`, ...): records progress, keeps the status.

        Only `mark_running` (a dispatcher that handed the work to an agent instance) makes an
        execution running: a running row without an instance would look lost to the reaper.
        """
        changes: dict[str, Any] = {"updated_at": now}
        if progress is not None:
            changes["progress"] = progress
        self._transition(ACTIVE, **changes)

    def complete(
        self, result: Any, now: datetime, duration_ms: int | None = None, *, lease: uuid.UUID | None = None
    ) -> None:
        """succeeded with `result` (any JSON); InvalidTransition if terminal (or, with `lease`, not held)."""
        self._finish(Status.SUCCEEDED, now, duration_ms, lease, result=result, error="")

    def fail(
        self,
        error: str,
        now: datetime,
        duration_ms: int | None = None,
        *,
        lease: uuid.UUID | None = None,
        **fields: Any,
    ) -> None:
        """failed with a readable `error`; InvalidTransition if terminal (or, with `lease`, not held)."""
        self._finish(Status.FAILED, now, duration_ms, lease, error=error, **fields)

    def cancel(self, now: datetime, reason: str = "cancelled") -> None:
        """cancelled; raise InvalidTransition if already terminal."""
        self._finish(Status.CANCELLED, now, None, None, error=reason)

    def time_out(self, error: str, now: datetime, duration_ms: int | None = None) -> None:
        self._finish(Status.TIMEOUT, now, duration_ms, None, error=error or "execution timed out")

    def _finish(
        self, status: str, now: datetime, duration_ms: int | None, lease: uuid.UUID | None, **fields: Any
    ) -> None:
        # The status, its event and its webhook delivery row (if one was registered) commit together.
        # With `lease` (a dispatcher recording the agent's answer) only the lease holder may
        # finish it: after the lease ran out another dispatcher may have handed it over again.
        # From the first start to the end, as started_at says (after a resume the agent's own
        # figure covers only its last attempt); the agent's figure only when no start was recorded.
        if self.started_at is not None or duration_ms is None:
            duration_ms = max(0, int((now - (self.started_at or self.created_at)).total_seconds() * 1000))
        if self.started_at is None:
            # Finished before a start was recorded (an inline 200/4xx answer, or a callback that
            # beat the dispatcher's record of the 202): the work began duration_ms ago.
            fields["started_at"] = now - timedelta(milliseconds=duration_ms)
        allowed, held = ((Status.QUEUED,), Q(lease_token=lease)) if lease else (ACTIVE, None)
        changes = {
            "status": status,
            "completed_at": now,
            "duration_ms": duration_ms,
            "lease_token": None,
            "updated_at": now,
            **fields,
        }
        if not self.webhook_registered:
            # No delivery row to write: the change and its event are one statement. An agent's
            # callback is the end of every SDK execution (bench scenario 11: five round trips were two).
            self._transition_and_record(allowed, held, events.TERMINAL_EVENT[status], now, changes)
        else:
            with transaction.atomic():
                self._transition(allowed, held, **changes)
                channels = enqueue_webhooks([self], now)
                events.record(self, events.TERMINAL_EVENT[status], now, notify=channels)
        transaction.on_commit(lambda: metrics.observe_finished([self]))

    def requeue(
        self,
        now: datetime,
        run_at: datetime,
        reason: str,
        lease_token: uuid.UUID | None = None,
        refund: bool = False,
        dropped: bool = False,
    ) -> None:
        """Back to queued under the same ids (a retry or a lost agent); due again at `run_at`.

        `refund` gives the claim's attempt back: the agent never saw the work. `dropped`: the
        agent said it no longer holds the work, so forget its instance (a claim must dispatch it
        again, not wait for that instance as after a heartbeat pause).
        """
        token_filter = Q(lease_token=lease_token) if lease_token else None
        allowed = (Status.QUEUED,) if lease_token else ACTIVE
        extra: dict[str, Any] = {"attempt": F("attempt") - 1} if refund else {}
        if dropped:
            extra["node_instance_id"] = ""
        with transaction.atomic():
            self._transition(
                allowed,
                token_filter,
                **extra,
                status=Status.QUEUED,
                run_at=run_at,
                lease_token=None,
                error=reason,
                updated_at=now,
            )
            data = {"reason": reason, "attempt": self.attempt}
            events.record(self, events.RETRYING, now, data, notify=(events.DISPATCH_CHANNEL,))

    def resume_waiting(self, lease_token: uuid.UUID, now: datetime) -> None:
        """Running again without a new dispatch: the agent instance that holds the work is alive.

        Heartbeats can pause (a blocked event loop) while the process still holds the work, and
        a dispatcher can die between the agent's 202 and recording it; dispatching again would
        run it twice, so wait for that instance's callback instead and give the claim's attempt
        back.
        """
        with transaction.atomic():
            self._transition(
                (Status.QUEUED,),
                Q(lease_token=lease_token),
                status=Status.RUNNING,
                attempt=F("attempt") - 1,
                lease_token=None,
                started_at=self.started_at or now,
                updated_at=now,
            )
            events.record(self, events.STARTED, now, {"resumed": True, "instance_id": self.node_instance_id})

    def reset_for_retry(self, now: datetime) -> None:
        """Staff re-queue of a finished execution: a fresh series of attempts under the same ids."""
        with transaction.atomic():
            self._transition(
                TERMINAL,
                status=Status.QUEUED,
                run_at=now,
                # The attempts so far stay counted (the history of the re-run); it gets a full series more.
                max_attempts=F("attempt") + settings.AGENTFIELD_EXECUTION_MAX_ATTEMPTS,
                result=None,
                started_at=None,
                error="",
                error_details=None,
                completed_at=None,
                duration_ms=None,
                lease_token=None,
                node_instance_id="",
                updated_at=now,
            )
            events.record(self, events.QUEUED, now, {"requeued": True}, notify=(events.DISPATCH_CHANNEL,))


_COMPLETE_MANY = """
    UPDATE executions_execution e
       SET status = 'succeeded', result = v.result, error = '', lease_token = NULL,
           completed_at = %(now)s, updated_at = %(now)s,
           started_at = COALESCE(e.started_at, %(now)s - make_interval(secs => COALESCE(v.duration, 0) / 1000.0)),
           duration_ms = CASE WHEN e.started_at IS NULL AND v.duration IS NOT NULL THEN v.duration
               ELSE GREATEST(0, (EXTRACT(EPOCH FROM (%(now)s - COALESCE(e.started_at, e.created_at))) * 1000)::bigint)
               END
      FROM unnest(%(ids)s::text[], %(tokens)s::uuid[], %(results)s::jsonb[], %(durations)s::bigint[])
           AS v(id, token, result, duration)
     WHERE e.id = v.id AND e.status = 'queued' AND e.lease_token = v.token
    RETURNING e.id, e.run_id, e.node_id, e.target_name, e.status, e.duration_ms
"""


def _complete_params(items: list[tuple[Execution, Any, int | None]], now: datetime) -> dict[str, Any]:
    return {
        "now": now,
        "ids": [execution.id for execution, _, _ in items],
        "tokens": [execution.lease_token for execution, _, _ in items],
        "results": [json.dumps(result) for _, result, _ in items],
        "durations": [duration for _, _, duration in items],
    }


def _completed(
    items: list[tuple[Execution, Any, int | None]], rows: dict[str, tuple], now: datetime
) -> list[Execution]:
    """The executions of `items` the UPDATE changed, brought up to date in memory."""
    finished = []
    for execution, result, _ in items:
        row = rows.get(execution.id)
        if row is None:
            continue
        execution.status, execution.result, execution.error = Status.SUCCEEDED, result, ""
        execution.completed_at, execution.duration_ms, execution.lease_token = now, row[5], None
        finished.append(execution)
    return finished


class ExecutionEvent(models.Model):
    """An append-only lifecycle event: the SSE stream's source and the execution's timeline.

    Ids come from `EventCounter` inside the writing transaction, so they become visible in id
    order and a reader resuming "after id N" can never skip one (a sequence could commit out of
    order).
    """

    id = models.BigIntegerField(primary_key=True)
    execution_id = models.CharField(max_length=64)
    run_id = models.CharField(max_length=255)
    node_id = models.CharField(max_length=255)
    target = models.CharField(max_length=512)
    type = models.CharField(max_length=32)
    status = models.CharField(max_length=16)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["execution_id"], name="event_execution_idx")]  # no LIKE variant

    def __str__(self) -> str:
        return f"{self.id} {self.type} {self.execution_id}"


class EventCounter(models.Model):
    """One row holding the last event id handed out (see ExecutionEvent)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    value = models.BigIntegerField(default=0)


class Schedule(models.Model):
    """A cron schedule that fires an execution of its target at each tick (executions/schedules.py)."""

    class Misfire(models.TextChoices):
        ONCE = "once", "fire once for the ticks missed, then keep to the schedule"
        SKIP = "skip", "skip the ticks missed by more than the grace period"

    name = models.CharField(max_length=255, unique=True)
    target = models.CharField(max_length=512, help_text="node.reasoner or node.skill")
    input = models.JSONField(default=dict, blank=True, help_text="the reasoner's keyword arguments")
    cron = models.CharField(max_length=255, help_text="minute hour day-of-month month day-of-week, or @daily")
    timezone = models.CharField(max_length=64, default="UTC", help_text="IANA name, e.g. Europe/Paris")
    misfire = models.CharField(max_length=8, choices=Misfire.choices, default=Misfire.ONCE)
    priority = models.SmallIntegerField(default=0)
    enabled = models.BooleanField(default=True)
    next_fire_at = models.DateTimeField(null=True, blank=True, help_text="computed from cron and time zone")
    last_fired_at = models.DateTimeField(null=True, blank=True)
    last_execution_id = models.CharField(max_length=64, blank=True, default="")
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        indexes = [
            # Matches the claim in executions/schedules.py: WHERE enabled AND next_fire_at <= now.
            models.Index(fields=["next_fire_at"], name="schedule_due_idx", condition=Q(enabled=True)),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Refuse a cron, time zone, target or input the scheduler could not use."""
        errors = {}
        checks = {"cron": lambda: cron.parse(self.cron), "timezone": lambda: cron.zone(self.timezone)}
        for field, check in checks.items():
            try:
                check()
            except cron.CronError as error:
                errors[field] = str(error)
        from executions.services import parse_target  # the execute route's rule (services imports this module)

        try:
            parse_target(self.target)
        except InvalidTarget:
            errors["target"] = "the target is node.reasoner (or node.skill), with exactly one dot"
        if not isinstance(self.input, dict):
            errors["input"] = "the input is a JSON object (the reasoner's keyword arguments)"
        if errors:
            raise ValidationError(errors)


class FairClock(models.Model):
    """One row holding the highest fair place a claim has reached (executions/fairness.py)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    value = models.BigIntegerField(default=0)


class TraceEntry(models.Model):
    """What the SDK reports about an execution: log lines, step events and notes."""

    class Kind(models.TextChoices):
        LOG = "log", "Log"
        STEP = "step", "Step event"
        NOTE = "note", "Note"

    execution_id = models.CharField(max_length=255, db_index=True)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    level = models.CharField(max_length=16, blank=True, default="")
    message = models.TextField(blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "trace entries"

    def __str__(self) -> str:
        return f"{self.kind} {self.execution_id}: {self.message[:60]}"


class MemoryEntry(models.Model):
    """A scoped key/value checkpoint (`workflow` scope id = the run id)."""

    class Scope(models.TextChoices):
        WORKFLOW = "workflow", "Workflow"
        SESSION = "session", "Session"
        ACTOR = "actor", "Actor"
        GLOBAL = "global", "Global"

    scope = models.CharField(max_length=16, choices=Scope.choices)
    scope_id = models.CharField(max_length=255)
    key = models.CharField(max_length=1024)
    data = models.JSONField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["scope", "scope_id", "key"]
        verbose_name_plural = "memory entries"
        constraints = [
            models.UniqueConstraint(fields=["scope", "scope_id", "key"], name="memory_entry_unique_key"),
        ]

    def __str__(self) -> str:
        return f"{self.scope}/{self.scope_id}/{self.key}"


class MemoryEvent(models.Model):
    """A change of a memory entry, for `@app.memory.on_change` (executions/memory_events.py).

    Only what changed is kept (not the data: the entry holds it), so a checkpoint costs one small
    extra row; rows older than AGENTFIELD_MEMORY_EVENT_RETENTION_HOURS are pruned.
    """

    scope = models.CharField(max_length=16)
    scope_id = models.CharField(max_length=255)
    key = models.CharField(max_length=1024)
    action = models.CharField(max_length=8)  # set | delete
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["scope", "scope_id", "id"], name="memory_event_scope_idx"),
            models.Index(fields=["created_at"], name="memory_event_created_idx"),
        ]


class AgentNotice(models.Model):
    """A message the control plane owes one agent instance (a cancel), sent until it answers or is gone.

    Sent by the dispatchers (executions/notices.py), never from a web request: a notice survives
    restarts of servers, dispatchers and the agent's own network, and is retried with back-off.
    A claim moves `next_attempt_at` forward by a lease, so a dispatcher that dies mid-POST only
    delays the next attempt; a second POST of a cancel is harmless.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"  # the agent answered (it stopped the work, or had none)
        ABANDONED = "abandoned", "Abandoned"  # the instance is gone: its work stopped with it

    class Kind(models.TextChoices):
        CANCEL = "cancel", "Cancel"  # to {base_url}/_internal/executions/{id}/cancel
        APPROVAL = "approval", "Approval decision"  # to the callback URL of the pause

    execution_id = models.CharField(max_length=64)
    node_id = models.CharField(max_length=255)
    instance_id = models.CharField(max_length=255, blank=True, default="")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CANCEL)
    url = models.URLField(max_length=2048, blank=True, default="")  # where an approval decision goes
    body = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    outcome = models.TextField(blank=True, default="")  # the last answer or error, for people
    created_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="notice_due_idx", condition=Q(status="pending")),
            models.Index(fields=["execution_id"], name="notice_execution_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.execution_id} -> {self.node_id}/{self.instance_id or '-'}"

    def target(self, base_url: str) -> str:
        """Where to POST, given the instance's base URL."""
        return self.url or f"{base_url.rstrip('/')}/_internal/executions/{self.execution_id}/cancel"

    def finish(self, status: str, outcome: str, now: datetime) -> bool:
        """delivered or abandoned, once; False if it had already ended."""
        done = AgentNotice.objects.filter(pk=self.pk, status=self.Status.PENDING).update(
            status=status, outcome=outcome[:2000], finished_at=now
        )
        self.status = status if done else self.status
        return bool(done)

    def retry_at(self, when: datetime, outcome: str) -> bool:
        """Due again at `when` (still pending); False if it had ended meanwhile."""
        return bool(
            AgentNotice.objects.filter(pk=self.pk, status=self.Status.PENDING).update(
                next_attempt_at=when, outcome=outcome[:2000]
            )
        )


class Approval(models.Model):
    """One pause of an execution on a human decision (`app.pause(approval_request_id=...)`)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        REQUEST_CHANGES = "request_changes", "Changes requested"
        EXPIRED = "expired", "Expired"

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="approvals", db_constraint=False)
    approval_request_id = models.CharField(max_length=255)
    request_url = models.URLField(max_length=2048, blank=True, default="")
    callback_url = models.URLField(max_length=2048, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    feedback = models.TextField(blank=True, default="")
    response = models.JSONField(null=True, blank=True)
    requested_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["-requested_at"]
        constraints = [
            models.UniqueConstraint(fields=["execution", "approval_request_id"], name="approval_request_unique")
        ]
        indexes = [models.Index(fields=["expires_at"], name="approval_pending_idx", condition=Q(status="pending"))]

    def __str__(self) -> str:
        return f"{self.approval_request_id} ({self.status})"

    def decide(self, status: str, feedback: str, response: Any, by: str, now: datetime) -> bool:
        """pending -> `status`, once; False if it was decided already."""
        done = Approval.objects.filter(pk=self.pk, status=self.Status.PENDING).update(
            status=status, feedback=feedback, response=response, decided_by=by[:255], decided_at=now
        )
        if done:
            self.status, self.feedback, self.response, self.decided_by, self.decided_at = (
                status, feedback, response, by[:255], now,
            )  # fmt: skip
        return bool(done)
