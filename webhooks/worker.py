"""The delivery loop body: reap expired leases, claim due deliveries, post them from a small pool.

`run_once()` never waits for a receiver: posts run in a bounded thread pool and record their own
outcome (under their lease) when they end, and each call claims only as many deliveries as there
are free threads. The dispatcher command calls `run_once()` in its loop and LISTENs on `channel`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from datetime import datetime

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from webhooks import guard, queue, retry, signing, transport
from webhooks.exceptions import StaleLease
from webhooks.models import Delivery

logger = logging.getLogger(__name__)


class DeliveryWorker:
    """Sends webhook deliveries; one per dispatcher process, `concurrency` posts at a time."""

    channel = queue.CHANNEL

    def __init__(
        self,
        worker_id: str,
        concurrency: int = 8,
        *,
        clock: Callable[[], datetime] = timezone.now,
        resolver: transport.Resolver = transport.resolve,
        verify: bool | str = True,
    ) -> None:
        self.worker_id = worker_id
        self.concurrency = max(1, concurrency)
        self._clock = clock
        self._resolver = resolver
        self._verify = verify
        self._executor = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="webhook")
        self._running: set[Future[None]] = set()

    @property
    def in_flight(self) -> int:
        """Posts started by this worker and not yet recorded."""
        return sum(1 for future in self._running if not future.done())

    def run_once(self, now: datetime | None = None) -> bool:
        """Reap expired leases and claim due deliveries into free threads; True if anything happened."""
        now = now or self._clock()
        allowed = guard.parse_networks(settings.AGENTFIELD_WEBHOOK_ALLOWED_CIDRS)
        finished = self._collect()
        reaped = queue.reap_expired(now)
        claimed = queue.claim_due(self.worker_id, now, self.concurrency - len(self._running))
        for delivery in claimed:
            self._running.add(self._executor.submit(self._deliver, delivery, allowed))
        return bool(finished or reaped or claimed)

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every post started so far is recorded (at most `timeout` s); True if all were."""
        wait_for(self._running, timeout)
        self._collect()
        return not self._running

    def close(self, timeout: float | None = None) -> None:
        """Let posts in progress finish (up to `timeout` s), then stop the thread pool."""
        self.drain(timeout)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _collect(self) -> int:
        done = {future for future in self._running if future.done()}
        self._running -= done
        for future in done:
            if future.exception() is not None:
                # The lease expires and the reaper retries the delivery; nothing is lost.
                logger.error("webhook delivery crashed", exc_info=future.exception())
        return len(done)

    def _deliver(self, delivery: Delivery, allowed: tuple[guard.IPNetwork, ...]) -> None:
        """Post one claimed delivery and record the outcome, unless its lease was taken over meanwhile."""
        close_old_connections()
        try:
            started = self._clock()
            result = self._post(delivery, started, allowed)
            self._record(delivery, result, started)
        except StaleLease as exc:
            logger.warning("%s", exc)
        finally:
            close_old_connections()

    def _post(
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
            secret=webhook.secret,
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
        if decision.outcome == retry.DELIVERED:
            delivery.mark_delivered(token, result, started, now)
        elif decision.outcome == retry.RETRY:
            delivery.retry_at(token, result, started, decision.next_attempt_at)
        else:
            delivery.mark_failed(token, result, started, now, decision.reason)
        logger.info(
            "webhook %s (execution %s) attempt %d: %s (%s)",
            delivery.id,
            delivery.attempt_count,
            delivery.execution_id,
            decision.outcome,
            result.error_class or result.status_code,
        )
