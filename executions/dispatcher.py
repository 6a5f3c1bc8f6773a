"""The execution dispatcher: claim due executions, hand them to agents, record what happened.

The database is only touched from the loop's thread; agent calls run in a bounded thread pool
so one slow agent cannot stall the others, and their outcomes come back through a queue.
"""

from __future__ import annotations

import itertools
import logging
import queue as stdlib_queue
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections
from django.db.models import Q
from django.utils import timezone
from rest_framework.exceptions import ParseError

from agentfield_project import metrics
from agentfield_project.parsers import check_storable
from executions import events, notices, queue, recovery, retry
from executions.exceptions import InvalidTransition
from executions.models import Execution
from executions.queue import Claimed
from nodes import client
from nodes.client import AgentCallResult
from nodes.models import Node

logger = logging.getLogger(__name__)

USAGE_KEY = "__agentfield_usage__"
RECOVERY_INTERVAL_SECONDS = 1.0
LIMITS_TTL_SECONDS = 1.0  # an edit of a node's limits reaches every dispatcher within this
STARTUP_GRACE_SECONDS = 15.0
MAX_RECORD_BATCH = 500


def agent_headers(claimed: Claimed) -> dict[str, str]:
    """The headers an SDK agent reads: its execution id (which makes it answer 202) and context."""
    execution = claimed.execution
    headers = {
        "X-Execution-ID": execution.id,
        "X-Run-ID": execution.run_id,
        "X-Workflow-ID": execution.run_id,
        "X-Parent-Execution-ID": execution.parent_execution_id or "",
        "X-Session-ID": execution.session_id,
        "X-Actor-ID": execution.actor_id,
        "X-AgentField-Attempt": str(execution.attempt),
    }
    return {name: value for name, value in headers.items() if value}


def call_agent(claimed: Claimed, timeout: float) -> AgentCallResult:
    """POST the bare input to `{base_url}/reasoners/{name}` (or /skills/{name})."""
    execution = claimed.execution
    kind = "skills" if execution.target_type == "skill" else "reasoners"
    url = f"{claimed.base_url.rstrip('/')}/{kind}/{execution.target_name}"
    return client.post_json(url, execution.input, agent_headers(claimed), timeout)


def record_outcome(claimed: Claimed, result: AgentCallResult, now: datetime) -> str:
    """Apply the agent's answer to the execution; return what was done (for logs and tests)."""
    execution = claimed.execution
    token = execution.lease_token
    try:
        if result.accepted:
            try:
                execution.mark_running(token, claimed.instance_id, now)
            except InvalidTransition:
                _tell_if_cancelled([execution], now)
                raise
            return "running"
        if result.ok:
            return _succeed(execution, result, now)
        if not retry.is_retryable(result.status_code):
            execution.fail(f"agent rejected the execution: {result.describe()}", now, result.duration_ms, lease=token)
            return "failed"
        if result.status_code is None and _just_registered(claimed, now) and "refused" in result.error:
            # The SDK registers before its HTTP server accepts connections: not the agent's fault.
            execution.requeue(
                now, now + timedelta(seconds=0.5), result.describe(), execution.lease_token, refund=True, dropped=True
            )
            return "not_ready"
        return _retry_or_fail(execution, result.describe(), now)
    except InvalidTransition:
        # A callback, a cancel or the reaper got there first: theirs is the newer state.
        return "superseded"


def record_outcomes(finished: list[tuple[Claimed, AgentCallResult]], now: datetime) -> dict[str, int]:
    """Record many outcomes: accepted and succeeded ones in one transaction each, the rest one by one."""
    accepted, succeeded, others = [], [], []
    for claimed, result in finished:
        if result.accepted:
            accepted.append((claimed.execution, claimed.instance_id))
        elif result.ok and _storable(body := _strip_usage(result.body)):
            succeeded.append((claimed.execution, body, result.duration_ms))
        else:
            others.append((claimed, result))
    counts = {"running": 0, "succeeded": 0}
    if accepted:
        moved = Execution.mark_running_many(accepted, now)
        counts["running"] = len(moved)
        if len(moved) < len(accepted):
            _tell_if_cancelled([execution for execution, _ in accepted if execution not in moved], now)
    if succeeded:
        counts["succeeded"] = len(Execution.complete_many(succeeded, now))
    for claimed, result in others:
        outcome = record_outcome(claimed, result, now)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def _tell_if_cancelled(accepted: list[Execution], now: datetime) -> None:
    """An agent took work that was cancelled during the hand-over: tell it now, not at the lease's end."""
    # The claim recorded the instance (node_instance_id) before the POST; the cancel left it.
    for execution in Execution.objects.filter(pk__in=[e.pk for e in accepted], status="cancelled"):
        notices.owe_cancel(execution, now)


def _strip_usage(body: Any) -> Any:
    if isinstance(body, dict) and USAGE_KEY in body:
        return {key: value for key, value in body.items() if key != USAGE_KEY}
    return body


