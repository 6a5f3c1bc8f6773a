"""Staff see each node's derived liveness in the admin and can filter by it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from nodes import auth, services
from nodes.models import ApiKey, NodeInstance

pytestmark = pytest.mark.django_db


def _nodes() -> None:
    now = timezone.now()
    base = {"base_url": "http://localhost:8001", "instance_id": "i1", "version": "1.2.3"}
    services.register_node({**base, "id": "fresh", "reasoners": [{"id": "echo"}], "skills": [{"id": "shout"}]}, now)
    services.register_node({**base, "id": "stale", "base_url": "http://old-host:9"}, now - timedelta(hours=1))
    services.register_node({**base, "id": "gone"}, now)
    services.shutdown("gone", None, now)


def test_changelist_shows_liveness_reasoners_skills_and_version(admin_client):
    _nodes()
    page = admin_client.get("/admin/nodes/node/").content.decode()
    for text in ("fresh", "stale", "gone", "active", "inactive", "offline", "echo", "shout", "1.2.3"):
        assert text in page


@pytest.mark.parametrize(("health", "shown", "hidden"), [("active", "fresh", "stale"), ("inactive", "stale", "gone")])
def test_changelist_filters_by_liveness(admin_client, health, shown, hidden):
    _nodes()
    page = admin_client.get(f"/admin/nodes/node/?liveness={health}").content.decode()
    assert f">{shown}<" in page and f">{hidden}<" not in page


def test_changelist_searches_by_base_url(admin_client):
    _nodes()
    page = admin_client.get("/admin/nodes/node/?q=old-host").content.decode()
    assert ">stale<" in page and ">fresh<" not in page


def test_detail_pretty_prints_the_registered_json(admin_client):
    _nodes()
    page = admin_client.get("/admin/nodes/node/fresh/change/").content.decode()
    assert "<pre>[\n  {\n    &quot;id&quot;: &quot;echo&quot;\n  }\n]</pre>" in page


def test_admin_requires_a_staff_login(client):
    response = client.get("/admin/nodes/node/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_admin_creates_an_api_key_and_shows_it_only_once(admin_client, api):
    response = admin_client.post("/admin/nodes/apikey/add/", {"name": "agents", "role": "agent", "node_ids": "[]"})
    assert response.status_code == 200
    page = response.content.decode()
    raw = page.split('<code id="api-key">')[1].split("</code>")[0]
    assert raw.startswith("afk_")
    key = ApiKey.objects.get(name="agents")
    assert key.key_hash == auth.hash_key(raw)
    assert raw not in admin_client.get("/admin/nodes/apikey/").content.decode()
    assert raw not in admin_client.get(f"/admin/nodes/apikey/{key.pk}/change/").content.decode()
    assert api.get("/api/v1/nodes", headers={"X-API-Key": raw}).status_code == 200


def test_admin_revokes_selected_keys(admin_client, api):
    key, raw = auth.issue_key("agents")
    auth.issue_key("other")
    response = admin_client.post(
        "/admin/nodes/apikey/", {"action": "revoke", "_selected_action": [key.pk]}, follow=True
    )
    assert "Revoked 1 API key(s)." in response.content.decode()
    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None
    assert api.get("/api/v1/nodes", headers={"X-API-Key": raw}).status_code == 401


def test_admin_pages_forbid_framing(admin_client):
    assert admin_client.get("/admin/nodes/node/")["X-Frame-Options"] == "DENY"


def test_detail_lists_each_instance_with_its_own_liveness(admin_client):
    now = timezone.now()
    base = {"id": "scaled", "reasoners": [{"id": "echo"}]}
    services.register_node({**base, "base_url": "http://host-a:1", "instance_id": "proc-a"}, now)
    services.register_node({**base, "base_url": "http://host-b:1", "instance_id": "proc-b"}, now)
    NodeInstance.objects.filter(instance_id="proc-a").update(last_heartbeat_at=now - timedelta(minutes=1))
    page = admin_client.get("/admin/nodes/node/scaled/change/").content.decode()
    inline = page.split('id="instances-group"', 1)[1]
    rows = {row.split("proc-", 1)[1][0]: row for row in inline.split("<tr")[1:] if "proc-" in row}
    assert "http://host-a:1" in rows["a"] and ">inactive<" in rows["a"]
    assert "http://host-b:1" in rows["b"] and ">active<" in rows["b"]
