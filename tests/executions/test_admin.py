"""Staff see executions in the admin and can cancel or re-queue them."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from executions.models import Execution, TraceEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_superuser("staff", "staff@example.com", "pw-123456")
    client.force_login(user)
    return client


def make(status="queued", **fields) -> Execution:
    now = timezone.now()
    values = {"id": f"exec_admin_{status}", "run_id": "run_admin", "node_id": "batch", "target_name": "process_corpus",
              "status": status, "input": {"items": ["<script>alert(1)</script>"]}, "run_at": now,
              "created_at": now - timedelta(minutes=3), "updated_at": now, **fields}  # fmt: skip
    return Execution.objects.create(**values)


def test_changelist_and_detail_show_target_input_and_trace_escaped(staff_client):
    execution = make()
    TraceEntry.objects.create(
        execution_id=execution.id, kind="log", level="info", message="processed 1/3", created_at=timezone.now()
    )
    listing = staff_client.get("/admin/executions/execution/")
    assert listing.status_code == 200
    assert b"batch.process_corpus" in listing.content
    detail = staff_client.get(f"/admin/executions/execution/{execution.id}/change/")
    assert detail.status_code == 200
    assert b"processed 1/3" in detail.content
    assert b"<script>alert(1)</script>" not in detail.content
    assert b"&lt;script&gt;" in detail.content


def test_cancel_action_cancels_queued_executions(staff_client):
    execution = make()
    response = staff_client.post(
        "/admin/executions/execution/", {"action": "cancel_executions", "_selected_action": [execution.id]}
    )
    assert response.status_code == 302
    execution.refresh_from_db()
    assert execution.status == "cancelled"


def test_requeue_action_gives_a_failed_execution_a_fresh_series(staff_client):
    execution = make("failed", attempt=5, error="agent gone", completed_at=timezone.now())
    staff_client.post(
        "/admin/executions/execution/", {"action": "requeue_executions", "_selected_action": [execution.id]}
    )
    execution.refresh_from_db()
    assert (execution.status, execution.attempt, execution.error, execution.run_id) == ("queued", 0, "", "run_admin")


def test_anonymous_users_are_sent_to_the_login_page(client):
    response = client.get("/admin/executions/execution/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
