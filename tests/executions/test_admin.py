"""Staff see executions in the admin and can cancel or re-queue them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from executions.models import AgentNotice, Execution, TraceEntry
from tests.factories import make_node

pytestmark = pytest.mark.django_db


def make(status="queued", **fields) -> Execution:
    now = timezone.now()
    values = {"id": f"exec_admin_{status}", "run_id": "run_admin", "node_id": "batch", "target_name": "process_corpus",
              "status": status, "input": {"items": ["<script>alert(1)</script>"]}, "run_at": now,
              "created_at": now - timedelta(minutes=3), "updated_at": now, **fields}  # fmt: skip
    return Execution.objects.create(**values)


def test_changelist_and_detail_show_target_input_and_trace_escaped(admin_client):
    execution = make()
    TraceEntry.objects.create(
        execution_id=execution.id, kind="log", level="info", message="processed 1/3", created_at=timezone.now()
    )
    listing = admin_client.get("/admin/executions/execution/")
    assert listing.status_code == 200
    assert b"batch.process_corpus" in listing.content
    detail = admin_client.get(f"/admin/executions/execution/{execution.id}/change/")
    assert detail.status_code == 200
    assert b"processed 1/3" in detail.content
    assert b"<script>alert(1)</script>" not in detail.content
    assert b"&lt;script&gt;" in detail.content


def test_cancel_action_cancels_queued_executions(admin_client):
    execution = make()
    response = admin_client.post(
        "/admin/executions/execution/", {"action": "cancel_executions", "_selected_action": [execution.id]}
    )
    assert response.status_code == 302
    execution.refresh_from_db()
    assert execution.status == "cancelled"


def test_cancel_action_cancels_running_trees_tells_agents_and_names_the_user(admin_client):
    parent = make("running", id="exec_admin_parent", node_instance_id="instance-1")
    child = make("running", id="exec_admin_child", node_instance_id="instance-1", parent_execution_id=parent.id)
    admin_client.post("/admin/executions/execution/", {"action": "cancel_executions", "_selected_action": [parent.id]})
    fresh = {e.id: e for e in Execution.objects.all()}
    assert fresh[parent.id].status == fresh[child.id].status == "cancelled"
    assert "in the admin" in fresh[parent.id].error and "staff user" in fresh[parent.id].error
    assert AgentNotice.objects.filter(execution_id__in=[parent.id, child.id]).count() == 2
    detail = admin_client.get(f"/admin/executions/execution/{parent.id}/change/")
    assert b"Notices to the agent" in detail.content and b"cancel to batch/instance-1: pending" in detail.content


def test_restart_action_starts_a_new_execution_with_its_lineage(admin_client):
    execution = make("failed", completed_at=timezone.now())
    gone = make("failed", id="exec_admin_gone", node_id="gone", completed_at=timezone.now())
    make_node("batch", reasoners=("process_corpus",))
    answer = admin_client.post(
        "/admin/executions/execution/",
        {"action": "restart_executions", "_selected_action": [execution.id, gone.id]},
        follow=True,
    )
    assert b"node &#x27;gone&#x27; not found" in answer.content  # the one that cannot restart says why
    fresh = Execution.objects.get(restarted_from=execution.id)
    assert (fresh.status, fresh.target, fresh.input) == ("queued", execution.target, execution.input)
    assert execution.id.encode() in admin_client.get(f"/admin/executions/execution/{fresh.id}/change/").content


def test_requeue_action_gives_a_failed_execution_a_fresh_series(admin_client):
    execution = make("failed", attempt=5, error="agent gone", completed_at=timezone.now())
    admin_client.post(
        "/admin/executions/execution/", {"action": "requeue_executions", "_selected_action": [execution.id]}
    )
    execution.refresh_from_db()
    # The five attempts stay counted (the re-run's history); it gets a full series more.
    assert (execution.status, execution.attempt, execution.error, execution.run_id) == ("queued", 5, "", "run_admin")
    assert execution.max_attempts == 5 + 5


def test_anonymous_users_are_sent_to_the_login_page(client):
    response = client.get("/admin/executions/execution/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
