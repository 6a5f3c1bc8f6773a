"""Notices owed to agent instances (a cancel, an approval decision), delivered durably by the dispatchers.

A cancel used to be one POST from the web request, 5 s timeout, no retry: when it failed the
agent kept working on a cancelled execution. Now cancelling writes an `AgentNotice` in the same
transaction as the status change, and every `run_dispatcher` runs `NoticeWorker`, which posts it
to `{instance base_url}/_internal/executions/{id}/cancel` (the SDK's route: it interrupts the
reasoner and answers `{"cancelled": bool}`) until the instance answers, with back-off, or until
the instance is gone (shut down, or silent past AGENTFIELD_LOST_EXECUTION_GRACE_SECONDS): a dead
process's work stopped with it.

`run_once()` never waits for an agent: posts run in a small pool and only do HTTP; outcomes are
recorded from the loop's thread on the next round, like webhook deliveries.
"""

from __future__ import annotations

import logging
import queue as stdlib_queue
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from executions.models import AgentNotice, Execution
from nodes import client, liveness
from nodes.client import AgentCallResult
from nodes.models import NodeInstance

CHANNEL = "agentfield_notices"
TIMEOUT_SECONDS = 5.0
LEASE = timedelta(seconds=TIMEOUT_SECONDS * 3)  # a claim's POST is over (or its dispatcher dead) by then
BACKOFF_CAP_SECONDS = 30.0
GIVE_UP_AFTER = timedelta(days=1)

logger = logging.getLogger(__name__)


def owe_cancel(execution: Execution, now: datetime, due: datetime | None = None) -> AgentNotice | None:
    """Queue a cancel for the instance `execution` was handed to (call in the cancel's transaction)."""
    return owe(execution, AgentNotice.Kind.CANCEL, now, due=due)


def owe(
    execution: Execution,
    kind: str,
    now: datetime,
    *,
    url: str = "",
    body: dict | None = None,
    due: datetime | None = None,
) -> AgentNotice | None:
    """Queue a notice to the instance holding `execution` (None if it was never handed to one)."""
    if not execution.node_instance_id:
        return None
    notice = AgentNotice.objects.create(
        execution_id=execution.id,
        node_id=execution.node_id,
        instance_id=execution.node_instance_id,
        kind=kind,
        url=url,
        body=body or {},
        next_attempt_at=due or now,
        created_at=now,
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [CHANNEL])  # delivered at commit
    return notice


