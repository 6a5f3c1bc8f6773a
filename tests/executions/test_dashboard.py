"""The staff dashboard pages: who may see them, what they show, and that agent data is escaped."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client
from django.utils import timezone

from executions import events
from executions.models import Execution, ExecutionEvent, MemoryEntry, TraceEntry
from nodes.models import Node
from tests.webhooks.factories import delivery
from webhooks.models import DeliveryAttempt

pytestmark = pytest.mark.django_db

PAGES = ["/dashboard/", "/dashboard/nodes/", "/dashboard/queue/", "/dashboard/executions/exec_x/"]
HOSTILE = '<script>alert("x")</script>'


def execution(execution_id: str, status: str = "queued", **fields) -> Execution:
    now = timezone.now()
    fields = {"run_id": "run_1", "node_id": "echo", "target_name": "echo", **fields}
    with transaction.atomic():
        record = Execution.objects.create(
            id=execution_id, status=status, run_at=now, created_at=now, updated_at=now, **fields
        )
        events.record(record, events.QUEUED, now)
    return record


@pytest.mark.parametrize("page", PAGES)
def test_anonymous_and_non_staff_users_are_sent_to_the_login_page(page):
    execution("exec_x")
    anonymous = Client().get(page)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/admin/login/")
    user = Client()
    user.force_login(User.objects.create_user("user"))
    assert user.get(page).status_code == 302


@pytest.mark.parametrize("page", PAGES)
def test_staff_see_every_page(page, staff_client):
    execution("exec_x")
    response = staff_client.get(page)
    assert response.status_code == 200
    assert b"/static/dashboard/dashboard.js" in response.content


def test_the_list_tells_the_browser_where_its_stream_resumes(staff_client):
    execution("exec_x")
    newest = ExecutionEvent.objects.order_by("-id").values_list("id", flat=True).first()
    assert f'data-stream-from="{newest}"' in staff_client.get("/dashboard/").content.decode()


def test_the_execution_page_shows_timeline_trace_memory_and_escapes_what_agents_wrote(staff_client):
    now = timezone.now()
    record = execution("exec_x", input={"prompt": HOSTILE})
    record.fail(HOSTILE, now)
    TraceEntry.objects.create(execution_id="exec_x", kind="log", message=HOSTILE, data={"k": HOSTILE}, created_at=now)
    MemoryEntry.objects.create(
        scope="workflow", scope_id="run_1", key="step-1", data={"done": [1, 2]}, created_at=now, updated_at=now
    )
    MemoryEntry.objects.create(
        scope="workflow", scope_id="run_other", key="not-mine", data={}, created_at=now, updated_at=now
    )

    html = staff_client.get("/dashboard/executions/exec_x/").content.decode()

    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "execution_queued" in html and "execution_failed" in html
    assert "step-1" in html and "not-mine" not in html
    assert "No webhook." in html


def test_an_unknown_execution_is_a_404(staff_client):
    assert staff_client.get("/dashboard/executions/nope/").status_code == 404


def test_the_list_filters_by_status_and_escapes_targets(staff_client):
    execution("exec_q", node_id="n<b>", target_name=HOSTILE)
    execution("exec_r", status="running")
    client = staff_client
    html = client.get("/dashboard/").content.decode()
    assert 'data-execution-id="exec_q"' in html and 'data-execution-id="exec_r"' in html
    assert "<script>alert" not in html and "n&lt;b&gt;" in html
    running = client.get("/dashboard/?status=running").content.decode()
    assert 'data-execution-id="exec_q"' not in running and 'data-execution-id="exec_r"' in running


def test_the_queue_overview_counts_statuses_and_charts_the_last_hour(staff_client):
    now = timezone.now()
    for index in range(3):
        execution(f"exec_q{index}")
    Execution.objects.filter(id="exec_q0").update(created_at=now - timedelta(minutes=5))
    execution("exec_done").complete({"ok": True}, now)

    html = staff_client.get("/dashboard/queue/").content.decode()

    assert re.search(r'data-count="queued">3<', html) and re.search(r'data-count="succeeded">1<', html)
    assert "5 min" in html
    assert len(re.findall(r'<rect class="ok" ', html)) == len(re.findall(r'<rect class="failed" ', html)) == 60
    assert "Finished, last hour: 1 (0 failed; failure rate 0.0 %)" in html


def test_the_nodes_page_shows_liveness(settings, staff_client):
    now = timezone.now()
    fields = {"base_url": "http://127.0.0.1:1", "registered_at": now}
    Node.objects.create(id="alive", last_heartbeat_at=now, **fields)
    Node.objects.create(id="quiet", last_heartbeat_at=now - timedelta(minutes=5), **fields)
    Node.objects.create(id="gone", last_heartbeat_at=now, shutdown_at=now, **fields)

    html = staff_client.get("/dashboard/nodes/").content.decode()

    for node_id, health in (("alive", "active"), ("quiet", "inactive"), ("gone", "offline")):
        assert re.search(rf'data-node-id="{node_id}">.*?data-field="health">{health}<', html, re.S)


def test_the_admin_links_to_the_dashboard():
    User.objects.create_superuser("admin", password="unused-password")
    client = Client()
    client.login(username="admin", password="unused-password")
    assert 'href="/dashboard/"' in client.get("/admin/").content.decode()


def test_the_execution_page_lists_webhook_attempts_with_escaped_errors(staff_client):
    now = timezone.now()
    execution("exec_x", webhook_registered=True)
    sent = delivery("https://hooks.example.com/in", now, execution_id="exec_x")
    DeliveryAttempt.objects.create(delivery=sent, number=1, started_at=now, status_code=500, error=HOSTILE)
    DeliveryAttempt.objects.create(delivery=sent, number=2, started_at=now, status_code=200, succeeded=True)

    html = staff_client.get("/dashboard/executions/exec_x/").content.decode()

    assert "status-failed" in html and "status-delivered" in html
    assert "<script>alert" not in html and "&lt;script&gt;" in html


def test_the_root_url_is_a_small_public_page_that_links_to_the_console():
    response = Client().get("/")
    assert response.status_code == 200
    page = response.content.decode()
    for link in ('href="/dashboard/"', 'href="/admin/"', 'href="/api/docs/"', 'href="/api/v1/health"'):
        assert link in page
    assert "AGENTFIELD_SERVER=http://testserver" in page
