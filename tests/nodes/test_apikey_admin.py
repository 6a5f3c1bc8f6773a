"""The API key admin warns before the first key closes the API, and revocations are in the admin's log."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.utils import timezone

from nodes import auth, services
from nodes.models import ApiKey

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_superuser("root", "root@localhost", "pw-for-tests")
    client.force_login(user)
    return client


def test_the_add_form_warns_that_the_first_key_locks_out_keyless_agents(staff_client):
    services.register_node({"id": "batch", "base_url": "http://127.0.0.1:8001", "instance_id": "i1"}, timezone.now())
    page = staff_client.get("/admin/nodes/apikey/add/").content.decode()
    assert "Creating this first key closes it at once" in page
    assert "1 agent instance(s) are heart-beating right now" in page


def test_the_add_form_says_nothing_once_a_key_exists(staff_client):
    auth.issue_key("ops")
    page = staff_client.get("/admin/nodes/apikey/add/").content.decode()
    assert "first key" not in page


def test_revoking_keys_is_recorded_in_recent_actions_with_the_user(staff_client):
    key, _ = auth.issue_key("ci", "client")
    staff_client.post("/admin/nodes/apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None
    entry = LogEntry.objects.get(object_id=str(key.pk))
    assert (entry.user.username, entry.change_message) == ("root", "Revoked the API key.")


def test_keys_are_found_by_the_start_of_their_prefix(staff_client):
    key, _ = auth.issue_key("searchable")
    other, _ = auth.issue_key("other")
    page = staff_client.get("/admin/nodes/apikey/", {"q": key.prefix[:8]}).content.decode()
    assert "searchable" in page