def _storable(body: Any) -> bool:
    try:
        check_storable(body)
    except ParseError:
        return False
    return True


def _just_registered(claimed: Claimed, now: datetime) -> bool:
    return now - claimed.node_since < timedelta(seconds=STARTUP_GRACE_SECONDS)


def _succeed(execution, result: AgentCallResult, now: datetime) -> str:
    body = _strip_usage(result.body)
    try:
        check_storable(body)
    except ParseError as exc:
        execution.fail(
            f"agent returned a result that cannot be stored: {exc.detail}",
            now,
            result.duration_ms,
            lease=execution.lease_token,
        )
        return "failed"
    execution.complete(body, now, result.duration_ms, lease=execution.lease_token)
    return "succeeded"


def _retry_or_fail(execution, reason: str, now: datetime) -> str:
    if execution.attempt >= execution.max_attempts:
        execution.fail(f"{reason} (gave up after {execution.attempt} attempts)", now, lease=execution.lease_token)
        return "failed"
    run_at = retry.next_run_at(
        execution.attempt,
        now,
        base=settings.AGENTFIELD_EXECUTION_RETRY_BASE_SECONDS,
        cap=settings.AGENTFIELD_EXECUTION_RETRY_CAP_SECONDS,
    )
    # The agent did not take the work: the next claim must dispatch it, not wait for this instance.
    execution.requeue(now, run_at, reason, lease_token=execution.lease_token, dropped=True)
    return "retrying"


