"""The dispatcher: calling the agent (a real HTTP server), recording its answer, run_once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from executions import dispatcher, queue
from executions.dispatcher import ExecutionDispatcher, record_outcome
from executions.models import Execution, ExecutionEvent
from nodes.client import AgentCallResult
from nodes.models import Node
from tests.factories import make_execution, make_node, set_heartbeat
from tests.processes import wait_until
from webhooks.models import Delivery, Webhook

LEASE = 60.0
ALIVE = 7.0


@pytest.fixture
def retry_policy(settings):
    settings.AGENTFIELD_EXECUTION_RETRY_BASE_SECONDS = 2.0
    settings.AGENTFIELD_EXECUTION_RETRY_CAP_SECONDS = 60.0


def claim_one(now, **fields):
    """A queued execution of a live node, claimed (attempt 1 unless `attempt` says otherwise)."""
    node = fields.pop("node", None) or make_node(now=now, registered_at=now - timedelta(hours=1))
    execution = make_execution(node, now=now, **fields)
    [item] = queue.claim("worker", now, 1, lease_seconds=LEASE, alive_seconds=ALIVE)
    assert item.execution.id == execution.id
    return item


def events_of(execution_id: str) -> list[str]:
    return list(ExecutionEvent.objects.filter(execution_id=execution_id).values_list("type", flat=True))


# -- calling the agent --------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_agent_gets_the_bare_input_and_the_context_headers(now, stub_agent):
    node = make_node(now=now, base_url=stub_agent.url + "/", reasoners=("summarise",))
    item = claim_one(
        now,
        node=node,
        input={"items": ["a", "b"]},
        parent_execution_id="exec_parent",
        session_id="s-1",
        actor_id="user-9",
    )
    result = dispatcher.call_agent(item, timeout=5)
    assert result.status_code == 202
    [request] = stub_agent.requests
    assert request.path == "/reasoners/summarise"
    assert request.body == {"items": ["a", "b"]}
    headers = request.headers
    assert headers["X-Execution-ID"] == item.execution.id
    assert headers["X-Run-ID"] == headers["X-Workflow-ID"] == item.execution.run_id
    assert headers["X-Parent-Execution-ID"] == "exec_parent"
    assert headers["X-Session-ID"] == "s-1"
    assert headers["X-Actor-ID"] == "user-9"
    assert headers["Content-Type"] == "application/json"


@pytest.mark.django_db
def test_optional_headers_are_left_out_when_unset(now, stub_agent):
    item = claim_one(now, node=make_node(now=now, base_url=stub_agent.url))
    dispatcher.call_agent(item, timeout=5)
    headers = stub_agent.requests[0].headers
    assert "X-Parent-Execution-ID" not in headers
    assert "X-Session-ID" not in headers
    assert "X-Actor-ID" not in headers


@pytest.mark.django_db
def test_a_skill_is_called_at_its_skills_path(now, stub_agent):
    node = make_node(now=now, base_url=stub_agent.url, reasoners=(), skills=("shout",))
    item = claim_one(now, node=node, target_type="skill", target_name="shout")
    dispatcher.call_agent(item, timeout=5)
    assert stub_agent.requests[0].path == "/skills/shout"


@pytest.mark.django_db
def test_an_agent_that_is_not_listening_is_a_connection_error_value(now, stub_agent):
    item = claim_one(now, node=make_node(now=now, base_url="http://127.0.0.1:9"))
    result = dispatcher.call_agent(item, timeout=2)
    assert result.status_code is None
    assert "connection refused" in result.error


@pytest.mark.django_db
@pytest.mark.parametrize(
    "raw",
    [b'{"x": NaN}', b'{"x": Infinity}', b'{"x": 1e400}', b'{"x": "a\\u0000b"}'],
    ids=["nan", "inf", "1e400", "nul"],
)
def test_an_inline_result_postgresql_cannot_store_fails_the_execution_cleanly(now, stub_agent, raw):
    item = claim_one(now, node=make_node(now=now, base_url=stub_agent.url))
    stub_agent.status, stub_agent.raw = 200, raw
    assert record_outcome(item, dispatcher.call_agent(item, timeout=5), now) == "failed"
    fresh = Execution.objects.get(pk=item.execution.pk)
    assert fresh.status == "failed"
    assert "cannot be stored" in fresh.error


@pytest.mark.django_db
@pytest.mark.parametrize(
    "raw",
    [b"bad\x00input", b'{"detail": "bad\\u0000input"}', b'{"detail": "bad\\ud800input"}'],
    ids=["raw", "json", "surrogate"],
)
def test_an_agents_error_text_postgresql_cannot_store_is_cleaned_not_a_crash(now, stub_agent, raw):
    item = claim_one(now, node=make_node(now=now, base_url=stub_agent.url))
    stub_agent.status, stub_agent.raw = 422, raw
    assert record_outcome(item, dispatcher.call_agent(item, timeout=5), now) == "failed"
    fresh = Execution.objects.get(pk=item.execution.pk)
    assert fresh.status == "failed"
    assert "agent answered 422: bad" in fresh.error and "input" in fresh.error


# -- recording the answer -----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_202_marks_the_execution_running_on_that_instance(now):
    item = claim_one(now, node=make_node(now=now, instance_id="inst-42"))
    assert record_outcome(item, AgentCallResult(202, {"status": "processing"}), now) == "running"
    fresh = Execution.objects.get(pk=item.execution.pk)
    assert fresh.status == "running"
    assert fresh.node_instance_id == "inst-42"
    assert fresh.started_at == now
    assert fresh.lease_token is None
    assert events_of(fresh.id) == ["execution_started"]


@pytest.mark.django_db
def test_a_200_succeeds_with_the_body_and_strips_the_usage_key(now):
    item = claim_one(now)
    body = {"answer": 42, "__agentfield_usage__": {"total_tokens": 91}}
    assert record_outcome(item, AgentCallResult(200, body, duration_ms=12), now) == "succeeded"
    fresh = Execution.objects.get(pk=item.execution.pk)
    assert fresh.status == "succeeded"
    assert fresh.result == {"answer": 42}
    assert fresh.duration_ms == 12
    assert fresh.completed_at == now
    assert fresh.started_at == now - timedelta(milliseconds=12)
    assert events_of(fresh.id) == ["execution_completed"]


@pytest.mark.django_db
@pytest.mark.parametrize("body", [[1, 2], "text", 7, None])
def test_a_200_with_a_non_object_body_keeps_it_as_the_result(now, body):
    item = claim_one(now)
    record_outcome(item, AgentCallResult(200, body), now)
    fresh = Execution.objects.get(pk=item.execution.pk)
    assert (fresh.status, fresh.result) == ("succeeded", body)


@pytest.mark.django_db
def test_a_200_whose_body_cannot_be_stored_fails_saying_why(now):
    item = claim_one(now)
    assert record_outcome(item, AgentCallResult(200, {"text": "a\x00b"}), now) == "failed"
    fresh = Execution.objects.get(pk=item.execution.pk)
    assert fresh.status == "failed"
    assert "NUL" in fresh.error


@pytest.mark.django_db
@pytest.mark.parametrize("code", [400, 404, 409, 422])
def test_a_4xx_fails_with_the_agents_message_and_is_not_retried(now, code):
    item = claim_one(now)
    result = AgentCallResult(code, {"detail": "Field 'items' must be a list"})
    assert record_outcome(item, result, now) == "failed"
    fresh = Execution.objects.get(pk=item.execution.pk)
    assert fresh.status == "failed"
    assert f"agent answered {code}" in fresh.error
    assert "Field 'items' must be a list" in fresh.error
    assert fresh.attempt == 1
    assert fresh.started_at is not None
    assert events_of(fresh.id) == ["execution_failed"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "result",
    [
        AgentCallResult(500, "Internal Server Error"),
        AgentCallResult(503, {"error": "overloaded"}),
        AgentCallResult(408, None),
        AgentCallResult(429, None),
        AgentCallResult(None, error="agent call failed: connection refused"),
        AgentCallResult(None, error="agent call timed out: ReadTimeout"),
    ],
)
def test_a_5xx_or_no_answer_is_requeued_with_backoff(now, retry_policy, result):
    item = claim_one(now)
    assert record_outcome(item, result, now) == "retrying"
    fresh = Execution.objects.get(pk=item.execution.pk)
    assert fresh.status == "queued"
    assert fresh.run_at == now + timedelta(seconds=2)
    assert fresh.lease_token is None
    assert fresh.error == result.describe()
    assert events_of(fresh.id) == ["execution_retrying"]


@pytest.mark.django_db
def test_a_refused_connection_right_after_registration_is_retried_soon_without_costing_an_attempt(now):
    # The SDK registers before its HTTP server listens: that is not the agent failing.
    item = claim_one(now, node=make_node(now=now - timedelta(seconds=1)))
    result = AgentCallResult(None, error="agent call failed: connection refused")
    assert record_outcome(item, result, now) == "not_ready"
    fresh = Execution.objects.get(pk=item.execution.pk)
    assert (fresh.status, fresh.attempt, fresh.lease_token) == ("queued", 0, None)
    assert now < fresh.run_at <= now + timedelta(seconds=1)


@pytest.mark.django_db
def test_a_5xx_right_after_registration_still_costs_an_attempt(now, retry_policy):
    item = claim_one(now, node=make_node(now=now - timedelta(seconds=1)))
    assert record_outcome(item, AgentCallResult(500, "boom"), now) == "retrying"
    assert Execution.objects.get(pk=item.execution.pk).attempt == 1


@pytest.mark.django_db
def test_the_backoff_doubles_with_each_attempt(now, retry_policy):
    item = claim_one(now, attempt=2)  # the claim makes it attempt 3
    record_outcome(item, AgentCallResult(500, "boom"), now)
    assert Execution.objects.get(pk=item.execution.pk).run_at == now + timedelta(seconds=8)


@pytest.mark.django_db
def test_a_5xx_on_the_last_attempt_fails_saying_it_gave_up(now, retry_policy):
    item = claim_one(now, attempt=2, max_attempts=3)
    assert record_outcome(item, AgentCallResult(502, "bad gateway"), now) == "failed"
    fresh = Execution.objects.get(pk=item.execution.pk)
    assert fresh.status == "failed"
    assert "agent answered 502" in fresh.error and "gave up after 3 attempts" in fresh.error


@pytest.mark.django_db
def test_retries_run_until_the_attempt_limit_then_fail(now, retry_policy):
    node = make_node(now=now, registered_at=now - timedelta(hours=1))
    execution = make_execution(node, now=now, max_attempts=4)
    moment, outcomes = now, []
    for _ in range(6):
        Execution.objects.filter(pk=execution.pk).update(run_at=moment)
        items = queue.claim("worker", moment, 1, lease_seconds=LEASE, alive_seconds=ALIVE + 3600)
        if not items:
            break
        outcomes.append(record_outcome(items[0], AgentCallResult(None, error="agent call failed: refused"), moment))
        moment += timedelta(minutes=2)
    assert outcomes == ["retrying", "retrying", "retrying", "failed"]
    fresh = Execution.objects.get(pk=execution.pk)
    assert (fresh.status, fresh.attempt) == ("failed", 4)


def expired_and_reclaimed(item, now):
    """Let `item`'s lease run out and have another dispatcher claim the execution again."""
    later = now + timedelta(seconds=LEASE) + queue.LEASE_GRACE
    set_heartbeat(Node.objects.get(pk=item.execution.node_id), later)
    [again] = queue.claim("other-worker", later, 1, lease_seconds=LEASE, alive_seconds=ALIVE)
    assert again.execution.lease_token != item.execution.lease_token
    return again


