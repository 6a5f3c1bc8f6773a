"""Approval gates through the API: pause, decide (API, webhook, expiry), and the decision reaching the agent."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from executions import approvals, notices, queue, recovery
from executions.dispatcher import record_outcome
from executions.models import AgentNotice, Approval, Execution, ExecutionEvent, TraceEntry
from nodes import auth, policy
from nodes.client import AgentCallResult
from nodes.models import Node
from tests.factories import make_execution, make_node, set_heartbeat
from webhooks import services as webhook_services
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db

SECRET = "approval-tool-secret"


@pytest.fixture
def world(stub_agent):
    agent_key, agent = auth.issue_key("agent", policy.AGENT)
    client_key, client = auth.issue_key("client", policy.CLIENT)
    node = make_node("writer", base_url=stub_agent.url, owner_key_id=agent_key.pk)
    execution = make_execution(
        node, status="running", node_instance_id="instance-1", owner_key_id=client_key.pk, submitted_by_id=client_key.pk
    )
    return {
        "agent": agent,
        "client": client,
        "execution": execution,
        "stub": stub_agent,
        "callback": f"{stub_agent.url}/webhooks/approval",
    }


def post(key: str, path: str, body=None, **headers):
    raw = json.dumps(body if body is not None else {})
    return APIClient().post(path, data=raw, content_type="application/json", headers={"X-API-Key": key, **headers})


def pause(world, request_id: str = "req-1", **extra):
    body = {"approval_request_id": request_id, "expires_in_hours": 72, "callback_url": world["callback"],
            "approval_request_url": "https://approvals.example.com/req-1", **extra}  # fmt: skip
    return post(world["agent"], f"/api/v1/agents/writer/executions/{world['execution'].id}/request-approval", body)


def decide(world, body, key: str | None = None):
    return post(key or world["client"], f"/api/v1/executions/{world['execution'].id}/approval-response", body)


def status_of(world) -> str:
    return Execution.objects.get(pk=world["execution"].pk).status


def deliver_all(until, timeout: float = 15.0) -> None:
    worker = notices.NoticeWorker()
    deadline = time.monotonic() + timeout
    try:
        while not until():
            assert time.monotonic() < deadline, "notice not delivered in time"
            worker.run_once()
            time.sleep(0.02)
    finally:
        worker.close()


def test_the_sdks_pause_makes_the_execution_wait(world):
    answer = pause(world)
    assert answer.status_code == 200
    assert answer.json() | {"expires_at": None} == {
        "approval_request_id": "req-1", "approval_request_url": "https://approvals.example.com/req-1",
        "status": "pending", "expires_at": None,
    }  # fmt: skip
    assert status_of(world) == "waiting"
    event = ExecutionEvent.objects.filter(execution_id=world["execution"].id).latest("id")
    assert event.type == "execution_waiting" and event.data["approval_request_id"] == "req-1"
    assert pause(world).status_code == 200  # the SDK's retry of the same request changes nothing
    assert Approval.objects.count() == 1
    status = APIClient().get(
        f"/api/v1/agents/writer/executions/{world['execution'].id}/approval-status",
        headers={"X-API-Key": world["agent"]},
    )
    assert status.json()["status"] == "pending" and status.json()["responded_at"] is None


@pytest.mark.parametrize(
    ("extra", "status", "message"),
    [
        ({"approval_request_id": ""}, 400, "approval_request_id"),
        ({"expires_in_hours": 0}, 400, "expires_in_hours"),
        ({"callback_url": "http://169.254.169.254/latest"}, 400, "callback_url"),
        ({"callback_url": "http://127.0.0.1:1/webhooks/approval"}, 400, "callback_url"),
        ({"approval_request_url": "javascript:alert(1)"}, 400, "approval_request_url"),
    ],
)
def test_a_bad_pause_is_refused_and_changes_nothing(world, extra, status, message):
    answer = pause(world, **extra)
    assert answer.status_code == status and message in answer.json()["error"]
    assert status_of(world) == "running" and not Approval.objects.exists()


def test_only_the_agent_serving_it_may_pause_an_execution(world):
    _, other = auth.issue_key("other-agent", policy.AGENT)
    path = f"/api/v1/agents/writer/executions/{world['execution'].id}/request-approval"
    assert post(other, path, {"approval_request_id": "x"}).status_code == 404
    assert post(world["agent"], f"/api/v1/agents/elsewhere/executions/{world['execution'].id}/request-approval",
                {"approval_request_id": "x"}).status_code == 404  # fmt: skip
    Execution.objects.filter(pk=world["execution"].pk).update(status="queued")
    assert pause(world).status_code == 409


def test_a_decision_resumes_the_execution_and_reaches_the_paused_reasoner(world):
    pause(world)
    world["stub"].status, world["stub"].body = 200, {"status": "received", "resolved": True}
    answer = decide(world, {"decision": "approve", "feedback": "ship it", "response": {"edits": 0}})
    assert answer.status_code == 200
    assert answer.json()["status"] == "approved" and answer.json()["decided_by"] == "API key 'client'"
    assert status_of(world) == "running"
    deliver_all(lambda: AgentNotice.objects.filter(kind="approval", status="delivered").exists())
    [sent] = [r for r in world["stub"].requests if r.path == "/webhooks/approval"]
    assert sent.body == {"execution_id": world["execution"].id, "approval_request_id": "req-1", "decision": "approved",
                         "feedback": "ship it", "response": {"edits": 0}}  # fmt: skip
    again = decide(world, {"decision": "reject"})
    assert again.status_code == 409 and "already approved by API key 'client'" in again.json()["error"]


def test_a_decision_nobody_takes_yet_is_sent_again(world):
    pause(world)
    world["stub"].status, world["stub"].body = 200, {"status": "received", "resolved": False}
    decide(world, {"decision": "request_changes", "feedback": "shorter"})
    deliver_all(lambda: len(world["stub"].requests) >= 1 and AgentNotice.objects.get().attempts == 1)
    notice = AgentNotice.objects.get()
    assert notice.status == "pending" and notice.next_attempt_at > timezone.now()


def test_a_reasoner_run_again_gets_its_decision_when_it_pauses_again(world):
    pause(world)
    decide(world, {"decision": "reject", "feedback": "no"})
    answer = pause(world)  # the agent restarted and the re-dispatched reasoner paused with the same id
    assert answer.json()["status"] == "rejected" and status_of(world) == "running"
    assert AgentNotice.objects.filter(kind="approval").count() == 2


def test_a_decision_for_a_wait_that_ended_is_a_409_that_says_why(world):
    pause(world)
    post(world["client"], f"/api/v1/executions/{world['execution'].id}/cancel")
    answer = decide(world, {"decision": "approved"})
    assert answer.status_code == 409 and "the wait already ended" in answer.json()["error"]
    assert Approval.objects.get().status == "pending"


@pytest.mark.parametrize("body", [{"decision": "maybe"}, {"decision": "approved", "feedback": 3}, {}])
def test_a_bad_decision_is_a_400(world, body):
    pause(world)
    assert decide(world, body).status_code == 400 and status_of(world) == "waiting"


def test_another_client_cannot_decide(world):
    _, other = auth.issue_key("other-client", policy.CLIENT)
    pause(world)
    assert decide(world, {"decision": "approved"}, key=other).status_code == 404


def test_the_control_plane_enforces_expiry(world):
    pause(world, expires_in_hours=0.0001)
    assert approvals.expire_due(timezone.now() + timedelta(seconds=2)) == 1
    approval = Approval.objects.get()
    assert approval.status == "expired" and approval.decided_by == "the control plane (expired)"
    assert status_of(world) == "running"
    assert AgentNotice.objects.get(kind="approval").body["decision"] == "expired"


def test_a_waiting_execution_is_not_reaped_when_its_agent_goes_silent(world):
    pause(world)
    set_heartbeat(Node.objects.get(pk=world["execution"].node_id), timezone.now() - timedelta(hours=1))
    assert recovery.recover(timezone.now(), alive_seconds=7, grace_seconds=300) == 0
    assert status_of(world) == "waiting"


@override_settings(AGENTFIELD_APPROVAL_WEBHOOK_SECRET=SECRET)
def test_a_signed_webhook_from_an_approval_tool_decides(world):
    pause(world)
    raw = json.dumps({"requestId": "req-1", "decision": "approve", "feedback": "ok"}).encode()
    stamp = int(time.time())
    api = APIClient()
    bad = api.post("/api/v1/webhooks/approval-response", data=raw, content_type="application/json",
                   headers={"X-AgentField-Signature": approvals.signature("wrong", stamp, raw)})  # fmt: skip
    assert bad.status_code == 401 and bad.json()["code"] == "bad_signature"
    old = api.post("/api/v1/webhooks/approval-response", data=raw, content_type="application/json",
                   headers={"X-AgentField-Signature": approvals.signature(SECRET, stamp - 600, raw)})  # fmt: skip
    assert old.status_code == 401  # a replay after five minutes
    good = api.post("/api/v1/webhooks/approval-response", data=raw, content_type="application/json",
                    headers={"X-AgentField-Signature": approvals.signature(SECRET, stamp, raw)})  # fmt: skip
    assert good.status_code == 200 and good.json()["decided_by"] == "approval webhook"
    assert status_of(world) == "running"


def test_the_webhook_route_is_off_without_a_secret(world):
    answer = APIClient().post("/api/v1/webhooks/approval-response", data=b"{}", content_type="application/json")
    assert answer.status_code == 404 and answer.json()["code"] == "not_configured"


def test_a_parent_reports_that_it_awaits_a_paused_child(world):
    path = f"/api/v1/agents/writer/executions/{world['execution'].id}/awaiter-status"
    answer = post(world["agent"], path, {"status": "waiting", "reason": "child paused"})
    assert answer.status_code == 200
    assert TraceEntry.objects.get(execution_id=world["execution"].id).message == "awaiter waiting: child paused"
    assert post(world["agent"], path, {"status": "sleeping"}).status_code == 400


@pytest.mark.parametrize(
    ("raw", "decision"),
    [
        ("approve", "approved"),
        (" Deny ", "rejected"),
        ("request_changes", "request_changes"),
        ("maybe", None),
        (3, None),
    ],
)
def test_decisions_are_normalised(raw, decision):
    assert approvals.normalize_decision(raw) == decision


def test_signatures_are_checked_in_constant_form():
    raw = b'{"a":1}'
    header = approvals.signature(SECRET, 1000, raw)
    assert approvals.verify_signature(SECRET, header, raw, now=1100)
    assert not approvals.verify_signature(SECRET, header, raw + b" ", now=1100)
    assert not approvals.verify_signature(SECRET, header, raw, now=1400)
    assert not approvals.verify_signature(SECRET, "v1=abc", raw, now=1000)
    assert not approvals.verify_signature(SECRET, "t=x,v1=abc", raw, now=1000)


def test_a_reasoner_may_pause_before_its_dispatcher_recorded_the_202(stub_agent, now):
    agent_key, agent = auth.issue_key("agent", policy.AGENT)
    make_execution(make_node("fast", now=now, base_url=stub_agent.url, owner_key_id=agent_key.pk), now=now)
    [item] = queue.claim("worker", now, 1, lease_seconds=60, alive_seconds=7)
    path = f"/api/v1/agents/fast/executions/{item.execution.id}/request-approval"
    assert post(agent, path, {"approval_request_id": "quick"}).status_code == 200
    assert Execution.objects.get(pk=item.execution.pk).status == "waiting"
    assert record_outcome(item, AgentCallResult(202, {}), now) == "superseded"
    fresh = Execution.objects.get(pk=item.execution.pk)
    assert (fresh.status, fresh.lease_token) == ("waiting", None)


def _with_webhook(world, events):
    execution = world["execution"]
    Execution.objects.filter(pk=execution.pk).update(webhook_registered=True)
    spec = webhook_services.parse_spec({"url": "https://hooks.example.com/af", "events": events})
    webhook_services.register(execution.id, spec, timezone.now())


def test_a_webhook_that_opted_in_hears_execution_waiting(world):
    _with_webhook(world, ["execution.waiting"])
    pause(world)
    delivery = Delivery.objects.get(execution_id=world["execution"].id)
    body = json.loads(bytes(delivery.body))
    assert (delivery.event, body["event"], body["status"]) == ("execution.waiting",) * 2 + ("waiting",)
    assert body["approval_request_id"] == "req-1" and body["approval_request_url"].endswith("req-1")


def test_a_webhook_that_did_not_opt_in_hears_only_the_end(world):
    _with_webhook(world, [])
    pause(world)
    assert not Delivery.objects.filter(execution_id=world["execution"].id).exists()
