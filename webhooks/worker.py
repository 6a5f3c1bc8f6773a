"""The delivery loop body: reap expired leases, claim due deliveries, post them from a small pool.

`run_once()` never waits for a receiver. Posts run in a bounded thread pool and only do HTTP; the
database is touched from the loop's thread alone, which records each outcome under its lease on
the next `run_once()` (`on_wake` tells the loop one is ready). Each call claims only as many
deliveries as there are free threads. The dispatcher command calls `run_once()` in its loop and
LISTENs on `channel`.
"""

from __future__ import annotations

import logging
import queue as stdlib_queue
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone

from agentfield_project import metrics
from agentfield_project import netguard as guard
from webhooks import crypto, queue, retry, signing, transport
from webhooks.exceptions import StaleLease
from webhooks.models import Delivery

REAP_INTERVAL = timedelta(seconds=1)

logger = logging.getLogger(__name__)


class DeliveryWorker:
    """Sends webhook deliveries; one per dispatcher process, `concurrency` posts at a time."""

    channel = queue.CHANNEL

    def __init__(
        self,
        worker_id: str,
        concurrency: int = 8,
        *,
        on_wake: Callable[[], None] | None = None,
        clock: Callable[[], datetime] = timezone.now,
        resolver: transport.Resolver = transport.resolve,
        verify: bool | str = True,
    ) -> None:
        self.worker_id = worker_id
        self.concurrency = max(1, concurrency)
        self._on_wake = on_wake or (lambda: None)
        self._clock = clock
        self._resolver = resolver
        self._verify = verify
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="webhook-post")
        self._done: stdlib_queue.SimpleQueue[tuple[Delivery, datetime, transport.DeliveryResult]]
        self._done = stdlib_queue.SimpleQueue()
        # An outcome taken off `_done` whose recording failed (the database was away): tried
        # again first on the next round, so a database restart never costs a duplicate POST.
        self._unrecorded: list[tuple[Delivery, datetime, transport.DeliveryResult]] = []
        self._in_flight = 0
        self._next_reap = datetime.min.replace(tzinfo=UTC)

    @property
    def in_flight(self) -> int:
        """Posts started by this worker whose outcome is not recorded yet."""
        return self._in_flight

    def run_once(self, now: datetime | None = None) -> bool:
        """Record finished posts, reap expired leases, claim due deliveries into free threads."""
        allowed = guard.parse_networks(settings.AGENTFIELD_WEBHOOK_ALLOWED_CIDRS)
        did_work = self._record_finished()
        now = now or self._clock()
        # Expired leases are rare (a dead dispatcher): look for them at most once a second, not on
        # every round of a busy execution loop.
        if now >= self._next_reap:
            reaped = bool(queue.reap_expired(now))
            self._next_reap = now if reaped else now + REAP_INTERVAL
            did_work |= reaped
        if self._in_flight >= self.concurrency:
            return did_work
        claimed = queue.claim_due(self.worker_id, now, self.concurrency - self._in_flight)
        for delivery in claimed:
            self._in_flight += 1
            self._pool.submit(self._post, delivery, allowed)
        return did_work or bool(claimed)

    def drain(self, timeout: float) -> bool:
        """Wait (at most `timeout` s) for posts in progress and record them; True if none is left."""
        deadline = time.monotonic() + timeout
        while self._in_flight and time.monotonic() < deadline:
            try:
                self._record_one(timeout=min(0.5, max(0.01, deadline - time.monotonic())))
            except Exception as error:  # noqa: BLE001 - an unrecorded post is retried after its lease
                logger.warning("could not record webhook outcomes while stopping: %s", error.__class__.__name__)
                break
        return self._in_flight == 0

    def close(self, timeout: float) -> None:
        """Drain, then stop the thread pool (a post still running is retried after its lease)."""
        self.drain(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _record_finished(self) -> bool:
        did = False
        while self._record_one(timeout=None):
            did = True
        return did

    def _record_one(self, timeout: float | None) -> bool:
        if not self._unrecorded:
            try:
                self._unrecorded.append(self._done.get(timeout=timeout) if timeout else self._done.get_nowait())
            except stdlib_queue.Empty:
                return False
        delivery, started, result = self._unrecorded[0]
        try:
            self._record(delivery, result, started)  # raises while the database is away
        except StaleLease as exc:
            logger.warning("%s", exc)  # the reaper handed this delivery on; the newer state stands
        self._unrecorded.pop(0)
        self._in_flight -= 1
        return True

    def _post(self, delivery: Delivery, allowed: tuple[guard.IPNetwork, ...]) -> None:
        """In a pool thread: send one attempt and hand its outcome to the loop (HTTP only, no database)."""
        started = self._clock()
        try:
            result = self._send(delivery, started, allowed)
        except Exception as exc:  # noqa: BLE001 - a bug here must not lose the outcome slot
            logger.exception("webhook post crashed delivery=%s", delivery.id)
            result = transport.DeliveryResult(None, "connect", f"worker error: {exc.__class__.__name__}", 0)
        self._done.put((delivery, started, result))
        self._on_wake()

    def _send(
        self, delivery: Delivery, started: datetime, allowed: tuple[guard.IPNetwork, ...]
    ) -> transport.DeliveryResult:
        webhook = delivery.webhook
        body = bytes(delivery.body)
        headers = signing.delivery_headers(
            delivery_id=str(delivery.id),
            event=delivery.event,
            attempt=delivery.attempt_count,
            timestamp=int(started.timestamp()),
            body=body,
            secret=crypto.decrypt(webhook.secret),
            extra=webhook.headers,
        )
        return transport.post(
            webhook.url,
            body,
            headers,
            timeout=settings.AGENTFIELD_WEBHOOK_TIMEOUT_SECONDS,
            response_cap=settings.AGENTFIELD_WEBHOOK_RESPONSE_CAP_BYTES,
            allowed=allowed,
            resolver=self._resolver,
            verify=self._verify,
        )

    def _record(self, delivery: Delivery, result: transport.DeliveryResult, started: datetime) -> None:
        now = self._clock()
        schedule = retry.Schedule(
            max_attempts=delivery.max_attempts,
            base_seconds=settings.AGENTFIELD_WEBHOOK_RETRY_BASE_SECONDS,
            cap_seconds=settings.AGENTFIELD_WEBHOOK_RETRY_CAP_SECONDS,
        )
        decision = retry.decide(result.status_code, delivery.attempt_count, now, schedule, result.retry_after)
        token = delivery.lease_token
        metrics.WEBHOOK_ATTEMPTS.labels(decision.outcome).inc()
        if decision.outcome == retry.DELIVERED:
            delivery.mark_delivered(token, result, started, now)
        elif decision.outcome == retry.RETRY:
            delivery.retry_at(token, result, started, decision.next_attempt_at)
        else:
            delivery.mark_failed(token, result, started, now, decision.reason)
        logger.info(
            "webhook %s (execution %s) attempt %d: %s (%s)",
            delivery.id,
            delivery.execution_id,
            delivery.attempt_count,
            decision.outcome,
            result.error_class or result.status_code,
        )