@pytest.mark.django_db
@pytest.mark.parametrize(
    "result",
    [
        AgentCallResult(202, {"status": "processing"}),
        AgentCallResult(200, {"answer": 1}),
        AgentCallResult(422, {"detail": "bad"}),
        AgentCallResult(500, "boom"),
        AgentCallResult(None, error="agent call failed: refused"),
    ],
    ids=["202", "200", "422", "500", "refused"],
)
def test_an_outcome_under_a_stale_lease_is_superseded(now, result):
    stale = claim_one(now)
    current = expired_and_reclaimed(stale, now)
    assert record_outcome(stale, result, now + timedelta(seconds=LEASE + 11)) == "superseded"
    fresh = Execution.objects.get(pk=stale.execution.pk)
    assert fresh.status == "queued"
    assert fresh.lease_token == current.execution.lease_token
    assert record_outcome(current, AgentCallResult(202, {}), now + timedelta(seconds=LEASE + 2)) == "running"


@pytest.mark.django_db
def test_a_stale_final_failure_never_fails_an_execution_another_dispatcher_handed_over(now, retry_policy):
    stale = claim_one(now, max_attempts=1)
    current = expired_and_reclaimed(stale, now)
    record_outcome(current, AgentCallResult(202, {}), now + timedelta(seconds=LEASE + 1))
    assert record_outcome(stale, AgentCallResult(500, "boom"), now + timedelta(seconds=LEASE + 2)) == "superseded"
    assert Execution.objects.get(pk=stale.execution.pk).status == "running"


