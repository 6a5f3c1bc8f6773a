"""Cancel reaches the agent durably, cancels descendants and whole runs; restart starts anew."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from executions import notices, queue
from executions.dispatcher import record_outcome
from executions.models import AgentNotice, Execution
from nodes import auth, policy
from nodes.client import AgentCallResult
from tests.factories import make_execution, make_node, set_heartbeat
from tests.webhooks.factories import delivery as make_delivery
from webhooks.models import Webhook

pytestmark = pytest.mark.django_db


def running(node, **fields) -> Execution:
    now = timezone.now()
    values = {"status": "running", "attempt": 1, "started_at": now, "node_instance_id": "instance-1"}
    return make_execution(node, now=now, **{**values, **fields})


def deliver(worker: notices.NoticeWorker, until, timeout: float = 15.0) -> None:
    """Run the notice loop until `until()` holds (its posts run in threads)."""
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "notice not delivered in time"
        worker.run_once()
        time.sleep(0.02)


def cancel(api, execution_id: str, **headers):
    return api.post(f"/api/v1/executions/{execution_id}/cancel", headers=headers)


def test_cancelling_a_running_execution_queues_a_notice_the_dispatcher_delivers(api, stub_agent):
    execution = running(make_node(base_url=stub_agent.url))
    stub_agent.status, stub_agent.body = 200, {"cancelled": True, "execution_id": execution.id}
    answer = cancel(api, execution.id)
    assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
    assert answer.json()["cancelled"] == [execution.id]
    assert stub_agent.requests == []  # not from the web request: from the dispatcher's queue
    [notice] = AgentNotice.objects.filter(execution_id=execution.id)
    assert (notice.status, notice.instance_id) == ("pending", "instance-1")
    worker = notices.NoticeWorker()
    try:
        deliver(worker, lambda: AgentNotice.objects.get(pk=notice.pk).status == "delivered")
    finally:
        worker.close()
    assert [r.path for r in stub_agent.requests] == [f"/_internal/executions/{execution.id}/cancel"]
    assert stub_agent.requests[0].headers["X-Execution-ID"] == execution.id
    assert "cancelled by the open API" in Execution.objects.get(pk=execution.pk).error


def test_an_agent_that_fails_to_answer_is_asked_again_with_back_off(api, stub_agent):
    execution = running(make_node(base_url=stub_agent.url))
    stub_agent.status = 503
    cancel(api, execution.id)
    worker = notices.NoticeWorker()
    try:
        deliver(worker, lambda: len(stub_agent.requests) == 1 and worker.in_flight == 0)
        notice = AgentNotice.objects.get(execution_id=execution.id)
        assert notice.status == "pending" and notice.attempts == 1 and "503" in notice.outcome
        assert notice.next_attempt_at > timezone.now()  # 1 s later, then 2, 4, ... 30
        AgentNotice.objects.filter(pk=notice.pk).update(next_attempt_at=timezone.now())
        stub_agent.status, stub_agent.body = 200, {"cancelled": True}
        deliver(worker, lambda: AgentNotice.objects.get(pk=notice.pk).status == "delivered")
    finally:
        worker.close()
    assert len(stub_agent.requests) == 2
    assert [notices.backoff_seconds(n) for n in (1, 2, 3, 6, 7, 20)] == [1, 2, 4, 30, 30, 30]


def test_a_notice_for_an_instance_that_is_gone_is_abandoned_without_a_call(api, stub_agent):
    node = make_node(base_url=stub_agent.url)
    execution = running(node)
    cancel(api, execution.id)
    set_heartbeat(node, timezone.now() - timedelta(hours=1))
    worker = notices.NoticeWorker()
    try:
        deliver(worker, lambda: AgentNotice.objects.get(execution_id=execution.id).status == "abandoned")
    finally:
        worker.close()
    assert stub_agent.requests == []


@pytest.mark.parametrize(("status", "told"), [(200, True), (404, True), (500, False), (None, False)])
def test_which_answers_to_a_cancel_count_as_delivered(status, told):
    assert notices.delivered(AgentNotice(kind="cancel"), AgentCallResult(status, {})) is told


@pytest.mark.parametrize(
    ("status", "body", "told"),
    [(200, {"status": "received", "resolved": True}, True), (200, {"resolved": False}, False), (404, {}, False)],
)
def test_a_decision_counts_as_delivered_only_once_a_paused_reasoner_took_it(status, body, told):
    assert notices.delivered(AgentNotice(kind="approval"), AgentCallResult(status, body)) is told


def test_a_queued_execution_is_cancelled_without_any_notice(api):
    execution = make_execution(make_node())
    assert cancel(api, execution.id).status_code == 200
    assert not AgentNotice.objects.exists()


def test_a_cancel_during_the_hand_over_tells_the_agent_as_soon_as_its_202_is_recorded(api, now):
    make_execution(make_node(now=now), now=now)
    [item] = queue.claim("worker", now, 1, lease_seconds=60, alive_seconds=7)
    assert cancel(api, item.execution.id).status_code == 200
    [later] = AgentNotice.objects.all()
    assert later.next_attempt_at >= now + timedelta(seconds=59)  # once the hand-over's lease is over
    assert record_outcome(item, AgentCallResult(202, {}), now) == "superseded"
    due_now = AgentNotice.objects.exclude(pk=later.pk).get()
    assert due_now.next_attempt_at == now and due_now.instance_id == item.instance_id


def test_cancelling_a_parent_cancels_its_active_descendants_bottom_up(api):
    node = make_node()
    base = timezone.now() - timedelta(minutes=5)
    parent = running(node, created_at=base)
    child = running(node, parent_execution_id=parent.id, run_id=parent.run_id, created_at=base + timedelta(seconds=1))
    grandchild = make_execution(node, parent_execution_id=child.id, run_id=parent.run_id)
    done = make_execution(node, parent_execution_id=parent.id, status="succeeded", run_id=parent.run_id)
    unrelated = running(node)
    answer = cancel(api, parent.id)
    assert answer.json()["cancelled"] == [grandchild.id, child.id, parent.id]
    statuses = dict(Execution.objects.values_list("id", "status"))
    assert [statuses[e.id] for e in (parent, child, grandchild, done, unrelated)] == [
        "cancelled", "cancelled", "cancelled", "succeeded", "running",
    ]  # fmt: skip
    assert "with an ancestor" in Execution.objects.get(pk=child.pk).error
    assert sorted(AgentNotice.objects.values_list("execution_id", flat=True)) == sorted([parent.id, child.id])


def test_a_whole_run_is_cancelled_by_its_id_and_only_what_the_key_may_steer(api):
    key, raw = auth.issue_key("client", policy.CLIENT)
    _, other = auth.issue_key("other", policy.CLIENT)
    node = make_node()
    root = running(node, owner_key_id=key.pk, submitted_by_id=key.pk)
    child = make_execution(node, run_id=root.run_id, parent_execution_id=root.id, owner_key_id=key.pk)
    answer = api.post(f"/api/v1/runs/{root.run_id}/cancel", headers={"X-API-Key": other})
    assert answer.status_code == 404  # another client's run is not even there
    answer = api.post(f"/api/v1/runs/{root.run_id}/cancel", headers={"X-API-Key": raw})
    assert answer.status_code == 200
    assert answer.json() == {"run_id": root.run_id, "cancelled": [child.id, root.id], "count": 2}
    assert "API key 'client'" in Execution.objects.get(pk=root.pk).error
    assert api.post("/api/v1/runs/run_nope/cancel", headers={"X-API-Key": raw}).status_code == 404


def test_restart_starts_the_same_target_with_the_same_input_in_a_new_run(api, now):
    node = make_node(reasoners=("work",))
    original = make_execution(node, status="failed", target_name="work", input={"n": 3}, completed_at=now)
    answer = api.post(f"/api/v1/executions/{original.id}/restart", {}, format="json")
    assert answer.status_code == 202
    fresh = Execution.objects.get(pk=answer.json()["execution_id"])
    assert (fresh.target, fresh.input, fresh.restarted_from, fresh.status) == (
        original.target,
        {"n": 3},
        original.id,
        "queued",
    )
    assert fresh.run_id != original.run_id
    assert api.get(f"/api/v1/executions/{fresh.id}").json()["restarted_from"] == original.id


def test_restart_may_change_the_input_and_keep_the_run_so_checkpoints_resume(api, now):
    node = make_node(reasoners=("work",))
    original = make_execution(node, status="cancelled", target_name="work", input={"n": 3}, completed_at=now)
    answer = api.post(f"/api/v1/executions/{original.id}/restart", {"input": {"n": 4}, "same_run": True}, format="json")
    fresh = Execution.objects.get(pk=answer.json()["execution_id"])
    assert (fresh.input, fresh.run_id) == ({"n": 4}, original.run_id)


@pytest.mark.parametrize(
    ("body", "message"),
    [({"input": [1]}, "input must be a JSON object"), ({"same_run": "yes"}, "same_run must be true or false")],
)
def test_a_bad_restart_is_a_400_and_creates_nothing(api, body, message):
    original = make_execution(make_node(reasoners=("work",)), status="failed", target_name="work")
    answer = api.post(f"/api/v1/executions/{original.id}/restart", body, format="json")
    assert answer.status_code == 400 and message in answer.json()["error"]
    assert Execution.objects.count() == 1


def test_restart_keeps_the_webhook_of_the_original(api, now):
    hook = make_delivery("https://hooks.example.com/af", now, secret="whsec_x", headers={"X-T": "1"})
    original = make_execution(
        make_node(reasoners=("work",)), id=hook.execution_id, target_name="work", webhook_registered=True
    )
    answer = api.post(f"/api/v1/executions/{original.id}/restart", {}, format="json")
    fresh = Execution.objects.get(pk=answer.json()["execution_id"])
    webhook = Webhook.objects.get(execution_id=fresh.id)
    assert fresh.webhook_registered and (webhook.url, webhook.headers) == ("https://hooks.example.com/af", {"X-T": "1"})
