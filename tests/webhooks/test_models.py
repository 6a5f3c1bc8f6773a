"""Delivery status verbs: conditional UPDATEs fenced by the lease token."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.webhooks import factories
from webhooks import queue, services
from webhooks.exceptions import DeliveryInFlight, StaleLease
from webhooks.models import Delivery, DeliveryAttempt
from webhooks.transport import DeliveryResult

pytestmark = pytest.mark.django_db
URL = "http://hooks.example.com/hook"
OK = DeliveryResult(200, None, "", 12, '{"ok": true}')
BROKEN = DeliveryResult(502, "http_status", "non-2xx response: 502", 40, "bad gateway")


def claim(now) -> Delivery:
    [delivery] = queue.claim_due("w1", now, limit=1)
    return delivery


def test_delivered_records_the_attempt_and_ends_the_lease(now):
    factories.delivery(URL, now, secret="top-secret-value-1234")
    delivery = claim(now)
    delivery.mark_delivered(delivery.lease_token, OK, now, now + timedelta(seconds=1))
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.DELIVERED and delivery.lease_token is None
    assert delivery.completed_at == now + timedelta(seconds=1) and delivery.last_status_code == 200
    [attempt] = delivery.attempts.all()
    assert (attempt.number, attempt.status_code, attempt.succeeded, attempt.duration_ms) == (1, 200, True, 12)
    assert "top-secret" not in str(DeliveryAttempt.objects.values().get())


def test_retry_goes_back_to_pending_at_the_given_time(now):
    factories.delivery(URL, now)
    delivery = claim(now)
    delivery.retry_at(delivery.lease_token, BROKEN, now, now + timedelta(seconds=5))
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.PENDING
    assert delivery.next_attempt_at == now + timedelta(seconds=5)
    assert delivery.last_error == "non-2xx response: 502" and delivery.last_status_code == 502


def test_failed_keeps_the_reason(now):
    factories.delivery(URL, now)
    delivery = claim(now)
    delivery.mark_failed(delivery.lease_token, BROKEN, now, now, "gave up after 1 attempts")
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED
    assert delivery.last_error == "non-2xx response: 502; gave up after 1 attempts"


def test_a_stale_worker_cannot_overwrite_the_newer_state(now):
    factories.delivery(URL, now)
    stale = claim(now)
    later = now + timedelta(hours=1)
    assert queue.reap_expired(later) == 1
    fresh = claim(later)
    with pytest.raises(StaleLease):
        stale.mark_delivered(stale.lease_token, OK, now, later)
    with pytest.raises(StaleLease):
        stale.retry_at(stale.lease_token, BROKEN, now, later)
    assert DeliveryAttempt.objects.filter(error_class="").count() == 0  # nothing written under the stale lease
    fresh.mark_delivered(fresh.lease_token, OK, later, later)
    assert Delivery.objects.get(pk=fresh.pk).status == Delivery.Status.DELIVERED


def test_redeliver_starts_a_new_series_with_the_same_id(now):
    factories.delivery(URL, now)
    delivery = claim(now)
    delivery.mark_failed(delivery.lease_token, BROKEN, now, now)
    later = now + timedelta(minutes=1)
    delivery.redeliver(later, max_attempts=3)
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.PENDING and delivery.attempt_count == 0
    assert delivery.next_attempt_at == later and delivery.max_attempts == 3 and delivery.completed_at is None
    assert claim(later).pk == delivery.pk


def test_redeliver_refuses_a_delivery_in_flight(now):
    factories.delivery(URL, now)
    delivery = claim(now)
    with pytest.raises(DeliveryInFlight):
        delivery.redeliver(now, max_attempts=5)
    assert Delivery.objects.get(pk=delivery.pk).status == Delivery.Status.IN_FLIGHT


def test_a_second_terminal_event_restarts_the_delivery_with_the_new_body(now):
    first = factories.delivery(URL, now, execution_id="exec_rerun", body=b'{"n":1}')
    delivery = claim(now)
    delivery.mark_delivered(delivery.lease_token, OK, now, now)
    again = services.enqueue("exec_rerun", "execution.completed", b'{"n":2}', now)
    assert again.pk == first.pk
    again.refresh_from_db()
    assert bytes(again.body) == b'{"n":2}' and again.status == Delivery.Status.PENDING and again.attempt_count == 0