@pytest.mark.django_db
def test_an_outcome_after_a_cancel_is_superseded(now, api):
    item = claim_one(now)
    assert api.post(f"/api/v1/executions/{item.execution.id}/cancel").status_code == 200
    assert record_outcome(item, AgentCallResult(202, {}), now) == "superseded"
    assert record_outcome(item, AgentCallResult(200, {"late": True}), now) == "superseded"
    fresh = Execution.objects.get(pk=item.execution.pk)
    assert fresh.status == "cancelled" and fresh.result is None


@pytest.mark.django_db
def test_a_202_after_the_agents_callback_already_finished_it_is_superseded(now, api):
    item = claim_one(now)
    response = api.post(f"/api/v1/executions/{item.execution.id}/status", {"status": "succeeded"}, format="json")
    assert response.status_code == 200
    assert record_outcome(item, AgentCallResult(202, {}), now) == "superseded"
    assert Execution.objects.get(pk=item.execution.pk).status == "succeeded"


# -- the loop -----------------------------------------------------------------------------------


@pytest.fixture
def loop(transactional_db):
    instance = ExecutionDispatcher("test-dispatcher", concurrency=4)
    yield instance
    instance.drain(timeout=5)


def test_run_once_with_nothing_due_is_a_few_queries(loop, now, django_assert_num_queries):
    make_execution(now=now, status="succeeded")
    # recovery: BEGIN, lost, abandoned, COMMIT; the nodes with concurrency limits; then the claim
    with django_assert_num_queries(6):
        assert loop.run_once(now) is False
    with django_assert_num_queries(1):  # recovery and the limits are read at most once a second: only the claim
        assert loop.run_once(now) is False


