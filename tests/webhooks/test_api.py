"""POST /api/v1/executions/{id}/webhook/redeliver."""

from __future__ import annotations

import pytest

from tests.webhooks import factories
from webhooks import queue, services
from webhooks.models import Delivery
from webhooks.transport import DeliveryResult

pytestmark = pytest.mark.django_db
URL = "http://hooks.example.com/hook"


def redeliver(api, execution_id: str):
    return api.post(f"/api/v1/executions/{execution_id}/webhook/redeliver")


def test_unknown_execution_or_no_webhook_is_404(api):
    response = redeliver(api, "exec_nope")
    assert response.status_code == 404
    assert response.json() == {"error": "no webhook registered for execution 'exec_nope'", "code": "webhook_not_found"}


def test_an_execution_that_has_not_finished_is_409(api, now):
    services.register("exec_running", services.parse_spec({"url": URL}), now)
    response = redeliver(api, "exec_running")
    assert response.status_code == 409 and response.json()["code"] == "delivery_not_ready"


def test_a_delivery_in_flight_is_409(api, now):
    delivery = factories.delivery(URL, now)
    queue.claim_due("w1", now, limit=1)
    response = redeliver(api, delivery.execution_id)
    assert response.status_code == 409 and response.json()["code"] == "delivery_in_flight"
    assert Delivery.objects.get(pk=delivery.pk).status == Delivery.Status.IN_FLIGHT


def test_a_failed_delivery_is_queued_again_with_the_same_id(api, now):
    delivery = factories.delivery(URL, now)
    [claimed] = queue.claim_due("w1", now, limit=1)
    claimed.mark_failed(claimed.lease_token, DeliveryResult(None, "connect", "refused", 1), now, now)
    response = redeliver(api, delivery.execution_id)
    assert response.status_code == 202
    assert response.json() == {"status": "queued", "delivery_id": str(delivery.id)}
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.PENDING and delivery.attempt_count == 0


def test_a_delivered_delivery_can_be_sent_again(api, now):
    delivery = factories.delivery(URL, now)
    [claimed] = queue.claim_due("w1", now, limit=1)
    claimed.mark_delivered(claimed.lease_token, DeliveryResult(200, None, "", 1), now, now)
    assert redeliver(api, delivery.execution_id).status_code == 202
    assert Delivery.objects.get(pk=delivery.pk).status == Delivery.Status.PENDING
