"""The delivery worker against a real receiver on 127.0.0.1, with time as a parameter."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook as StandardWebhook

from tests.http_fakes import Receiver
from tests.processes import free_port, wait_until
from tests.webhooks import factories
from webhooks import services
from webhooks.models import Delivery
from webhooks.worker import DeliveryWorker

pytestmark = pytest.mark.django_db
SECRET = "whsec_your_signing_secret"


@pytest.fixture(autouse=True)
def loopback_allowed(settings):
    settings.AGENTFIELD_WEBHOOK_ALLOWED_CIDRS = ["127.0.0.1/32"]
    settings.AGENTFIELD_WEBHOOK_TIMEOUT_SECONDS = 5.0


@pytest.fixture
def start():
    return timezone.now().replace(microsecond=0)


@pytest.fixture
def clock(start):
    return factories.Clock(start)


def step(worker: DeliveryWorker) -> bool:
    """One loop round, then wait (bounded) until its posts are recorded."""
    did = worker.run_once()
    assert worker.drain(timeout=15)
    return did


def at(clock, start, seconds: float) -> None:
    clock.now = start + timedelta(seconds=seconds)


def test_500_twice_then_200_is_three_attempts_on_schedule_with_one_id_and_the_same_bytes(receiver, clock, start):
    receiver.script("/hook", 500, 500, 200)
    delivery = factories.delivery(receiver.url("/hook"), start, secret=SECRET, headers={"X-Tenant": "acme"})
    worker = DeliveryWorker("w1", clock=clock)
    for offset in (0, 5, 15):  # immediately, then +5 s, then +10 s
        if offset:
            at(clock, start, offset - 0.001)
            assert not step(worker), f"attempt due at +{offset}s went out early"
        at(clock, start, offset)
        assert step(worker)
    at(clock, start, 10_000)
    assert not step(worker)

    assert len(receiver.received) == 3
    for number, request in enumerate(receiver.received, start=1):
        assert request.body == bytes(delivery.body)
        assert request.headers["webhook-id"] == request.headers["X-AgentField-Delivery"] == str(delivery.id)
        assert request.headers["X-AgentField-Attempt"] == str(number)
        assert request.headers["X-AgentField-Event"] == "execution.completed"
        assert request.headers["X-Tenant"] == "acme"
        digest = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(request.headers["X-AgentField-Signature"], f"sha256={digest}")
        StandardWebhook(SECRET.encode()).verify(request.body, request.headers, json_parse=False)
    stamps = [int(request.headers["webhook-timestamp"]) for request in receiver.received]
    assert [stamp - int(start.timestamp()) for stamp in stamps] == [0, 5, 15]

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.DELIVERED and delivery.attempt_count == 3
    assert delivery.completed_at == start + timedelta(seconds=15)
    attempts = list(delivery.attempts.order_by("number"))
    assert [a.number for a in attempts] == [1, 2, 3]
    assert [a.status_code for a in attempts] == [500, 500, 200]
    assert [a.error_class for a in attempts] == ["http_status", "http_status", ""]
    assert [(a.started_at - start).total_seconds() for a in attempts] == [0, 5, 15]
    events = services.attempts_for([delivery.execution_id])[delivery.execution_id]
    assert [(e["attempt"], e["status"], e["http_status"]) for e in events] == [
        (1, "failed", 500),
        (2, "failed", 500),
        (3, "delivered", 200),
    ]
    assert all(SECRET not in str(e) for e in events)


def test_a_real_clock_keeps_the_doubling_gaps(receiver, settings):
    settings.AGENTFIELD_WEBHOOK_RETRY_BASE_SECONDS = 0.2
    receiver.script("/hook", 500, 503, 200)
    delivery = factories.delivery(receiver.url("/hook"), timezone.now(), secret=SECRET)
    worker = DeliveryWorker("w1")

    def delivered() -> bool:
        worker.run_once()
        worker.drain(timeout=10)
        return Delivery.objects.get(pk=delivery.pk).status == Delivery.Status.DELIVERED

    wait_until(delivered, timeout=30, interval=0.02, message="delivery after two failures")
    times = [request.at for request in receiver.received]
    assert len(times) == 3
    # Never early: at least base, then 2·base after the previous attempt.
    assert times[1] - times[0] >= 0.2 and times[2] - times[1] >= 0.4


def test_receiver_down_for_every_attempt_fails_then_redelivery_succeeds_once_it_is_back(api, clock, start):
    port = free_port()
    delivery = factories.delivery(f"http://127.0.0.1:{port}/hook", start, secret=SECRET)
    worker = DeliveryWorker("w1", clock=clock)
    for offset in (0, 5, 15, 35, 75):
        at(clock, start, offset)
        assert step(worker)
    at(clock, start, 10_000)
    assert not step(worker)
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED and delivery.attempt_count == 5
    assert "gave up after 5 attempts" in delivery.last_error
    assert [a.error_class for a in delivery.attempts.all()] == ["connect"] * 5

    receiver = Receiver(port=port)
    try:
        response = api.post(f"/api/v1/executions/{delivery.execution_id}/webhook/redeliver")
        assert response.status_code == 202, response.content
        assert response.json() == {"status": "queued", "delivery_id": str(delivery.id)}
        clock.now = timezone.now()
        assert step(worker)
        [request] = receiver.received
        assert request.headers["webhook-id"] == str(delivery.id)
        assert request.headers["X-AgentField-Attempt"] == "1"
        assert request.body == bytes(delivery.body)
        StandardWebhook(SECRET.encode()).verify(request.body, request.headers, json_parse=False)
    finally:
        receiver.stop()
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.DELIVERED and delivery.attempt_count == 1
    assert delivery.attempts.count() == 6


def test_410_gone_fails_without_retrying(receiver, clock, start):
    receiver.script("/hook", 410)
    delivery = factories.delivery(receiver.url("/hook"), start)
    worker = DeliveryWorker("w1", clock=clock)
    assert step(worker)
    at(clock, start, 10_000)
    assert not step(worker)
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED and delivery.attempt_count == 1
    assert "410" in delivery.last_error and len(receiver.received) == 1


def test_retry_after_is_honoured(receiver, clock, start):
    receiver.script("/hook", (429, {"Retry-After": "30"}))
    delivery = factories.delivery(receiver.url("/hook"), start)
    step(DeliveryWorker("w1", clock=clock))
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.PENDING
    assert delivery.next_attempt_at == start + timedelta(seconds=30)


def test_refused_destinations_are_recorded_with_their_error_class_and_never_reached(
    receiver, second_receiver, clock, start
):
    names = {"internal.example.com": ["127.0.0.2"], "metadata.example.com": ["169.254.169.254"]}
    receiver.script("/redirect", (302, {"Location": second_receiver.url("/admin")}))
    cases = {
        second_receiver.url("/hook"): "blocked_destination",
        "http://169.254.169.254/latest/meta-data/": "blocked_destination",
        "http://10.1.2.3/hook": "blocked_destination",
        f"http://internal.example.com:{second_receiver.port}/hook": "blocked_destination",
        "http://metadata.example.com/": "blocked_destination",
        receiver.url("/redirect"): "http_status",
    }
    deliveries = {url: factories.delivery(url, start) for url in cases}
    worker = DeliveryWorker("w1", clock=clock, resolver=lambda host, port: names[host])
    assert step(worker)
    for url, error_class in cases.items():
        [attempt] = deliveries[url].attempts.all()
        assert attempt.error_class == error_class, url
        assert not attempt.succeeded
    redirect = deliveries[receiver.url("/redirect")].attempts.get()
    assert redirect.status_code == 302
    assert second_receiver.connections == 0 and second_receiver.received == []
    assert [request.path for request in receiver.received] == ["/redirect"]


def test_claims_only_as_many_deliveries_as_free_threads(receiver, clock, start):
    receiver.hold("/slow")
    slow = factories.delivery(receiver.url("/slow"), start - timedelta(seconds=1))
    others = [factories.delivery(receiver.url("/hook"), start) for _ in range(3)]
    worker = DeliveryWorker("w1", concurrency=1, clock=clock)
    try:
        assert worker.run_once()
        assert receiver.holding.wait(10)
        assert not worker.run_once()  # the only thread is busy: nothing else is claimed
        assert worker.in_flight == 1
        assert [Delivery.objects.get(pk=d.pk).status for d in others] == ["pending"] * 3
    finally:
        receiver.release()
    assert worker.drain(timeout=10)
    for _ in others:
        step(worker)
    statuses = {d.pk: d.status for d in Delivery.objects.all()}
    assert set(statuses.values()) == {"delivered"} and slow.pk in statuses
    worker.close(timeout=1)


def test_a_slow_receiver_does_not_block_the_loop(receiver, clock, start):
    receiver.hold("/slow")
    slow = factories.delivery(receiver.url("/slow"), start)
    worker = DeliveryWorker("w1", concurrency=4, clock=clock)
    try:
        worker.run_once()
        assert receiver.holding.wait(10)
        fast = factories.delivery(receiver.url("/hook"), start)
        worker.run_once()
        wait_until(lambda: worker.run_once() or fast.attempts.exists(), timeout=10, message="fast delivery")
        # The fast one was delivered while the slow one is still held: it has no attempt yet.
        assert Delivery.objects.get(pk=fast.pk).status == Delivery.Status.DELIVERED
        assert not slow.attempts.exists() and worker.in_flight == 1
        assert [request.path for request in receiver.received] == ["/slow", "/hook"]
    finally:
        receiver.release()
        worker.close(timeout=10)