def test_run_once_hands_due_work_to_the_agent_and_records_the_202(loop, stub_agent):
    now = timezone.now()
    node = make_node(now=now, base_url=stub_agent.url, instance_id="inst-9")
    executions = [make_execution(node, now=now) for _ in range(3)]
    assert loop.run_once(now) is True
    assert loop.in_flight == 3
    wait_until(lambda: len(stub_agent.requests) == 3, timeout=10, message="three agent calls")
    loop.drain(timeout=10)
    assert loop.in_flight == 0
    rows = Execution.objects.filter(pk__in=[e.pk for e in executions])
    assert {(row.status, row.node_instance_id, row.attempt) for row in rows} == {("running", "inst-9", 1)}
    assert {request.headers["X-Execution-ID"] for request in stub_agent.requests} == {e.id for e in executions}


def test_run_once_records_an_inline_200_result(loop, stub_agent):
    now = timezone.now()
    stub_agent.status, stub_agent.body = 200, {"echo": "hi", "__agentfield_usage__": {}}
    execution = make_execution(make_node(now=now, base_url=stub_agent.url), now=now)
    loop.run_once(now)
    wait_until(lambda: stub_agent.requests, timeout=10, message="the agent call")
    loop.drain(timeout=10)
    fresh = Execution.objects.get(pk=execution.pk)
    assert (fresh.status, fresh.result) == ("succeeded", {"echo": "hi"})


