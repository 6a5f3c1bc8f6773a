"""Crash test: SIGKILL the delivery worker mid-POST, start a new one; nothing is lost or doubled."""

from __future__ import annotations

import signal
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.processes import wait_until
from tests.webhooks import factories
from webhooks.models import Delivery

pytestmark = pytest.mark.e2e

SETTINGS = {
    "AGENTFIELD_WEBHOOK_TIMEOUT_SECONDS": 5,
    "AGENTFIELD_WEBHOOK_LEASE_MARGIN_SECONDS": 1,
    "AGENTFIELD_WEBHOOK_RETRY_BASE_SECONDS": 0.5,
    "AGENTFIELD_DISPATCHER_POLL_SECONDS": 0.2,
}


def test_a_worker_killed_mid_post_loses_nothing_and_a_new_one_finishes_the_work(delivery_worker, receiver):
    now = timezone.now()
    receiver.hold("/held")
    held = factories.delivery(receiver.url("/held"), now - timedelta(seconds=1), secret="s3cr3t")
    others = [factories.delivery(receiver.url("/hook"), now, secret="s3cr3t") for _ in range(4)]
    first = delivery_worker(**SETTINGS, AGENTFIELD_WEBHOOK_CONCURRENCY=1)
    try:
        assert receiver.holding.wait(30), first.output()
        first.signal(signal.SIGKILL)  # mid-POST: the receiver still holds the request open
        first.popen.wait(10)
        receiver.release()
        assert Delivery.objects.get(pk=held.pk).status == Delivery.Status.IN_FLIGHT
        assert {Delivery.objects.get(pk=d.pk).status for d in others} == {Delivery.Status.PENDING}

        delivery_worker(**SETTINGS, AGENTFIELD_WEBHOOK_CONCURRENCY=4)
        wait_until(
            lambda: set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.DELIVERED},
            timeout=60,
            message="every delivery delivered after the restart",
        )
    finally:
        receiver.release()

    seen = Counter(request.headers["webhook-id"] for request in receiver.received)
    assert all(seen[str(d.id)] == 1 for d in others), seen
    # The killed attempt went out once and again after its lease expired: same id, same bytes.
    assert seen[str(held.id)] == 2
    held_bodies = {request.body for request in receiver.received if request.path == "/held"}
    assert held_bodies == {bytes(held.body)}
    held.refresh_from_db()
    assert held.attempt_count == 2
    assert [(a.number, a.error_class, a.succeeded) for a in held.attempts.order_by("number")] == [
        (1, "lease_expired", False),
        (2, "", True),
    ]


def test_a_worker_frozen_past_its_lease_cannot_overwrite_the_newer_outcome(delivery_worker, receiver):
    receiver.hold("/held")
    held = factories.delivery(receiver.url("/held"), timezone.now(), secret="s3cr3t")
    frozen = delivery_worker(**SETTINGS, AGENTFIELD_WEBHOOK_CONCURRENCY=1)
    try:
        assert receiver.holding.wait(30), frozen.output()
        frozen.signal(signal.SIGSTOP)  # a GC pause, a stuck VM: alive, but silent past its lease
        receiver.release()
        delivery_worker(**SETTINGS)
        wait_until(
            lambda: Delivery.objects.get(pk=held.pk).status == Delivery.Status.DELIVERED,
            timeout=60,
            message="the second worker to deliver after the frozen one's lease expired",
        )
        frozen.signal(signal.SIGCONT)
        wait_until(lambda: "no longer holds it" in frozen.output(), timeout=30, message="the stale outcome refused")
    finally:
        frozen.signal(signal.SIGCONT)
    held.refresh_from_db()
    assert held.status == Delivery.Status.DELIVERED and held.attempt_count == 2
    assert [(a.number, a.error_class) for a in held.attempts.order_by("number", "id")] == [
        (1, "lease_expired"),
        (2, ""),
    ]
