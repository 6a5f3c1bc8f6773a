"""The API key admin warns before the first key closes the API, and revocations are in the admin's log."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.utils import timezone

from nodes import auth, services
from nodes.models import ApiKey

pytestmark = pytest.mark.django_db


def test_the_add_form_warns_that_the_first_key_locks_out_keyless_agents(admin_client):
    services.register_node({"id": "batch", "base_url": "http://127.0.0.1:8001", "instance_id": "i1"}, timezone.now())
    page = admin_client.get("/admin/nodes/apikey/add/").content.decode()
    assert "Creating this first key closes it at once" in page
    assert "1 agent instance(s) are heart-beating right now" in page


def test_the_add_form_says_nothing_once_a_key_exists(admin_client):
    auth.issue_key("ops")
    page = admin_client.get("/admin/nodes/apikey/add/").content.decode()
    assert "first key" not in page


def test_revoking_keys_is_recorded_in_recent_actions_with_the_user(admin_client):
    key, _ = auth.issue_key("ci", "client")
    admin_client.post("/admin/nodes/apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None
    entry = LogEntry.objects.get(object_id=str(key.pk))
    assert (entry.user.username, entry.change_message) == ("admin", "Revoked the API key.")


def test_keys_are_found_by_the_start_of_their_prefix(admin_client):
    key, _ = auth.issue_key("searchable")
    other, _ = auth.issue_key("other")
    page = admin_client.get("/admin/nodes/apikey/", {"q": key.prefix[:8]}).content.decode()
    assert "searchable" in page
