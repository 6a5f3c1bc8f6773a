"""Claiming and reaping deliveries in PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import psycopg
import pytest
from django.db import connection

from tests.processes import database_url
from tests.webhooks import factories
from webhooks import queue
from webhooks.models import Delivery, DeliveryAttempt

URL = "http://hooks.example.com/hook"


@pytest.mark.django_db
def test_claim_marks_due_rows_in_flight_under_one_fresh_lease(now, settings):
    settings.AGENTFIELD_WEBHOOK_TIMEOUT_SECONDS = 10
    settings.AGENTFIELD_WEBHOOK_LEASE_MARGIN_SECONDS = 5
    first = factories.delivery(URL, now - timedelta(seconds=2))
    second = factories.delivery(URL, now - timedelta(seconds=1))
    later = factories.delivery(URL, now + timedelta(seconds=1))
    claimed = queue.claim_due("w1", now, limit=10)
    assert [d.pk for d in claimed] == [first.pk, second.pk]  # oldest due first; `later` is not due
    for delivery in claimed:
        assert delivery.status == Delivery.Status.IN_FLIGHT
        assert delivery.attempt_count == 1
        assert delivery.claimed_by == "w1" and delivery.claimed_at == now
        assert delivery.lease_expires_at == now + timedelta(seconds=15)
        assert delivery.webhook.url == URL
    assert claimed[0].lease_token == claimed[1].lease_token is not None
    assert Delivery.objects.get(pk=later.pk).status == Delivery.Status.PENDING
    assert queue.claim_due("w2", now, limit=10) == []


@pytest.mark.django_db
def test_claim_respects_the_limit_and_skips_settled_rows(now):
    deliveries = [factories.delivery(URL, now) for _ in range(3)]
    Delivery.objects.filter(pk=deliveries[0].pk).update(status=Delivery.Status.DELIVERED)
    assert queue.claim_due("w1", now, limit=0) == []
    assert len(queue.claim_due("w1", now, limit=1)) == 1
    assert len(queue.claim_due("w1", now, limit=5)) == 1


@pytest.mark.django_db
def test_claim_is_three_queries(now, django_assert_num_queries):
    factories.delivery(URL, now)
    # SAVEPOINT, SELECT ... FOR UPDATE SKIP LOCKED, UPDATE, RELEASE, then the SELECT of the claimed rows.
    with django_assert_num_queries(5):
        assert len(queue.claim_due("w1", now, limit=8)) == 1


@pytest.mark.django_db(transaction=True)
def test_claim_skips_rows_locked_by_another_worker(now):
    locked = factories.delivery(URL, now)
    free = factories.delivery(URL, now)
    holding, done = threading.Event(), threading.Event()

    def hold_lock() -> None:
        with psycopg.connect(database_url(connection.settings_dict)) as other, other.transaction():
            other.execute("SELECT 1 FROM webhooks_delivery WHERE id = %s FOR UPDATE", [locked.pk])
            holding.set()
            done.wait(10)

    thread = threading.Thread(target=hold_lock)
    thread.start()
    try:
        assert holding.wait(10)
        assert [d.pk for d in queue.claim_due("w1", now, limit=10)] == [free.pk]
    finally:
        done.set()
        thread.join(10)
    assert [d.pk for d in queue.claim_due("w1", now, limit=10)] == [locked.pk]


@pytest.mark.django_db
def test_reaper_returns_expired_leases_to_pending_exactly_once(now, settings):
    settings.AGENTFIELD_WEBHOOK_TIMEOUT_SECONDS = 10
    settings.AGENTFIELD_WEBHOOK_LEASE_MARGIN_SECONDS = 5
    delivery = factories.delivery(URL, now)
    [claimed] = queue.claim_due("dead-worker", now, limit=1)
    assert queue.reap_expired(now + timedelta(seconds=15)) == 0  # the lease has not expired yet
    later = now + timedelta(seconds=16)
    assert queue.reap_expired(later) == 1
    assert queue.reap_expired(later) == 0
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.PENDING and delivery.next_attempt_at == later
    assert delivery.lease_token is None and delivery.attempt_count == 1
    [lost] = DeliveryAttempt.objects.filter(delivery=delivery)
    assert lost.number == 1 and lost.error_class == "lease_expired" and lost.started_at == now
    # The next claim is attempt 2 of the same delivery (same webhook-id).
    [again] = queue.claim_due("w2", later, limit=1)
    assert again.pk == delivery.pk and again.attempt_count == 2 and again.lease_token != claimed.lease_token


@pytest.mark.django_db
def test_reaper_fails_a_delivery_whose_last_attempt_was_lost(now):
    delivery = factories.delivery(URL, now)
    Delivery.objects.filter(pk=delivery.pk).update(attempt_count=4)
    queue.claim_due("w1", now, limit=1)
    assert queue.reap_expired(now + timedelta(hours=1)) == 1
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED and delivery.attempt_count == 5
    assert delivery.completed_at == now + timedelta(hours=1)
