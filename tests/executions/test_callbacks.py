"""The agent's reports: status callbacks, logs, step events, notes; and the cancel route."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import DatabaseError, connection
from django.utils import timezone

from executions import callbacks, queue
from executions.dispatcher import ExecutionDispatcher, record_outcome
from executions.exceptions import ExecutionNotFound, InvalidTransition
from executions.models import Execution, ExecutionEvent, TraceEntry
from nodes.client import AgentCallResult
from tests.factories import make_execution, make_node
from tests.processes import wait_until
from webhooks.models import Delivery, Webhook

pytestmark = pytest.mark.django_db


def running(node=None, **fields) -> Execution:
    now = timezone.now()
    values = {"status": "running", "attempt": 1, "started_at": now, "node_instance_id": "instance-1"}
    values.update(fields)
    return make_execution(node, now=now, **values)


def callback(api, execution_id: str, body):
    raw = body if isinstance(body, str) else json.dumps(body)
    return api.post(f"/api/v1/executions/{execution_id}/status", data=raw, content_type="application/json")


def event_types(execution: Execution) -> list[str]:
    return list(ExecutionEvent.objects.filter(execution_id=execution.id).values_list("type", flat=True))


def register_webhook(execution: Execution) -> None:
    Webhook.objects.create(execution_id=execution.id, url="https://hooks.example.com/x", created_at=timezone.now())
    Execution.objects.filter(pk=execution.pk).update(webhook_registered=True)
    execution.webhook_registered = True


# -- status vocabulary --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("succeeded", "succeeded"),
        ("completed", "succeeded"),
        ("Completed", "succeeded"),
        ("success", "succeeded"),
        ("done", "succeeded"),
        ("ok", "succeeded"),
        ("  SUCCEEDED  ", "succeeded"),
        ("failed", "failed"),
        ("FAILED", "failed"),
        ("error", "failed"),
        ("failure", "failed"),
        ("errored", "failed"),
        ("timeout", "timeout"),
        ("TIMED_OUT", "timeout"),
    ],
)
def test_terminal_aliases_are_normalised(api, raw, stored):
    execution = running()
    response = callback(api, execution.id, {"status": raw, "result": {"v": 1}, "error": "boom"})
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == stored
    execution.refresh_from_db()
    assert execution.status == stored
    assert execution.completed_at is not None


@pytest.mark.parametrize("raw", ["cancelled", "canceled", "cancel", "CANCELED"])
def test_cancel_aliases_cancel_a_queued_execution(api, raw):
    execution = make_execution()
    response = callback(api, execution.id, {"status": raw})
    assert response.status_code == 200
    execution.refresh_from_db()
    assert execution.status == "cancelled"


@pytest.mark.parametrize("raw", ["running", "processing", "in_progress", "waiting", "wait", "queued", "pending"])
def test_non_terminal_statuses_keep_a_running_execution_running(api, raw):
    execution = running()
    response = callback(api, execution.id, {"status": raw, "progress": 40})
    assert response.status_code == 200
    execution.refresh_from_db()
    assert execution.status == "running"
    assert execution.progress == 40
    assert execution.completed_at is None


def test_a_progress_callback_does_not_mark_a_queued_execution_running(api):
    # Only a dispatcher that handed the work to an agent instance may mark it running: a running
    # row without an instance looks lost to the reaper, and one that was never sent is stuck.
    execution = make_execution()
    response = callback(api, execution.id, {"status": "running", "progress": 10})
    assert response.status_code == 200
    execution.refresh_from_db()
    assert execution.status == "queued"
    assert execution.progress == 10


@pytest.mark.parametrize("raw", ["custom-status", "unknown", "", "   ", 7, None, ["succeeded"]])
def test_an_unsupported_status_is_400(api, raw):
    execution = running()
    response = callback(api, execution.id, {"status": raw})
    assert response.status_code == 400
    assert "unsupported status" in response.json()["error"]
    execution.refresh_from_db()
    assert execution.status == "running"


def test_an_unsupported_status_names_the_raw_value(api):
    response = callback(api, running().id, {"status": "custom-status"})
    assert "custom-status" in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([{"status": "succeeded"}], "JSON object"),
        ('"succeeded"', "JSON object"),
        ("{", "malformed JSON"),
        ({"status": "failed", "error": {"msg": "x"}}, "error must be a string"),
        ({"status": "succeeded", "duration_ms": -1}, "duration_ms"),
        ({"status": "succeeded", "duration_ms": "12"}, "duration_ms"),
        ({"status": "succeeded", "duration_ms": True}, "duration_ms"),
        ({"status": "succeeded", "duration_ms": 1e30}, "duration_ms"),
        ({"status": "succeeded", "duration_ms": 2**62}, "duration_ms"),
        ({"status": "running", "progress": "half"}, "progress"),
        ({"status": "running", "progress": 2**40}, "progress"),
        ({"status": "succeeded", "result": {"x": "a\u0000b"}}, "NUL"),
        ('{"status": "succeeded", "result": 1e999}', "finite"),
    ],
)
def test_a_bad_callback_body_is_400_and_changes_nothing(api, body, message):
    execution = running()
    response = callback(api, execution.id, body)
    assert response.status_code == 400, response.content
    assert message in response.json()["error"]
    execution.refresh_from_db()
    assert execution.status == "running"
    assert event_types(execution) == []


def test_a_callback_for_an_unknown_execution_is_404(api):
    response = callback(api, "exec_nope", {"status": "succeeded"})
    assert response.status_code == 404
    assert "not found" in response.json()["error"]


def test_a_callback_for_an_over_long_execution_id_is_404(api):
    assert callback(api, "e" * 500, {"status": "succeeded"}).status_code == 404


# -- first terminal status wins -----------------------------------------------------------------


def test_the_sdk_success_callback_stores_result_duration_and_completion(api):
    execution = running()
    body = {
        "status": "succeeded",
        "result": {"value": 14},
        "duration_ms": 1503,
        "completed_at": "2026-11-23T01:37:32.936366+00:00",
        "execution_id": execution.id,
        "reasoner": "echo",
        "usage": {"total_tokens": 91},
    }
    response = callback(api, execution.id, body)
    assert response.status_code == 200
    assert response.json()["result"] == {"value": 14}
    execution.refresh_from_db()
    assert execution.status == "succeeded"
    assert execution.result == {"value": 14}
    # From the recorded start to the end (the agent's 1503 covers only its own attempt).
    assert execution.duration_ms == int((execution.completed_at - execution.started_at).total_seconds() * 1000)
    assert execution.error == ""
    assert event_types(execution) == ["execution_completed"]


def test_the_sdk_failure_callback_stores_the_error_and_its_details(api):
    execution = running()
    body = {"status": "failed", "error": "ValueError: boom", "error_details": {"type": "ValueError"}, "duration_ms": 20}
    response = callback(api, execution.id, body)
    assert response.status_code == 200
    assert response.json()["error"] == response.json()["error_message"] == "ValueError: boom"
    execution.refresh_from_db()
    assert execution.status == "failed"
    assert execution.error == "ValueError: boom"
    assert execution.error_details == {"type": "ValueError"}
    assert event_types(execution) == ["execution_failed"]


def test_a_failure_without_an_error_message_still_says_something(api):
    execution = running()
    callback(api, execution.id, {"status": "failed"})
    execution.refresh_from_db()
    assert execution.error


def test_a_repeat_of_the_same_terminal_status_is_200_and_changes_nothing(api):
    execution = running()
    register_webhook(execution)
    callback(api, execution.id, {"status": "succeeded", "result": {"first": True}})
    response = callback(api, execution.id, {"status": "completed", "result": {"second": True}})
    assert response.status_code == 200
    assert response.json()["result"] == {"first": True}
    assert event_types(execution) == ["execution_completed"]
    assert Delivery.objects.filter(execution_id=execution.id).count() == 1


def test_a_conflicting_terminal_status_is_409_and_the_first_one_stays(api):
    execution = running()
    callback(api, execution.id, {"status": "succeeded", "result": {"v": 1}})
    response = callback(api, execution.id, {"status": "failed", "error": "late"})
    assert response.status_code == 409
    assert response.json()["error"]
    execution.refresh_from_db()
    assert execution.status == "succeeded"
    assert execution.result == {"v": 1}
    assert event_types(execution) == ["execution_completed"]


def test_a_late_progress_callback_on_a_terminal_execution_is_ignored(api):
    execution = running()
    callback(api, execution.id, {"status": "succeeded"})
    response = callback(api, execution.id, {"status": "running", "progress": 99})
    assert response.status_code == 200
    assert response.json()["status"] == "succeeded"


def test_a_success_callback_on_a_still_queued_execution_completes_it(api):
    # The agent's callback can overtake the dispatcher recording the agent's 202.
    execution = make_execution(attempt=1)
    assert callback(api, execution.id, {"status": "succeeded", "result": 1}).status_code == 200
    execution.refresh_from_db()
    assert execution.status == "succeeded"


@pytest.mark.parametrize("result", [[1, 2, 3], "plain text", 42, 3.25, None, True, {"a": {"b": [{"c": None}]}}, []])
def test_a_result_may_be_any_json_value(api, result):
    execution = running()
    response = callback(api, execution.id, {"status": "succeeded", "result": result})
    assert response.status_code == 200
    assert response.json()["result"] == result
    execution.refresh_from_db()
    assert execution.result == result


# -- one transaction: status, event, webhook delivery -------------------------------------------


def test_a_terminal_callback_enqueues_exactly_one_delivery_when_a_webhook_is_registered(api):
    execution = running()
    register_webhook(execution)
    callback(api, execution.id, {"status": "running", "progress": 50})
    assert not Delivery.objects.exists()
    callback(api, execution.id, {"status": "succeeded", "result": {"v": 7}, "duration_ms": 12})
    delivery = Delivery.objects.get(execution_id=execution.id)
    assert delivery.event == "execution.completed"
    payload = json.loads(bytes(delivery.body))
    assert payload["event"] == "execution.completed"
    assert payload["execution_id"] == execution.id
    assert payload["workflow_id"] == execution.run_id
    assert payload["status"] == "succeeded"
    assert payload["result"] == {"v": 7}
    execution.refresh_from_db()
    assert payload["duration_ms"] == execution.duration_ms  # the stored figure (from started_at)
    assert payload["timestamp"].endswith("Z")


def test_a_failed_callback_enqueues_an_execution_failed_delivery(api):
    execution = running()
    register_webhook(execution)
    callback(api, execution.id, {"status": "error", "error": "kaput"})
    delivery = Delivery.objects.get(execution_id=execution.id)
    payload = json.loads(bytes(delivery.body))
    assert payload["event"] == "execution.failed"
    assert payload["error_message"] == "kaput"
    assert "result" not in payload


def test_no_delivery_without_a_webhook(api):
    execution = running()
    callback(api, execution.id, {"status": "succeeded"})
    assert not Delivery.objects.exists()


def test_no_delivery_is_written_before_the_execution_is_terminal(api):
    hook = {"url": "https://hooks.example.com/x"}
    make_node("batch", reasoners=("work",))
    accepted = api.post("/api/v1/execute/async/batch.work", {"input": {}, "webhook": hook}, format="json").json()
    assert accepted["webhook_registered"] is True
    assert Webhook.objects.filter(execution_id=accepted["execution_id"]).exists()
    assert not Delivery.objects.exists()


def refuse_events() -> None:
    """Make every event INSERT fail. DDL is transactional in PostgreSQL: it goes with the test's transaction."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE FUNCTION test_refuse_event() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN RAISE EXCEPTION 'event refused by test'; END $$;
            CREATE TRIGGER test_refuse_event BEFORE INSERT ON executions_executionevent
            FOR EACH ROW EXECUTE FUNCTION test_refuse_event();
            """
        )


@pytest.mark.parametrize("hooked", [True, False])
def test_the_terminal_status_its_event_and_its_delivery_commit_or_roll_back_together(hooked):
    execution = running()
    if hooked:
        register_webhook(execution)  # a transaction: the UPDATE, the delivery row, the event
    # Without a webhook the UPDATE and the event are one statement. Either way, when the event
    # INSERT fails, nothing before it stays, and the caller's transaction (the test's) is still usable.
    refuse_events()
    with pytest.raises(DatabaseError, match="event refused by test"):
        execution.complete({"v": 1}, timezone.now())
    fresh = Execution.objects.get(pk=execution.pk)
    assert (fresh.status, fresh.result, fresh.completed_at) == ("running", None, None)
    assert event_types(execution) == []
    assert not Delivery.objects.exists()


@pytest.mark.django_db(transaction=True)  # as served: no test transaction around it (no savepoint)
def test_a_success_callback_without_a_webhook_is_a_read_and_one_statement(api, django_assert_num_queries):
    # The SDK's callback ends every execution: its change and its event are one autocommit
    # statement (no BEGIN, separate event INSERT or COMMIT), after the read that checks who may report it.
    # The first report of its instance in a second is also its sign of life (one UPDATE more).
    node = make_node()
    first, execution = running(node), running(node)
    with django_assert_num_queries(3) as context:
        callback(api, first.id, {"status": "succeeded", "result": {"v": 0}})
    assert "UPDATE nodes_nodeinstance" in context.captured_queries[2]["sql"]
    with django_assert_num_queries(2) as context:
        response = callback(api, execution.id, {"status": "succeeded", "result": {"v": 1}})
    assert response.status_code == 200
    statement = context.captured_queries[1]["sql"]
    assert statement.startswith("\nWITH changed AS (UPDATE")
    assert "INSERT INTO executions_executionevent" in statement and "pg_notify" in statement
    execution.refresh_from_db()
    assert (execution.status, execution.result) == ("succeeded", {"v": 1})
    assert list(ExecutionEvent.objects.filter(execution_id=execution.id).values_list("type", "status")) == [
        ("execution_completed", "succeeded")
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "finish, status, event",
    [
        (lambda e, now: e.complete({"v": 1}, now), "succeeded", "execution_completed"),
        (lambda e, now: e.fail("boom", now), "failed", "execution_failed"),
        (lambda e, now: e.cancel(now), "cancelled", "execution_cancelled"),
        (lambda e, now: e.time_out("too slow", now), "timeout", "execution_failed"),
    ],
)
def test_every_finish_without_a_webhook_is_one_statement(finish, status, event, django_assert_num_queries):
    execution = running()
    with django_assert_num_queries(1):
        finish(execution, timezone.now())
    fresh = Execution.objects.get(pk=execution.pk)
    assert (fresh.status, fresh.lease_token) == (status, None)
    assert fresh.completed_at == execution.completed_at and fresh.duration_ms == execution.duration_ms
    assert event_types(execution) == [event]


def test_a_finish_that_lost_its_race_raises_and_records_no_event():
    execution = running()
    Execution.objects.filter(pk=execution.pk).update(status="cancelled")
    with pytest.raises(InvalidTransition, match="is cancelled; cannot change it to succeeded"):
        execution.complete({"v": 1}, timezone.now())
    assert event_types(execution) == []
    assert Execution.objects.get(pk=execution.pk).result is None


# -- cancelled callbacks ------------------------------------------------------------------------


def test_a_cancelled_callback_we_did_not_ask_for_requeues_the_running_execution(api):
    execution = running(attempt=1, max_attempts=5)
    response = callback(api, execution.id, {"status": "cancelled", "error": "cancelled during graceful shutdown"})
    assert response.status_code == 200
    fresh = Execution.objects.get(pk=execution.pk)
    assert fresh.status == "queued"
    assert fresh.run_id == execution.run_id
    assert fresh.attempt == 1
    assert fresh.node_instance_id == ""
    assert fresh.run_at <= timezone.now()
    assert "graceful shutdown" in fresh.error
    assert event_types(execution) == ["execution_retrying"]


def test_a_cancelled_callback_overtaking_the_dispatchers_202_requeues_too(api, now):
    # Claimed (queued under a lease), the agent accepted it and was shut down before the
    # dispatcher recorded the 202: the work was interrupted, not cancelled by anyone.
    make_execution(make_node(now=now), now=now)
    [item] = queue.claim("worker", now, 1, lease_seconds=60, alive_seconds=7)
    response = callback(api, item.execution.id, {"status": "cancelled", "error": "cancelled during graceful shutdown"})
    assert response.status_code == 200
    fresh = Execution.objects.get(pk=item.execution.pk)
    assert (fresh.status, fresh.lease_token) == ("queued", None)
    assert record_outcome(item, AgentCallResult(202, {}), now) == "superseded"


def test_work_the_agent_gave_back_is_dispatched_again_even_to_the_same_instance(api, stub_agent):
    # Unlike a heartbeat pause (the instance still holds the work), a 'cancelled' callback says
    # the instance dropped it: waiting for that instance's callback would wait forever.
    # The real clock: the claim below only takes work of nodes that heart-beat just now.
    now = timezone.now()
    node = make_node(now=now, base_url=stub_agent.url, registered_at=now - timedelta(hours=1))
    execution = make_execution(node, now=now, status="running", attempt=1, node_instance_id=node.instance_id)
    callback(api, execution.id, {"status": "cancelled", "error": "cancelled during graceful shutdown"})
    loop = ExecutionDispatcher("test", concurrency=1)
    try:
        loop._claim_and_start(timezone.now())
        wait_until(lambda: stub_agent.requests, timeout=10, message="the second dispatch")
    finally:
        loop.drain(timeout=10)
    assert stub_agent.requests[0].headers["X-Execution-ID"] == execution.id
    fresh = Execution.objects.get(pk=execution.pk)
    assert (fresh.status, fresh.attempt) == ("running", 2)


def test_an_interrupted_execution_at_its_attempt_limit_fails(api):
    execution = running(attempt=3, max_attempts=3)
    callback(api, execution.id, {"status": "cancelled", "error": "cancelled during graceful shutdown"})
    fresh = Execution.objects.get(pk=execution.pk)
    assert fresh.status == "failed"
    assert "interrupted" in fresh.error and "3" in fresh.error


def test_the_agents_cancelled_callback_after_our_cancel_is_200(api, stub_agent):
    node = make_node(base_url=stub_agent.url)
    execution = running(node)
    stub_agent.status, stub_agent.body = 200, {"cancelled": True}
    assert api.post(f"/api/v1/executions/{execution.id}/cancel").status_code == 200
    response = callback(api, execution.id, {"status": "cancelled", "error": "cancelled_by_control_plane"})
    assert response.status_code == 200
    assert Execution.objects.get(pk=execution.pk).status == "cancelled"


# -- logs, step events, notes -------------------------------------------------------------------


def test_log_entries_are_stored_as_the_trace(api):
    execution = running()
    entries = [
        {"level": "info", "message": "processed 1/5", "event_type": "log.info", "attributes": {"depth": 0}},
        {"level": "debug", "message": "Memory set operation for key k"},
    ]
    response = api.post(f"/api/v1/executions/{execution.id}/logs", {"entries": entries}, format="json")
    assert response.status_code in (200, 202)
    rows = list(TraceEntry.objects.filter(execution_id=execution.id))
    assert [row.kind for row in rows] == ["log", "log"]
    assert [row.message for row in rows] == ["processed 1/5", "Memory set operation for key k"]
    assert [row.level for row in rows] == ["info", "debug"]
    assert rows[0].data["attributes"] == {"depth": 0}
    execution.refresh_from_db()
    assert execution.status == "running"


def test_a_batch_of_log_posts_reads_its_executions_in_one_query(django_assert_num_queries):
    # A fan-out's children each post about eight lines; the first post of each named an execution
    # the process did not remember, and each was read on its own.
    executions = [running() for _ in range(5)]
    posts = [callbacks.LogPost(execution.id, {"entries": [{"message": "m"}]}) for execution in executions * 2]
    posts.insert(3, callbacks.LogPost("exec_unknown", {"entries": [{"message": "m"}]}))
    with django_assert_num_queries(3):  # the executions, the unknown one's own 404 read, the INSERT
        results = callbacks.store_log_posts(posts, timezone.now())
    assert [result for index, result in enumerate(results) if index != 3] == [1] * 10
    assert isinstance(results[3], ExecutionNotFound)
    assert TraceEntry.objects.filter(execution_id__in=[e.id for e in executions]).count() == 10
    with django_assert_num_queries(1):  # remembered now: the INSERT only
        callbacks.store_log_posts(posts[:3], timezone.now())


@pytest.mark.parametrize(
    "body",
    [{"entries": "x"}, {"entries": [1, 2]}, [1], {"entries": [{"message": "m"}] * 101}],
)
def test_bad_log_bodies_are_400_and_store_nothing(api, body):
    execution = running()
    response = api.post(f"/api/v1/executions/{execution.id}/logs", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]
    assert not TraceEntry.objects.exists()


def test_logs_for_an_unknown_execution_are_404_and_store_nothing(api):
    response = api.post("/api/v1/executions/exec_nope/logs", {"entries": [{"message": "m"}]}, format="json")
    assert response.status_code == 404
    response = api.post(f"/api/v1/executions/{'e' * 300}/logs", {"entries": [{"message": "m"}]}, format="json")
    assert response.status_code == 404
    assert not TraceEntry.objects.exists()


def test_step_events_are_trace_only_and_never_change_the_status(api):
    execution = running()
    for step in ({"status": "running", "input_data": {"v": 7}}, {"status": "succeeded", "result": {"v": 14}}):
        body = {"execution_id": execution.id, "run_id": execution.run_id, "reasoner_id": "echo", **step}
        response = api.post("/api/v1/workflow/executions/events", body, format="json")
        assert response.status_code == 200
    execution.refresh_from_db()
    assert execution.status == "running"
    assert execution.result is None
    steps = TraceEntry.objects.filter(execution_id=execution.id, kind="step")
    assert [row.data["status"] for row in steps] == ["running", "succeeded"]
    assert event_types(execution) == []
    assert not Delivery.objects.exists()


@pytest.mark.parametrize("body", [{}, {"execution_id": ""}, {"execution_id": 5}, {"execution_id": "e" * 300}, [1]])
def test_a_step_event_without_a_usable_execution_id_is_400(api, body):
    response = api.post("/api/v1/workflow/executions/events", body, format="json")
    assert response.status_code == 400
    assert not TraceEntry.objects.exists()


@pytest.mark.parametrize("route", ["/api/v1/executions/note", "/api/ui/v1/executions/note"])
def test_a_note_goes_to_the_execution_named_by_x_execution_id(api, route):
    execution = running()
    body = {"message": "This is a note", "tags": ["debug"], "timestamp": 1795397845.4, "agent_node_id": "n"}
    response = api.post(route, body, format="json", headers={"X-Execution-ID": execution.id})
    assert response.status_code == 200
    answer = response.json()
    assert answer["success"] is True
    assert answer["message"] == "Note added successfully"
    assert answer["note"]["message"] == "This is a note" and answer["note"]["tags"] == ["debug"]
    note = TraceEntry.objects.get(execution_id=execution.id)
    assert note.kind == "note" and note.data["tags"] == ["debug"]


def test_a_note_may_name_its_execution_in_the_query(api):
    execution = running()
    response = api.post(f"/api/v1/executions/note?execution_id={execution.id}", {"message": "m"}, format="json")
    assert response.status_code == 200
    assert TraceEntry.objects.filter(execution_id=execution.id, kind="note").exists()


@pytest.mark.parametrize(
    ("headers", "body", "status", "message"),
    [
        ({}, {"message": "m"}, 400, "execution_id is required"),
        ({"X-Execution-ID": "exec_nope"}, {"message": "m"}, 404, "not found"),
        ({"X-Execution-ID": "{id}"}, {"message": "  "}, 400, "message cannot be empty"),
        ({"X-Execution-ID": "{id}"}, {"tags": ["x"]}, 400, "message cannot be empty"),
        ({"X-Execution-ID": "{id}"}, {"message": "m", "tags": "debug"}, 400, "tags"),
    ],
)
def test_bad_notes_are_4xx_and_store_nothing(api, headers, body, status, message):
    execution = running()
    headers = {name: value.format(id=execution.id) for name, value in headers.items()}
    response = api.post("/api/v1/executions/note", body, format="json", headers=headers)
    assert response.status_code == status
    assert message in response.json()["error"]
    assert not TraceEntry.objects.exists()


# -- cancel route -------------------------------------------------------------------------------


def test_cancelling_a_queued_execution_cancels_it_at_once(api):
    execution = make_execution()
    register_webhook(execution)
    response = api.post(f"/api/v1/executions/{execution.id}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    fresh = Execution.objects.get(pk=execution.pk)
    assert fresh.status == "cancelled" and fresh.completed_at is not None
    assert event_types(execution) == ["execution_cancelled"]
    assert Delivery.objects.get(execution_id=execution.id).event == "execution.failed"


@pytest.mark.parametrize("state", ["succeeded", "failed", "cancelled", "timeout"])
def test_cancelling_a_terminal_execution_is_409(api, state):
    execution = make_execution(status=state, completed_at=timezone.now() - timedelta(seconds=1))
    response = api.post(f"/api/v1/executions/{execution.id}/cancel")
    assert response.status_code == 409
    assert state in response.json()["error"]
    assert Execution.objects.get(pk=execution.pk).status == state


def test_cancelling_an_unknown_execution_is_404(api):
    assert api.post("/api/v1/executions/exec_nope/cancel").status_code == 404


def test_a_terminal_callback_is_a_handful_of_queries(api, django_assert_num_queries):
    node = make_node()
    execution = running(node)
    register_webhook(execution)
    callback(api, running(node).id, {"status": "succeeded"})  # its instance's sign of life for this second
    # read, SAVEPOINT, conditional UPDATE, webhook lookup, existing-delivery lookup, delivery
    # INSERT, event INSERT + NOTIFYs, RELEASE, the response's webhook attempts.
    with django_assert_num_queries(9):
        assert callback(api, execution.id, {"status": "succeeded", "result": {"v": 1}}).status_code == 200


def test_a_log_post_is_two_queries(api, django_assert_num_queries):
    execution = running()
    with django_assert_num_queries(2):
        api.post(f"/api/v1/executions/{execution.id}/logs", {"entries": [{"message": "m"}] * 10}, format="json")


# -- failures that were ours ------------------------------------------------------------------------

OUR_OUTAGE_ERRORS = [
    "Failed to set memory key 'done': Server error '503 Service Unavailable' for url "
    "'http://127.0.0.1:8080/api/v1/memory/set'",
    "Execution failed: database unavailable; retry in 5 s",
]


@pytest.mark.parametrize("error", OUR_OUTAGE_ERRORS)
def test_a_reasoner_that_failed_because_we_were_unavailable_runs_again_under_the_same_ids(api, error):
    execution = running(attempt=2)
    response = callback(api, execution.id, {"status": "failed", "error": error})
    assert response.status_code == 200
    fresh = Execution.objects.get(pk=execution.pk)
    assert (fresh.status, fresh.attempt, fresh.node_instance_id) == ("queued", 2, "")
    assert fresh.error.startswith("the reasoner failed while the control plane was unavailable")
    assert event_types(execution) == ["execution_retrying"]
    assert callback(api, execution.id, {"status": "failed", "error": error}).status_code == 200  # a repeat
    assert Execution.objects.get(pk=execution.pk).status == "queued"


def test_such_a_failure_at_the_attempt_limit_is_final():
    execution = running(attempt=5, max_attempts=5)
    callbacks.apply_callback(
        execution.id, callbacks.parse_callback({"status": "failed", "error": OUR_OUTAGE_ERRORS[1]}), timezone.now()
    )
    fresh = Execution.objects.get(pk=execution.pk)
    assert fresh.status == "failed" and "attempt 5 of 5" in fresh.error


def test_any_other_failure_is_final(api):
    execution = running()
    callback(api, execution.id, {"status": "failed", "error": "ValueError: upstream said 503"})
    assert Execution.objects.get(pk=execution.pk).status == "failed"