def claim_due(now: datetime, limit: int) -> list[AgentNotice]:
    """Lease up to `limit` due notices (one short transaction; the POSTs happen after it)."""
    if limit <= 0:
        return []
    with transaction.atomic():
        ids = list(
            AgentNotice.objects.select_for_update(skip_locked=True)
            .filter(status=AgentNotice.Status.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at")
            .values_list("id", flat=True)[:limit]
        )
        if not ids:
            return []
        AgentNotice.objects.filter(id__in=ids).update(next_attempt_at=now + LEASE, attempts=F("attempts") + 1)
    return list(AgentNotice.objects.filter(id__in=ids).order_by("id"))


def backoff_seconds(attempts: int) -> float:
    """1, 2, 4, ... capped at 30 s: an agent that is busy or restarting gets the notice soon after."""
    return min(BACKOFF_CAP_SECONDS, 2.0 ** max(0, attempts - 1))


def delivered(notice: AgentNotice, result: AgentCallResult) -> bool:
    """Whether the agent took the notice.

    A cancel: any answer (it stopped the work, or, 404 or `cancelled: false`, had none to stop).
    A decision: a 2xx saying `resolved: true`, i.e. a paused reasoner received it; `resolved: false`
    means nobody waits for it there yet (a reasoner restarting): it is sent again.
    """
    code = result.status_code
    if notice.kind == AgentNotice.Kind.APPROVAL:
        return (
            code is not None
            and 200 <= code < 300
            and isinstance(result.body, dict)
            and result.body.get("resolved") is True
        )
    return code is not None and (200 <= code < 300 or code == 404)


def live_instance(notice: AgentNotice, now: datetime) -> NodeInstance | None:
    """The instance to tell, unless it is gone (its row replaced, shut down, or silent too long)."""
    instance = NodeInstance.objects.filter(node_id=notice.node_id, instance_id=notice.instance_id).first()
    # The liveness rule with a longer window: a notice outlasts a few missed heartbeats.
    window = settings.AGENTFIELD_LOST_EXECUTION_GRACE_SECONDS
    if instance is None or not liveness.is_alive(instance.last_heartbeat_at, instance.shutdown_at, now, window):
        return None
    return instance


class NoticeWorker:
    """Posts due notices from a small pool; one per dispatcher process."""

    channel = CHANNEL

    def __init__(
        self,
        concurrency: int = 4,
        *,
        on_wake: Callable[[], None] | None = None,
        clock: Callable[[], datetime] = timezone.now,
    ) -> None:
        self.concurrency = concurrency
        self._on_wake = on_wake or (lambda: None)
        self._clock = clock
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="agent-notice")
        self._done: stdlib_queue.SimpleQueue[tuple[AgentNotice, AgentCallResult]] = stdlib_queue.SimpleQueue()
        self._unrecorded: list[tuple[AgentNotice, AgentCallResult]] = []
        self._in_flight = 0
        self._next_expiry_sweep = datetime.min.replace(tzinfo=UTC)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def run_once(self) -> bool:
        did_work = self._record_finished()
        now = self._clock()
        if now >= self._next_expiry_sweep:  # approvals past their expiry get `expired` (at most once a second)
            from executions import approvals

            expired = approvals.expire_due(now)
            self._next_expiry_sweep = now if expired else now + timedelta(seconds=1)
            did_work |= bool(expired)
        for notice in claim_due(now, self.concurrency - self._in_flight):
            did_work = True
            instance = live_instance(notice, now)
            if instance is None:
                notice.finish(AgentNotice.Status.ABANDONED, "the agent instance is gone; its work stopped with it", now)
                continue
            self._in_flight += 1
            self._pool.submit(self._post, notice, notice.target(instance.base_url))
        return did_work

    def close(self) -> None:
        """Stop the pool; a notice still being posted is sent again after its lease."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _post(self, notice: AgentNotice, url: str) -> None:
        try:
            result = client.post_json(
                url, notice.body, {"X-Execution-ID": notice.execution_id}, timeout=TIMEOUT_SECONDS
            )
        except Exception as exc:  # noqa: BLE001 - a bug here must not lose the outcome slot
            logger.exception("agent notice post crashed notice=%s", notice.pk)
            result = AgentCallResult(None, error=f"dispatcher error: {exc.__class__.__name__}")
        self._done.put((notice, result))
        self._on_wake()

    def _record_finished(self) -> bool:
        did = False
        while True:
            if not self._unrecorded:
                try:
                    self._unrecorded.append(self._done.get_nowait())
                except stdlib_queue.Empty:
                    return did
            notice, result = self._unrecorded[0]
            self._record(notice, result, self._clock())  # raises while the database is away: kept for later
            self._unrecorded.pop(0)
            self._in_flight -= 1
            did = True

    def _record(self, notice: AgentNotice, result: AgentCallResult, now: datetime) -> None:
        answer = result.describe()
        if delivered(notice, result):
            notice.finish(AgentNotice.Status.DELIVERED, f"agent answered {answer}", now)
            logger.info("agent told to cancel execution=%s answer=%s", notice.execution_id, answer)
        elif now - notice.created_at > GIVE_UP_AFTER:
            notice.finish(AgentNotice.Status.ABANDONED, f"gave up after {notice.attempts} attempts: {answer}", now)
        else:
            notice.retry_at(now + timedelta(seconds=backoff_seconds(notice.attempts)), answer)