def test_run_once_claims_no_more_than_its_free_slots(loop, stub_agent):
    now = timezone.now()
    node = make_node(now=now, base_url=stub_agent.url)
    for _ in range(6):
        make_execution(node, now=now)
    loop.run_once(now)
    assert loop.in_flight == 4
    assert Execution.objects.filter(attempt=0).count() == 2


def test_once_a_claim_found_the_queue_empty_a_call_ending_claims_again_only_after_news(
    transactional_db, stub_agent, settings
):
    """Under load half the claims were empty: a round after a call ended claimed, though nothing had
    been announced. Now it claims after a NOTIFY (`heard` moves), or once the poll interval passed."""
    settings.AGENTFIELD_DISPATCHER_POLL_SECONDS = 3600
    heard = [0]
    loop = ExecutionDispatcher("test-dispatcher", concurrency=4, heard=lambda: heard[0])
    try:
        stub_agent.status = 200
        now = timezone.now()
        node = make_node(now=now, base_url=stub_agent.url)
        first = make_execution(node, now=now)
        assert loop.run_once(now) is True  # 1 of 4 slots asked for was due: the queue is empty now
        _rounds_until(loop, now, lambda: loop.in_flight == 0)  # the call ended and was recorded
        later = make_execution(node, now=now)  # committed without a NOTIFY reaching this loop
        loop.run_once(now)
        assert Execution.objects.get(pk=later.pk).attempt == 0
        heard[0] += 1  # the NOTIFY of its submit
        loop.run_once(now)
        assert Execution.objects.get(pk=later.pk).attempt == 1
        _rounds_until(loop, now, lambda: loop.in_flight == 0)
        polled = make_execution(node, now=now)
        loop.run_once(now)
        assert Execution.objects.get(pk=polled.pk).attempt == 0
        settings.AGENTFIELD_DISPATCHER_POLL_SECONDS = 0  # the poll interval has passed
        loop.run_once(now)
        assert Execution.objects.get(pk=polled.pk).attempt == 1
        assert Execution.objects.get(pk=first.pk).status == "succeeded"
    finally:
        loop.drain(timeout=10)


def test_a_claim_that_filled_every_free_slot_claims_the_rest_as_calls_end(transactional_db, stub_agent, settings):
    settings.AGENTFIELD_DISPATCHER_POLL_SECONDS = 3600
    loop = ExecutionDispatcher("test-dispatcher", concurrency=4, heard=lambda: 0)  # no NOTIFY ever
    try:
        stub_agent.status = 200
        now = timezone.now()
        node = make_node(now=now, base_url=stub_agent.url)
        ids = [make_execution(node, now=now).pk for _ in range(6)]
        loop.run_once(now)
        assert loop.in_flight == 4  # every free slot taken: more may be due
        _rounds_until(loop, now, lambda: Execution.objects.filter(pk__in=ids, status="succeeded").count() == 6)
    finally:
        loop.drain(timeout=10)


def _rounds_until(loop: ExecutionDispatcher, now, done) -> None:
    def round_then_check() -> bool:
        loop.run_once(now)
        return done()

    wait_until(round_then_check, timeout=20, message="the dispatcher's rounds to get there")


def test_run_once_gives_up_on_an_execution_whose_dispatchers_keep_dying(loop, stub_agent):
    now = timezone.now()
    execution = make_execution(make_node(now=now, base_url=stub_agent.url), now=now, attempt=5, max_attempts=5)
    loop.run_once(now)
    assert stub_agent.requests == []
    fresh = Execution.objects.get(pk=execution.pk)
    assert fresh.status == "failed"
    assert "interrupted" in fresh.error


# -- batched recording --------------------------------------------------------------------------


