"""GET /api/v1/executions/{id}, GET /api/v1/executions and POST /api/v1/executions/batch-status."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import make_execution, make_node
from webhooks.models import Delivery, DeliveryAttempt, Webhook

pytestmark = pytest.mark.django_db

RFC3339_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
STATUS_FIELDS = {
    "execution_id",
    "run_id",
    "workflow_id",
    "status",
    "target",
    "type",
    "result",
    "error",
    "error_message",
    "started_at",
    "completed_at",
    "duration_ms",
    "attempt",
    "webhook_registered",
    "webhook_events",
}


def with_webhook_attempts(execution, now, codes: list[int | None]) -> None:
    webhook = Webhook.objects.create(execution_id=execution.id, url="https://hooks.example.com/x", created_at=now)
    delivery = Delivery.objects.create(
        webhook=webhook, execution_id=execution.id, event="execution.completed", body=b"{}", created_at=now
    )
    for number, code in enumerate(codes, start=1):
        DeliveryAttempt.objects.create(
            delivery=delivery,
            number=number,
            started_at=now + timedelta(seconds=number),
            status_code=code,
            succeeded=code == 200,
            response_body="ok" if code == 200 else "",
        )


def test_status_of_a_succeeded_execution_has_every_field(api, now):
    node = make_node("batch", reasoners=("process_corpus",), now=now)
    execution = make_execution(
        node,
        now=now,
        status="succeeded",
        result={"processed": 5},
        attempt=1,
        started_at=now + timedelta(seconds=1),
        completed_at=now + timedelta(seconds=3, milliseconds=250),
        duration_ms=2250,
        webhook_registered=True,
    )
    with_webhook_attempts(execution, now, [500, 200])
    response = api.get(f"/api/v1/executions/{execution.id}")
    assert response.status_code == 200
    body = response.json()
    assert STATUS_FIELDS <= set(body)
    assert body["execution_id"] == execution.id
    assert body["run_id"] == body["workflow_id"] == execution.run_id
    assert body["status"] == "succeeded"
    assert body["target"] == "batch.process_corpus"
    assert body["type"] == "reasoner"
    assert body["result"] == {"processed": 5}
    assert body["error"] is None and body["error_message"] is None
    assert body["started_at"] == "2026-11-23T12:00:01.000Z"
    assert body["completed_at"] == "2026-11-23T12:00:03.250Z"
    assert RFC3339_Z.fullmatch(body["created_at"])
    assert body["duration_ms"] == 2250
    assert body["attempt"] == 1
    assert body["webhook_registered"] is True
    events = body["webhook_events"]
    assert [event["http_status"] for event in events] == [500, 200]
    assert [event["status"] for event in events] == ["failed", "delivered"]
    assert all(event["event_type"] == "execution.completed" for event in events)
    assert all(RFC3339_Z.fullmatch(event["created_at"]) for event in events)


def test_status_of_a_failed_execution_carries_the_error_twice(api, now):
    execution = make_execution(now=now, status="failed", error="ValueError: boom", completed_at=now)
    body = api.get(f"/api/v1/executions/{execution.id}").json()
    assert body["status"] == "failed"
    assert body["error"] == body["error_message"] == "ValueError: boom"
    assert body["result"] is None


def test_status_of_a_queued_execution_has_null_timestamps_and_no_webhook_events(api, now):
    execution = make_execution(now=now)
    body = api.get(f"/api/v1/executions/{execution.id}").json()
    assert body["status"] == "queued"
    assert body["started_at"] is None and body["completed_at"] is None and body["duration_ms"] is None
    assert body["webhook_registered"] is False
    assert body["webhook_events"] == []


@pytest.mark.parametrize("status", ["running", "waiting"])
def test_the_duration_of_an_active_execution_is_the_time_since_it_started(api, status):
    started = timezone.now() - timedelta(seconds=90)
    execution = make_execution(now=started, status=status, started_at=started)
    first = api.get(f"/api/v1/executions/{execution.id}").json()["duration_ms"]
    assert first >= 90_000
    assert api.get(f"/api/v1/executions/{execution.id}").json()["duration_ms"] >= first  # it grows


def test_a_result_of_any_json_type_is_returned_as_stored(api, now):
    for result in ([1, "two"], "text", 3.5, 0, False):
        execution = make_execution(now=now, status="succeeded", result=result)
        assert api.get(f"/api/v1/executions/{execution.id}").json()["result"] == result


def test_an_unknown_execution_is_a_json_404(api):
    response = api.get("/api/v1/executions/exec_nope")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert "not found" in response.json()["error"]


def test_a_nul_in_the_execution_id_is_400_not_a_crash(api):
    response = api.get("/api/v1/executions/exec%00x")
    assert response.status_code == 400
    assert "NUL" in response.json()["error"]


# -- list ---------------------------------------------------------------------------------------


@pytest.fixture
def spread(now):
    """Six executions across two nodes, statuses and runs, one minute apart (oldest first)."""
    alpha = make_node("alpha", reasoners=("think", "plan"), now=now)
    beta = make_node("beta", reasoners=("think",), now=now)
    specs = [
        (alpha, "think", "queued", "run_a"),
        (alpha, "plan", "running", "run_a"),
        (alpha, "think", "succeeded", "run_b"),
        (beta, "think", "failed", "run_b"),
        (beta, "think", "succeeded", "run_c"),
        (alpha, "think", "succeeded", "run_c"),
    ]
    return [
        make_execution(
            node, now=now + timedelta(minutes=index), target_name=name, status=state, run_id=run, id=f"exec_{index}"
        )
        for index, (node, name, state, run) in enumerate(specs)
    ]


def listed(api, query: str = "") -> list[str]:
    response = api.get(f"/api/v1/executions{query}")
    assert response.status_code == 200, response.json()
    return [item["execution_id"] for item in response.json()["executions"]]


def test_list_is_newest_first(api, spread):
    assert listed(api) == ["exec_5", "exec_4", "exec_3", "exec_2", "exec_1", "exec_0"]


def test_list_filters_by_status(api, spread):
    assert listed(api, "?status=succeeded") == ["exec_5", "exec_4", "exec_2"]
    assert listed(api, "?status=running") == ["exec_1"]
    assert listed(api, "?status=cancelled") == []


def test_list_filters_by_target_and_by_node(api, spread):
    assert listed(api, "?target=alpha.think") == ["exec_5", "exec_2", "exec_0"]
    assert listed(api, "?target=alpha.plan") == ["exec_1"]
    assert listed(api, "?node_id=beta") == ["exec_4", "exec_3"]


def test_list_filters_by_run(api, spread):
    assert listed(api, "?run_id=run_b") == ["exec_3", "exec_2"]


def test_list_filters_by_created_range(api, spread):
    assert listed(api, "?created_after=2026-11-23T12:02:00Z") == ["exec_5", "exec_4", "exec_3", "exec_2"]
    assert listed(api, "?created_before=2026-11-23T12:02:00Z") == ["exec_1", "exec_0"]
    assert listed(api, "?created_after=2026-11-23T12:01:00Z&created_before=2026-11-23T12:03:00Z") == [
        "exec_2",
        "exec_1",
    ]


def test_list_created_range_accepts_offsets_and_the_extremes(api, spread):
    assert listed(api, "?created_after=2026-11-23T13:02:00%2B01:00") == ["exec_5", "exec_4", "exec_3", "exec_2"]
    assert listed(api, "?created_after=2026-11-23T12:02:00") == ["exec_5", "exec_4", "exec_3", "exec_2"]
    assert listed(api, "?created_before=0001-01-01T02:00:00%2B01:00") == []
    assert len(listed(api, "?created_before=9999-12-31T23:59:59Z")) == 6


def test_list_filters_combine(api, spread):
    assert listed(api, "?status=succeeded&node_id=alpha&run_id=run_c") == ["exec_5"]


def test_list_paginates_with_limit_offset_and_next_offset(api, spread):
    first = api.get("/api/v1/executions?limit=4").json()
    assert [item["execution_id"] for item in first["executions"]] == ["exec_5", "exec_4", "exec_3", "exec_2"]
    assert first["limit"] == 4 and first["offset"] == 0 and first["next_offset"] == 4
    second = api.get(f"/api/v1/executions?limit=4&offset={first['next_offset']}").json()
    assert [item["execution_id"] for item in second["executions"]] == ["exec_1", "exec_0"]
    assert second["next_offset"] is None
    exact = api.get("/api/v1/executions?limit=6").json()
    assert len(exact["executions"]) == 6 and exact["next_offset"] is None


def test_list_items_have_the_status_shape(api, spread):
    item = api.get("/api/v1/executions?limit=1").json()["executions"][0]
    assert STATUS_FIELDS <= set(item)


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("?status=done", "status"),
        ("?limit=abc", "limit"),
        ("?limit=-1", "limit"),
        ("?limit=100000", "limit"),
        ("?offset=x", "offset"),
        ("?offset=-5", "offset"),
        ("?created_after=yesterday", "created_after"),
        ("?created_before=2026-13-45T00:00:00Z", "created_before"),
        ("?run_id=a%00b", "NUL"),
        ("?created_after=9999-12-31T23:59:59-23:59", "created_after"),
        ("?created_after=0000-01-01T00:00:00Z", "created_after"),
    ],
)
def test_list_rejects_bad_parameters_with_400_naming_them(api, spread, query, param):
    response = api.get(f"/api/v1/executions{query}")
    assert response.status_code == 400
    assert param in response.json()["error"]


# -- batch status -------------------------------------------------------------------------------


def batch(api, ids):
    return api.post("/api/v1/executions/batch-status", {"execution_ids": ids}, format="json")


def test_batch_status_answers_known_and_unknown_ids(api, now):
    done = make_execution(now=now, status="succeeded", result={"ok": True})
    queued = make_execution(now=now)
    response = batch(api, [done.id, "exec_missing", queued.id])
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {done.id, "exec_missing", queued.id}
    assert body[done.id]["status"] == "succeeded" and body[done.id]["result"] == {"ok": True}
    assert STATUS_FIELDS <= set(body[done.id])
    assert body[queued.id]["status"] == "queued"
    assert body["exec_missing"] == {"execution_id": "exec_missing", "status": "not_found"}


def test_batch_status_of_an_empty_list_is_an_empty_object(api):
    response = batch(api, [])
    assert response.status_code == 200
    assert response.json() == {}


def test_batch_status_accepts_exactly_the_limit(api, now):
    execution = make_execution(now=now)
    ids = [execution.id] + [f"exec_missing_{index}" for index in range(999)]
    response = batch(api, ids)
    assert response.status_code == 200
    assert len(response.json()) == 1000


def test_batch_status_over_the_limit_is_400_saying_the_limit(api):
    response = batch(api, [f"exec_{index}" for index in range(1001)])
    assert response.status_code == 400
    assert "1000" in response.json()["error"]


@pytest.mark.parametrize(
    "body",
    [
        {"execution_ids": "exec_1"},
        {"execution_ids": None},
        {"execution_ids": {"exec_1": True}},
        {"execution_ids": [1, 2]},
        {"execution_ids": ["x" * 256]},
        {},
        ["exec_1"],
    ],
)
def test_batch_status_rejects_anything_but_a_list_of_ids(api, body):
    response = api.post("/api/v1/executions/batch-status", body, format="json")
    assert response.status_code == 400
    assert "execution_ids" in response.json()["error"]


@pytest.mark.parametrize("count", [1, 50, 1000])
def test_batch_status_query_count_does_not_grow_with_the_ids(api, now, count, django_assert_max_num_queries):
    node = make_node(now=now)
    executions = [make_execution(node, now=now, webhook_registered=index % 2 == 0) for index in range(min(count, 60))]
    for execution in executions[:4]:
        with_webhook_attempts(execution, now, [200])
    ids = [execution.id for execution in executions] + [f"exec_missing_{i}" for i in range(count - len(executions))]
    with django_assert_max_num_queries(2):
        response = batch(api, ids)
    assert response.status_code == 200
    body = response.json()
    assert len(body) == count
    assert body[executions[0].id]["webhook_events"][0]["http_status"] == 200


def test_the_list_costs_two_queries_however_many_rows(api, now, django_assert_max_num_queries):
    node = make_node(now=now)
    for index in range(60):
        execution = make_execution(node, now=now, webhook_registered=index % 3 == 0)
        if index < 3:
            with_webhook_attempts(execution, now, [200])
    with django_assert_max_num_queries(2):  # the page, then every webhook attempt on it
        response = api.get("/api/v1/executions?limit=50")
    assert len(response.json()["executions"]) == 50


def test_one_status_costs_at_most_two_queries(api, now, django_assert_max_num_queries):
    execution = make_execution(now=now, webhook_registered=True)
    with_webhook_attempts(execution, now, [500, 200])
    with django_assert_max_num_queries(2):
        assert api.get(f"/api/v1/executions/{execution.id}").status_code == 200