class ExecutionDispatcher:
    """One dispatcher process's execution loop: `run_once()` does one round of work."""

    channel = events.DISPATCH_CHANNEL

    def __init__(self, worker_id: str, concurrency: int | None = None, on_wake=None, heard=None) -> None:
        """`on_wake` is called when an agent call ends (its outcome is to be recorded); `heard()` counts
        the notifications of new due work (Wakeup.heard); without it every round may claim."""
        self.worker_id = worker_id
        self.concurrency = concurrency or settings.AGENTFIELD_DISPATCHER_CONCURRENCY
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="agent-call")
        self._done: stdlib_queue.SimpleQueue[tuple[Claimed, AgentCallResult]] = stdlib_queue.SimpleQueue()
        # Outcomes taken off `_done` but not recorded yet (the database may be away): kept in
        # order until a round records them. Recording is idempotent: every verb is fenced.
        self._unrecorded: list[tuple[Claimed, AgentCallResult]] = []
        self._in_flight = 0
        self._on_wake = on_wake or (lambda: None)
        self._next_recovery = 0.0
        self._limits: dict[str, tuple[int | None, dict[str, int]]] = {}
        self._limits_read_at = float("-inf")
        self._heard = heard or itertools.count().__next__
        self._heard_at_claim: int | None = None
        self._claimed_at = float("-inf")
        self._left_behind = True  # the last claim may have left due work in the queue

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def run_once(self, now: datetime | None = None, claim: bool = True) -> bool:
        """Record finished calls, recover lost executions, claim and start new ones."""
        close_old_connections()
        did_work = self._record_finished()
        did_work |= self._recover(now or timezone.now())
        if claim and self._in_flight < self.concurrency and self._may_find_work():
            did_work |= self._claim_and_start(now or timezone.now())
        return did_work

    def _may_find_work(self) -> bool:
        """Whether a claim may find due work now; else the round only records outcomes.

        A claim that took fewer rows than it asked for saw the queue empty: until new work is
        announced (NOTIFY) or the poll interval has passed (work made due by the clock: a retry's
        back-off, a lease that ran out), claiming again when a call ends finds nothing. Under load
        those empty claims were half of all claims (bench scenario 3), each a round trip.
        """
        heard = self._heard()
        if self._left_behind or heard != self._heard_at_claim:
            return True
        return time.monotonic() - self._claimed_at >= settings.AGENTFIELD_DISPATCHER_POLL_SECONDS / 2

    def drain(self, timeout: float) -> None:
        """Wait (bounded) for in-flight agent calls and record their outcomes."""
        deadline = time.monotonic() + timeout
        while self._in_flight and time.monotonic() < deadline:
            try:
                recorded = self._record_finished()
            except Exception as error:  # noqa: BLE001 - what is not recorded is re-claimed after its lease
                logger.warning("could not record outcomes while stopping: %s", error.__class__.__name__)
                break
            if not recorded:
                time.sleep(0.05)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _claim_and_start(self, now: datetime) -> bool:
        timeout = settings.AGENTFIELD_AGENT_CALL_TIMEOUT_SECONDS
        lease = max(settings.AGENTFIELD_DISPATCH_LEASE_SECONDS, timeout + 1)
        terms = {
            "lease_seconds": lease,
            "alive_seconds": settings.AGENTFIELD_NODE_LIVENESS_SECONDS,
            "lease_grace": timedelta(seconds=settings.AGENTFIELD_DISPATCH_LEASE_GRACE_SECONDS),
        }
        limited = self._limited_nodes()
        heard, started = self._heard(), time.monotonic()  # read first: news during the claim is news
        free = self.concurrency - self._in_flight
        claimed = queue.claim(self.worker_id, now, free, limited=limited, **terms)
        due_limited = queue.due_among(now, list(limited), terms["lease_grace"])
        # Work is left behind when the free slots were the bound, or a limited node has due work
        # (it may be waiting for one of its own slots, which a call ending frees).
        self._heard_at_claim, self._claimed_at = heard, started
        self._left_behind = len(claimed) >= free or bool(due_limited)
        for node in due_limited:
            free = self.concurrency - self._in_flight - len(claimed)
            claimed += queue.claim_limited(self.worker_id, now, node, limited[node], free, **terms)
        resumed, exhausted = [], []
        for item in claimed:
            if item.may_run_there and self._runs_there(item):
                resumed.append(item)
            elif item.execution.attempt > item.execution.max_attempts:
                # Claimed again and again without an outcome: dispatchers keep dying on it.
                exhausted.append(item)
            else:
                self._in_flight += 1
                metrics.DISPATCHES.labels(item.execution.target).inc()
                if item.execution.attempt == 1:
                    metrics.DISPATCH_LATENCY.observe(max(0.0, (now - item.execution.run_at).total_seconds()))
                self._pool.submit(self._call, item, timeout)
        # After the calls are started: should the database fail here, only these leases lapse.
        for item in resumed:
            self._resume(item, now)
        for item in exhausted:
            self._give_up(item, now)
        return bool(claimed)

    def _limited_nodes(self) -> dict[str, tuple[int | None, dict[str, int]]]:
        """Nodes with concurrency limits and their limits (read at most once a second)."""
        if time.monotonic() >= self._limits_read_at + LIMITS_TTL_SECONDS:
            rows = Node.objects.filter(Q(max_concurrency__isnull=False) | ~Q(target_concurrency={}))
            self._limits = {
                node.id: (node.max_concurrency, node.target_concurrency or {})
                for node in rows.only("id", "max_concurrency", "target_concurrency")
            }
            self._limits_read_at = time.monotonic()
        return self._limits

    def _runs_there(self, item: Claimed) -> bool:
        """Whether the instance the execution was handed to before is running it, as far as we can tell.

        After recovery re-queued it (the instance went silent, then came back) it was running
        there: wait for its callback. After a dispatcher died mid-hand-off the POST may or may not
        have arrived; the SDK reports every start (a step event), so the work is at the instance
        only if it said so since that hand-off. An agent that reports nothing gets it again.
        """
        if not item.unrecorded:
            return True
        return item.previous_dispatch is not None and queue.started_since(item.execution.id, item.previous_dispatch)

    def _resume(self, item: Claimed, now: datetime) -> None:
        try:
            item.execution.resume_waiting(item.execution.lease_token, now)
        except InvalidTransition:
            pass

    def _give_up(self, item: Claimed, now: datetime) -> None:
        execution = item.execution
        try:
            execution.fail(
                f"dispatch was interrupted {execution.attempt - 1} times; giving up", now, lease=execution.lease_token
            )
        except InvalidTransition:
            pass

    def _call(self, item: Claimed, timeout: float) -> None:
        try:
            result = call_agent(item, timeout)
        except Exception as exc:  # noqa: BLE001 - a bug here must not lose the outcome slot
            logger.exception("agent call crashed execution=%s", item.execution.id)
            result = AgentCallResult(None, error=f"dispatcher error: {exc.__class__.__name__}")
        metrics.AGENT_CALLS.labels(metrics.call_outcome(result.status_code)).observe((result.duration_ms or 0) / 1000)
        self._done.put((item, result))
        self._on_wake()

    def _record_finished(self) -> bool:
        while len(self._unrecorded) < MAX_RECORD_BATCH:
            try:
                self._unrecorded.append(self._done.get_nowait())
            except stdlib_queue.Empty:
                break
        if not self._unrecorded:
            return False
        batch = self._unrecorded[:MAX_RECORD_BATCH]
        counts = record_outcomes(batch, timezone.now())  # raises while the database is away
        del self._unrecorded[: len(batch)]
        self._in_flight -= len(batch)
        for outcome, count in counts.items():
            metrics.OUTCOMES.labels(outcome).inc(count)
        logger.debug("recorded outcomes %s", counts)
        return True

    def _recover(self, now: datetime) -> bool:
        if time.monotonic() < self._next_recovery:
            return False
        self._next_recovery = time.monotonic() + RECOVERY_INTERVAL_SECONDS
        handled = recovery.recover(
            now,
            alive_seconds=settings.AGENTFIELD_NODE_LIVENESS_SECONDS,
            grace_seconds=settings.AGENTFIELD_LOST_EXECUTION_GRACE_SECONDS,
        )
        if handled:
            logger.info("recovered %s executions of lost agents", handled)
        return bool(handled)