@pytest.mark.django_db
def test_record_outcomes_applies_a_mixed_batch(now, retry_policy):
    node = make_node(now=now, registered_at=now - timedelta(hours=1), instance_id="inst-b")
    for _ in range(4):
        make_execution(node, now=now)
    items = queue.claim("worker", now, 4, lease_seconds=LEASE, alive_seconds=ALIVE)
    answers = [
        AgentCallResult(202, {"status": "processing"}),
        AgentCallResult(200, {"answer": 1, "__agentfield_usage__": {"tokens": 3}}, duration_ms=40),
        AgentCallResult(422, {"detail": "bad input"}),
        AgentCallResult(503, "busy"),
    ]
    counts = dispatcher.record_outcomes(list(zip(items, answers, strict=True)), now)
    assert counts == {"running": 1, "succeeded": 1, "failed": 1, "retrying": 1}
    rows = [Execution.objects.get(pk=item.execution.pk) for item in items]
    assert [row.status for row in rows] == ["running", "succeeded", "failed", "queued"]
    assert rows[0].node_instance_id == "inst-b"
    assert rows[1].result == {"answer": 1}
    assert rows[1].duration_ms == 40
    assert rows[1].started_at == now - timedelta(milliseconds=40)
    assert rows[1].completed_at == now
    assert "bad input" in rows[2].error
    assert [events_of(row.id) for row in rows] == [
        ["execution_started"],
        ["execution_completed"],
        ["execution_failed"],
        ["execution_retrying"],
    ]


@pytest.mark.django_db
def test_a_batch_of_successes_with_and_without_webhooks_gets_one_event_each_in_id_order(now):
    node = make_node(now=now, registered_at=now - timedelta(hours=1))
    for index in range(5):
        make_execution(node, now=now, webhook_registered=index == 2)
    items = queue.claim("worker", now, 5, lease_seconds=LEASE, alive_seconds=ALIVE)
    hooked = next(item for item in items if item.execution.webhook_registered)
    Webhook.objects.create(execution_id=hooked.execution.id, url="https://hooks.example.com/x", created_at=now)
    before = ExecutionEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    answers = [AgentCallResult(200, {"n": index}) for index in range(5)]
    counts = dispatcher.record_outcomes(list(zip(items, answers, strict=True)), now)
    assert counts == {"running": 0, "succeeded": 5}
    completed = list(ExecutionEvent.objects.filter(id__gt=before).order_by("id"))
    assert [event.id for event in completed] == list(range(before + 1, before + 6))
    assert {event.execution_id for event in completed} == {item.execution.id for item in items}
    for event in completed:
        execution = Execution.objects.get(pk=event.execution_id)
        assert (event.type, event.status, event.target, event.run_id) == (
            "execution_completed",
            "succeeded",
            execution.target,
            execution.run_id,
        )
    assert list(Delivery.objects.values_list("execution_id", flat=True)) == [hooked.execution.id]


@pytest.mark.django_db
def test_a_batch_whose_leases_all_went_stale_records_no_event(now):
    stale = [claim_one(now), claim_one(now)]
    for item in stale:
        expired_and_reclaimed(item, now)
    before = ExecutionEvent.objects.count()
    dispatcher.record_outcomes([(item, AgentCallResult(200, {})) for item in stale], now + timedelta(seconds=61))
    assert ExecutionEvent.objects.count() == before


@pytest.mark.django_db
def test_record_outcomes_supersedes_answers_under_a_stale_lease(now):
    stale = [claim_one(now), claim_one(now)]
    for item in stale:
        expired_and_reclaimed(item, now)
    later = now + timedelta(seconds=LEASE + 1)
    answers = [AgentCallResult(202, {}), AgentCallResult(200, {"late": True})]
    counts = dispatcher.record_outcomes(list(zip(stale, answers, strict=True)), later)
    assert counts == {"running": 0, "succeeded": 0}
    rows = [Execution.objects.get(pk=item.execution.pk) for item in stale]
    assert [(row.status, row.result) for row in rows] == [("queued", None), ("queued", None)]
    assert all(row.lease_token is not None for row in rows)


@pytest.mark.django_db
def test_record_outcomes_enqueues_the_webhook_of_an_inline_success(now):
    item = claim_one(now, webhook_registered=True)
    Webhook.objects.create(execution_id=item.execution.id, url="https://hooks.example.com/x", created_at=now)
    dispatcher.record_outcomes([(item, AgentCallResult(200, {"v": 1}))], now)
    assert Delivery.objects.get(execution_id=item.execution.id).event == "execution.completed"
