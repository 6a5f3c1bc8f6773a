"""Delivery pages are views (no Save), found by execution id prefix, and a redelivery is in Recent actions."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from tests.webhooks import factories
from webhooks import queue
from webhooks.models import Delivery
from webhooks.transport import DeliveryResult

pytestmark = pytest.mark.django_db
URL = "http://hooks.example.com/hook"


@pytest.fixture
def failed(now) -> Delivery:
    factories.delivery(URL, now, execution_id="exec_1764680000000_abcdef01")
    [delivery] = queue.claim_due("w1", now, limit=1)
    delivery.mark_failed(delivery.lease_token, DeliveryResult(500, "http_status", "500", 7, "boom"), now, now)
    return delivery


def test_a_delivery_page_is_titled_view_and_has_no_save_button(admin_client, failed):
    page = admin_client.get(f"/admin/webhooks/delivery/{failed.id}/change/").content.decode()
    assert "View delivery" in page and "Change delivery" not in page
    assert 'name="_save"' not in page and 'name="_continue"' not in page


def test_deliveries_are_found_by_an_execution_id_prefix_or_their_whole_id(admin_client, failed):
    for term in ("exec_17646800", str(failed.id)):
        page = admin_client.get("/admin/webhooks/delivery/", {"q": term}).content.decode()
        assert f"/admin/webhooks/delivery/{failed.id}/change/" in page
    page = admin_client.get("/admin/webhooks/delivery/", {"q": "exec_9"}).content.decode()
    assert f"/admin/webhooks/delivery/{failed.id}/change/" not in page


def test_redeliver_is_logged_with_the_user(admin_client, failed):
    admin_client.post("/admin/webhooks/delivery/", {"action": "redeliver", "_selected_action": [str(failed.id)]})
    entry = LogEntry.objects.get(object_id=str(failed.id))
    assert (entry.user.username, entry.change_message) == ("admin", "Redelivered (new attempt series).")


def test_staff_who_may_only_view_deliveries_do_not_get_the_redeliver_action(client, failed):
    viewer = get_user_model().objects.create_user("viewer", password="pw-123456", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_delivery"))
    client.force_login(viewer)
    page = client.get("/admin/webhooks/delivery/").content.decode()
    assert str(failed.id) in page and 'value="redeliver"' not in page
