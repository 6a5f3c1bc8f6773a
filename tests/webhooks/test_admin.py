"""Admin pages: the secret never shows, deliveries filter and show attempts, "Redeliver" works."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

from tests.webhooks import factories
from webhooks import queue
from webhooks.models import Delivery, DeliveryAttempt
from webhooks.transport import DeliveryResult

pytestmark = pytest.mark.django_db
SECRET = "whsec_super_secret_value_9f3a"
URL = "http://hooks.example.com/hook"


@pytest.fixture
def failed(now) -> Delivery:
    factories.delivery(URL, now, secret=SECRET, headers={"Authorization": "Bearer token-123"})
    [delivery] = queue.claim_due("w1", now, limit=1)
    delivery.mark_failed(
        delivery.lease_token, DeliveryResult(500, "http_status", "non-2xx response: 500", 7, "boom"), now, now
    )
    return delivery


def test_webhook_pages_mask_the_secret_and_header_values(admin_client, failed):
    listing = admin_client.get("/admin/webhooks/webhook/").content.decode()
    detail = admin_client.get(f"/admin/webhooks/webhook/{failed.webhook_id}/change/").content.decode()
    for page in (listing, detail):
        assert SECRET not in page and "token-123" not in page
        assert "9f3a" in page  # the masked tail
    assert "Authorization" in detail


def test_delivery_list_filters_by_status_and_event(admin_client, failed, now):
    other = factories.delivery(URL, now, event="execution.failed")
    page = admin_client.get("/admin/webhooks/delivery/", {"status__exact": "failed"}).content.decode()
    assert str(failed.id) in page and str(other.id) not in page
    page = admin_client.get("/admin/webhooks/delivery/", {"event": "execution.failed"}).content.decode()
    assert str(other.id) in page and str(failed.id) not in page


def test_delivery_page_shows_attempts_inline_without_the_secret(admin_client, failed):
    page = admin_client.get(f"/admin/webhooks/delivery/{failed.id}/change/").content.decode()
    assert "non-2xx response: 500" in page and "boom" in page
    assert SECRET not in page


def test_redeliver_action_queues_failed_deliveries_and_skips_those_in_flight(admin_client, failed, now):
    busy = factories.delivery(URL, now)
    queue.claim_due("w2", now, limit=1)
    response = admin_client.post(
        "/admin/webhooks/delivery/",
        {"action": "redeliver", ACTION_CHECKBOX_NAME: [str(failed.id), str(busy.id)]},
        follow=True,
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert "1 delivery(ies) queued again" in text and "being sent right now" in text
    assert Delivery.objects.get(pk=failed.pk).status == Delivery.Status.PENDING
    assert Delivery.objects.get(pk=busy.pk).status == Delivery.Status.IN_FLIGHT


def test_attempts_are_read_only(admin_client, failed):
    attempt = DeliveryAttempt.objects.get()
    assert admin_client.get("/admin/webhooks/deliveryattempt/").status_code == 200
    assert admin_client.get("/admin/webhooks/deliveryattempt/add/").status_code == 403
    page = admin_client.get(f"/admin/webhooks/deliveryattempt/{attempt.pk}/change/")
    assert page.status_code == 200 and b'name="error"' not in page.content
    assert admin_client.post(f"/admin/webhooks/deliveryattempt/{attempt.pk}/delete/").status_code == 403
