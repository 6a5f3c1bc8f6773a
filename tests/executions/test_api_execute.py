"""POST /api/v1/execute/async/{target} (and the sync route's validation): bodies, headers, bad input."""

from __future__ import annotations

import json
import re
import threading
from datetime import timedelta

import psycopg
import pytest
from django.utils import timezone

from executions import events, queue, services
from executions.models import Execution, ExecutionEvent
from nodes.models import Node
from tests.factories import make_node
from tests.processes import wait_until
from webhooks import crypto
from webhooks.models import Webhook

pytestmark = pytest.mark.django_db

ASYNC = "/api/v1/execute/async/"
SYNC = "/api/v1/execute/"


def post(api, target: str, body, route: str = ASYNC, **headers):
    raw = body if isinstance(body, bytes | str) else json.dumps(body)
    return api.post(route + target, data=raw, content_type="application/json", headers=headers)


def nothing_stored() -> bool:
    return not (Execution.objects.exists() or ExecutionEvent.objects.exists() or Webhook.objects.exists())


@pytest.fixture
def node(db):
    return make_node("batch", reasoners=("process_corpus",), skills=("shout",))


def test_accepted_body_has_every_contract_field(api, node):
    response = post(api, "batch.process_corpus", {"input": {"items": [1, 2]}})
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {
        "execution_id",
        "run_id",
        "workflow_id",
        "status",
        "target",
        "type",
        "created_at",
        "webhook_registered",
    }
    assert re.fullmatch(r"exec_\d+_[0-9a-f]{8}", body["execution_id"])
    assert re.fullmatch(r"run_\d+_[0-9a-f]{8}", body["run_id"])
    assert body["workflow_id"] == body["run_id"]
    assert body["status"] == "queued"
    assert body["target"] == "batch.process_corpus"
    assert body["type"] == "reasoner"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", body["created_at"])
    assert body["webhook_registered"] is False
    assert response["X-Execution-ID"] == body["execution_id"]
    assert response["X-Run-ID"] == body["run_id"]


def test_submit_stores_a_queued_execution_and_its_queued_event(api, node):
    body = post(api, "batch.process_corpus", {"input": {"items": [1]}, "context": {"tenant": "acme"}}).json()
    execution = Execution.objects.get(pk=body["execution_id"])
    assert execution.status == "queued"
    assert execution.input == {"items": [1]}
    assert execution.context == {"tenant": "acme"}
    assert execution.attempt == 0
    event = ExecutionEvent.objects.get(execution_id=execution.id)
    assert event.type == "execution_queued"
    assert event.status == "queued"
    assert event.target == "batch.process_corpus"


def test_a_skill_target_is_typed_skill(api, node):
    body = post(api, "batch.shout", {"input": {"text": "hey"}}).json()
    assert body["type"] == "skill"


def test_a_reasoner_is_preferred_over_a_skill_of_the_same_name(api, db):
    make_node("both", reasoners=("same",), skills=("same",))
    assert post(api, "both.same", {"input": {}}).json()["type"] == "reasoner"


def test_x_run_id_is_kept_as_the_run_id(api, node):
    body = post(api, "batch.process_corpus", {"input": {}}, **{"X-Run-ID": "run_parent_42"}).json()
    assert body["run_id"] == "run_parent_42"
    assert body["workflow_id"] == "run_parent_42"
    assert Execution.objects.get().run_id == "run_parent_42"


def test_each_submit_without_x_run_id_mints_a_new_run(api, node):
    first = post(api, "batch.process_corpus", {"input": {}}).json()
    second = post(api, "batch.process_corpus", {"input": {}}).json()
    assert first["run_id"].startswith("run_") and second["run_id"].startswith("run_")
    assert first["run_id"] != second["run_id"]
    assert first["execution_id"] != second["execution_id"]


def test_an_inbound_x_execution_id_becomes_the_parent_and_never_the_id(api, node):
    headers = {"X-Execution-ID": "exec_caller_1", "X-Run-ID": "run_caller"}
    body = post(api, "batch.process_corpus", {"input": {}}, **headers).json()
    assert body["execution_id"] != "exec_caller_1"
    assert body["execution_id"].startswith("exec_")
    execution = Execution.objects.get()
    assert execution.parent_execution_id == "exec_caller_1"
    assert execution.run_id == "run_caller"


def test_parent_session_and_actor_headers_are_stored(api, node):
    headers = {"X-Parent-Execution-ID": "exec_parent", "X-Session-ID": "session-7", "X-Actor-ID": "user-3"}
    post(api, "batch.process_corpus", {"input": {}}, **headers)
    execution = Execution.objects.get()
    assert execution.parent_execution_id == "exec_parent"
    assert execution.session_id == "session-7"
    assert execution.actor_id == "user-3"


def test_blank_headers_count_as_absent(api, node):
    body = post(api, "batch.process_corpus", {"input": {}}, **{"X-Run-ID": "   ", "X-Session-ID": ""}).json()
    assert body["run_id"].startswith("run_")
    assert Execution.objects.get().session_id == ""


def test_a_repeated_idempotency_key_with_the_same_body_returns_the_first_execution(api, node):
    request = {"input": {"n": 1}, "webhook": {"url": "https://hooks.example.com/af"}}
    first = post(api, "batch.process_corpus", request, **{"Idempotency-Key": "key-1"})
    again = post(api, "batch.process_corpus", request, **{"Idempotency-Key": "key-1"})
    assert first.status_code == 202
    assert again.status_code in (200, 202)
    assert again.json()["execution_id"] == first.json()["execution_id"]
    assert again.json()["run_id"] == first.json()["run_id"]
    assert Execution.objects.count() == 1
    assert Webhook.objects.count() == 1
    assert ExecutionEvent.objects.count() == 1


def test_a_repeated_idempotency_key_with_a_different_body_is_a_conflict(api, node):
    post(api, "batch.process_corpus", {"input": {"n": 1}}, **{"Idempotency-Key": "key-2"})
    response = post(api, "batch.process_corpus", {"input": {"n": 2}}, **{"Idempotency-Key": "key-2"})
    assert response.status_code == 409
    assert "Idempotency-Key" in response.json()["error"]
    assert Execution.objects.count() == 1


def test_the_same_idempotency_key_on_another_target_is_a_conflict(api, node):
    post(api, "batch.process_corpus", {"input": {}}, **{"Idempotency-Key": "key-3"})
    response = post(api, "batch.shout", {"input": {}}, **{"Idempotency-Key": "key-3"})
    assert response.status_code == 409
    assert Execution.objects.count() == 1


def test_a_valid_webhook_is_registered(api, node):
    hook = {"url": "https://hooks.example.com/af", "secret": "s3cr3t", "headers": {"X-Tenant": "acme"}}
    body = post(api, "batch.process_corpus", {"input": {}, "webhook": hook}).json()
    assert body["webhook_registered"] is True
    assert "webhook_error" not in body
    webhook = Webhook.objects.get(execution_id=body["execution_id"])
    assert webhook.url == "https://hooks.example.com/af"
    assert webhook.secret != "s3cr3t" and crypto.decrypt(webhook.secret) == "s3cr3t"  # encrypted at rest
    assert webhook.headers == {"X-Tenant": "acme"}
    assert Execution.objects.get().webhook_registered is True


@pytest.mark.parametrize(
    ("hook", "why"),
    [
        ({"url": "ftp://hooks.example.com/x"}, "http or https"),
        ({"url": "https://user:pw@hooks.example.com/x"}, "credentials"),
        ({"url": ""}, "url is required"),
        ("https://hooks.example.com/x", "object"),
        ({"url": "https://hooks.example.com/x", "headers": {"Host": "evil"}}, "reserved"),
        ({"url": "https://hooks.example.com/x", "headers": {"X-A": "a\r\nX-B: b"}}, "forbidden"),
        ({"url": "https://hooks.example.com/x", "secret": "s" * 4097}, "4096"),
        ({"url": "https://hooks.example.com/x", "headers": {f"X-{i}": "v" for i in range(21)}}, "20"),
    ],
)
def test_an_invalid_webhook_still_queues_the_execution_with_the_reason(api, node, hook, why):
    response = post(api, "batch.process_corpus", {"input": {}, "webhook": hook})
    assert response.status_code == 202
    body = response.json()
    assert body["webhook_registered"] is False
    assert why in body["webhook_error"]
    assert Execution.objects.filter(pk=body["execution_id"], webhook_registered=False).exists()
    assert not Webhook.objects.exists()


def test_unknown_node_is_404_and_stores_nothing(api, node):
    response = post(api, "ghost.process_corpus", {"input": {}})
    assert response.status_code == 404
    assert "ghost" in response.json()["error"]
    assert nothing_stored()


def test_unknown_reasoner_is_404_and_stores_nothing(api, node):
    response = post(api, "batch.nope", {"input": {}, "webhook": {"url": "https://hooks.example.com/x"}})
    assert response.status_code == 404
    assert "nope" in response.json()["error"]
    assert nothing_stored()


BAD_TARGETS = ["batch", "batch.process_corpus.extra", ".process_corpus", "batch.", "a.b.c.d"]


@pytest.mark.parametrize("route", [ASYNC, SYNC])
@pytest.mark.parametrize("target", BAD_TARGETS)
def test_a_target_without_exactly_one_dot_is_400(api, node, route, target):
    response = post(api, target, {"input": {}}, route=route)
    assert response.status_code == 400
    assert "node_id.reasoner_name" in response.json()["error"]
    assert nothing_stored()


BAD_BODIES = [
    pytest.param(json.dumps({"input": [1, 2]}), "input must be a JSON object", id="input-is-a-list"),
    pytest.param(json.dumps({"input": "text"}), "input must be a JSON object", id="input-is-a-string"),
    pytest.param(json.dumps({"input": 3}), "input must be a JSON object", id="input-is-a-number"),
    pytest.param(json.dumps({"input": None}), "input is required", id="input-is-null"),
    pytest.param(json.dumps({"context": {}}), "input is required", id="input-missing"),
    pytest.param(json.dumps({"input": {}, "context": "x"}), "context must be a JSON object", id="context-string"),
    pytest.param(json.dumps({"input": {}, "context": [1]}), "context must be a JSON object", id="context-list"),
    pytest.param(json.dumps({"input": {}, "context": []}), "context must be a JSON object", id="context-empty-list"),
    pytest.param(json.dumps({"input": {}, "context": 0}), "context must be a JSON object", id="context-zero"),
    pytest.param('{"input": {"a": 1}', "malformed JSON", id="truncated-json"),
    pytest.param("not-json", "malformed JSON", id="not-json"),
    pytest.param("", "", id="empty-body"),
    pytest.param("   ", "", id="blank-body"),
    pytest.param(json.dumps([{"input": {}}]), "JSON object", id="top-level-array"),
    pytest.param('"input"', "JSON object", id="top-level-string"),
    pytest.param('{"input": {"x": NaN}}', "NaN", id="nan"),
    pytest.param('{"input": {"x": Infinity}}', "Infinity", id="infinity"),
    pytest.param('{"input": {"x": "a\\u0000b"}}', "NUL", id="nul-in-value"),
    pytest.param('{"input": {"a\\u0000": 1}}', "NUL", id="nul-in-key"),
    pytest.param('{"input": {"x": "\\ud800"}}', "surrogate", id="lone-surrogate"),
    pytest.param('{"input": {"x": ' + "[" * 70 + "]" * 70 + "}}", "nested deeper", id="nesting-70"),
    pytest.param('{"input": {"x": ' + "[" * 5000 + "]" * 5000 + "}}", "nested deeper", id="nesting-5000"),
    pytest.param('{"input": {"x": 99999999999999999999}}', "out of range", id="huge-integer"),
    pytest.param('{"input": {"x": 1e400}}', "finite", id="float-overflowing-to-infinity"),
    pytest.param('{"input": {"x": -1e400}}', "finite", id="float-overflowing-to-minus-infinity"),
    pytest.param(b'{"input": {"x": "\xff"}}', "UTF-8", id="invalid-utf8"),
]


@pytest.mark.parametrize("route", [ASYNC, SYNC])
@pytest.mark.parametrize(("raw", "message"), BAD_BODIES)
def test_bad_bodies_are_400_with_a_clear_message_and_store_nothing(api, node, route, raw, message):
    response = post(api, "batch.process_corpus", raw, route=route)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error
    assert message in error
    assert nothing_stored()


def test_nesting_of_exactly_the_limit_is_accepted(api, node):
    # {"input": {"x": [[...]]}}: the document root is depth 0, so 62 brackets reach depth 64.
    raw = '{"input": {"x": ' + "[" * 62 + "]" * 62 + "}}"
    assert post(api, "batch.process_corpus", raw).status_code == 202


@pytest.mark.parametrize("route", [ASYNC, SYNC])
@pytest.mark.parametrize("name", ["X-Run-ID", "X-Parent-Execution-ID", "X-Session-ID", "X-Actor-ID", "Idempotency-Key"])
def test_an_over_long_header_is_400_and_stores_nothing(api, node, route, name):
    response = post(api, "batch.process_corpus", {"input": {}}, route=route, **{name: "x" * 256})
    assert response.status_code == 400
    assert name in response.json()["error"]
    assert nothing_stored()


@pytest.mark.parametrize("route", [ASYNC, SYNC])
def test_an_over_long_inbound_execution_id_is_400_and_stores_nothing(api, node, route):
    response = post(api, "batch.process_corpus", {"input": {}}, route=route, **{"X-Execution-ID": "e" * 300})
    assert response.status_code == 400
    assert nothing_stored()


def test_a_header_of_exactly_255_characters_is_kept(api, node):
    post(api, "batch.process_corpus", {"input": {}}, **{"X-Run-ID": "r" * 255})
    assert Execution.objects.get().run_id == "r" * 255


@pytest.mark.parametrize("route", [ASYNC, SYNC])
def test_unknown_node_and_reasoner_on_either_route_store_nothing(api, node, route):
    assert post(api, "ghost.x", {"input": {}}, route=route).status_code == 404
    assert post(api, "batch.ghost", {"input": {}}, route=route).status_code == 404
    assert nothing_stored()


@pytest.mark.parametrize("route", [ASYNC, SYNC])
@pytest.mark.parametrize("target", ["ba%00tch.process_corpus", "batch.pro%00cess", "%00.%00"])
def test_a_nul_character_in_the_target_is_a_4xx_not_a_crash(api, node, route, target):
    response = post(api, target, {"input": {}}, route=route)
    assert 400 <= response.status_code < 500
    assert response.json()["error"]
    assert nothing_stored()


def test_a_very_long_target_is_404_and_stores_nothing(api, node):
    response = post(api, "n" * 300 + ".r", {"input": {}})
    assert response.status_code == 404
    response = post(api, "batch." + "r" * 300, {"input": {}})
    assert response.status_code == 404
    assert nothing_stored()


def test_the_sync_route_rejects_get_with_405(api, node):
    response = api.get(SYNC + "batch.process_corpus")
    assert response.status_code == 405
    assert response.json()["error"]


def test_the_sync_route_answers_202_with_the_async_body_once_its_wait_is_over(api, node, settings):
    settings.AGENTFIELD_SYNC_WAIT_SECONDS = 0
    response = post(api, "batch.process_corpus", {"input": {"n": 1}}, route=SYNC, **{"X-Run-ID": "run_sync"})
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    assert body["run_id"] == "run_sync"
    assert body["target"] == "batch.process_corpus"
    assert response["X-Execution-ID"] == body["execution_id"]
    assert Execution.objects.get().pk == body["execution_id"]


@pytest.mark.django_db(transaction=True)
def test_two_racing_submits_with_one_idempotency_key_store_one_execution(db_url):
    """The loser of the race (blocked on the unique index) answers with the winner's execution."""
    make_node("batch", reasoners=("process_corpus",))
    submission = services.build_submission("batch.process_corpus", {"input": {"n": 1}}, {"Idempotency-Key": "race"})
    template = services.submit(services.build_submission("batch.process_corpus", {"input": {}}, {}), timezone.now())[0]
    with psycopg.connect(db_url) as winner, psycopg.connect(db_url, autocommit=True) as observer:
        # The winner's INSERT, not yet committed: invisible to us, but it holds the unique key.
        winner.execute("CREATE TEMP TABLE copy AS SELECT * FROM executions_execution WHERE id = %s", [template.id])
        winner.execute(
            "UPDATE copy SET id = 'exec_winner', idempotency_key = 'race', request_fingerprint = %s",
            [submission.fingerprint()],
        )
        winner.execute("INSERT INTO executions_execution SELECT * FROM copy")

        def commit_once_we_wait() -> None:
            wait_until(
                lambda: observer.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
                ).fetchone(),
                timeout=20,
                message="our INSERT to wait on the winner's key",
            )
            winner.commit()

        thread = threading.Thread(target=commit_once_we_wait, daemon=True)
        thread.start()
        execution, webhook_error, created = services.submit(submission, timezone.now())
        thread.join(timeout=20)
    assert (execution.id, created, webhook_error) == ("exec_winner", False, None)
    assert Execution.objects.filter(idempotency_key="race").count() == 1
    assert not ExecutionEvent.objects.exclude(execution_id=template.id).exists()


def test_a_delayed_execution_waits_in_the_queue_until_it_is_due(api, now):
    make_node("later", reasoners=("work",))
    answer = api.post("/api/v1/execute/async/later.work", {"input": {}, "delay_seconds": 3600}, format="json")
    assert answer.status_code == 202
    execution = Execution.objects.get(pk=answer.json()["execution_id"])
    assert 3590 <= (execution.run_at - execution.created_at).total_seconds() <= 3600
    assert answer.json()["run_at"]
    assert queue.claim("w", timezone.now(), 10, lease_seconds=60, alive_seconds=7) == []
    assert len(queue.claim("w", execution.run_at, 10, lease_seconds=60, alive_seconds=3600 * 2)) == 1


def test_an_execution_may_name_the_moment_it_becomes_due(api):
    make_node("later", reasoners=("work",))
    moment = (timezone.now() + timedelta(hours=2)).isoformat()
    answer = api.post("/api/v1/execute/async/later.work", {"input": {}, "run_at": moment}, format="json")
    assert Execution.objects.get(pk=answer.json()["execution_id"]).run_at.isoformat() == moment


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"delay_seconds": -1}, "delay_seconds must be"),
        ({"delay_seconds": True}, "delay_seconds must be"),
        ({"delay_seconds": 10, "run_at": "2026-12-24T18:00:00Z"}, "not both"),
        ({"run_at": "tomorrow"}, "run_at must be"),
        ({"run_at": "2026-12-24T18:00:00"}, "with a zone"),
        ({"priority": 1001}, "priority must be"),
        ({"priority": "high"}, "priority must be"),
        ({"priority": 1.5}, "priority must be"),
    ],
)
def test_bad_delays_are_a_400_and_create_nothing(api, extra, message):
    make_node("later", reasoners=("work",))
    answer = api.post("/api/v1/execute/async/later.work", {"input": {}, **extra}, format="json")
    assert answer.status_code == 400 and message in answer.json()["error"]
    assert not Execution.objects.exists()


def test_priority_is_stored_shown_and_inherited_by_children(api):
    make_node("prio", reasoners=("work",))
    answer = api.post("/api/v1/execute/async/prio.work", {"input": {}, "priority": 7}, format="json")
    parent_id = answer.json()["execution_id"]
    assert api.get(f"/api/v1/executions/{parent_id}").json()["priority"] == 7
    child = api.post("/api/v1/execute/async/prio.work", {"input": {}}, format="json", HTTP_X_EXECUTION_ID=parent_id)
    assert Execution.objects.get(pk=child.json()["execution_id"]).priority == 7
    own = api.post(
        "/api/v1/execute/async/prio.work", {"input": {}, "priority": -3}, format="json", HTTP_X_EXECUTION_ID=parent_id
    )
    assert Execution.objects.get(pk=own.json()["execution_id"]).priority == -3


def test_the_children_of_one_parent_read_its_row_once(api):
    """A fan-out's submits all name the same parent: its owners and priority are remembered briefly."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    make_node("fan", reasoners=("work",))
    parent_id = api.post("/api/v1/execute/async/fan.work", {"input": {}, "priority": 4}, format="json").json()
    parent_id = parent_id["execution_id"]
    with CaptureQueriesContext(connection) as queries:
        children = [
            api.post(
                "/api/v1/execute/async/fan.work", {"input": {"i": i}}, format="json", HTTP_X_EXECUTION_ID=parent_id
            )
            for i in range(5)
        ]
    assert [child.status_code for child in children] == [202] * 5
    parent_reads = [
        q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT") and parent_id in q["sql"]
    ]
    assert len(parent_reads) == 1
    assert set(Execution.objects.filter(parent_execution_id=parent_id).values_list("priority", flat=True)) == {4}


def _many(*subs: services.Submission) -> list:
    return services.submit_many([(sub, services.policy.OPEN) for sub in subs], timezone.now())


def _sub(target: str = "batch.process_corpus", body: dict | None = None, **headers) -> services.Submission:
    return services.build_submission(target, body or {"input": {}}, headers)


def test_submits_stored_together_are_refused_one_by_one_and_take_consecutive_places(node):
    """services.submit_many (the API's concurrent submits): a refused submission fails alone, and the
    children of one run inserted in one statement still take one place each, in order."""
    outcomes = _many(
        _sub(**{"X-Run-ID": "run_fan"}),
        _sub("nowhere.process_corpus"),
        _sub(**{"X-Run-ID": "run_fan"}),
        _sub("batch.nope"),
        _sub(**{"X-Run-ID": "run_other"}),
        _sub(**{"X-Run-ID": "run_fan"}),
    )
    refused = [type(outcome).__name__ for outcome in outcomes if isinstance(outcome, Exception)]
    assert refused == ["TargetNotFound", "TargetNotFound"]
    stored = [outcome[0] for outcome in outcomes if not isinstance(outcome, Exception)]
    assert all(outcome[2] for outcome in outcomes if not isinstance(outcome, Exception))  # all new
    places = {execution.id: execution.fair_seq for execution in Execution.objects.all()}
    assert [places[execution.id] for execution in stored] == [1, 2, 1, 3]
    queued = ExecutionEvent.objects.filter(type=events.QUEUED).order_by("id")
    assert [event.execution_id for event in queued] == [execution.id for execution in stored]


def test_a_keyed_submit_in_a_batch_returns_the_first_execution_and_fails_nothing_else(node):
    first = services.submit(_sub(**{"Idempotency-Key": "k1"}), timezone.now())[0]
    outcomes = _many(
        _sub(**{"Idempotency-Key": "k1"}),  # the same request again: the first execution, not new
        _sub(body={"input": {"other": 1}}, **{"Idempotency-Key": "k1"}),  # another body: a conflict
        _sub(**{"Idempotency-Key": "k2"}),
        _sub(),
    )
    assert (outcomes[0][0].id, outcomes[0][2]) == (first.id, False)
    assert type(outcomes[1]).__name__ == "IdempotencyConflict"
    assert outcomes[2][2] and outcomes[3][2]
    assert Execution.objects.count() == 3


def test_a_batch_whose_transaction_fails_stores_none_of_it_and_answers_each(node, monkeypatch):
    from webhooks import services as webhook_services

    def broken(*args, **kwargs):
        raise RuntimeError("the webhook insert broke")

    monkeypatch.setattr(webhook_services, "register", broken)
    hook = {"url": "https://example.com/hook", "secret": "s" * 32}
    outcomes = _many(_sub(), _sub(body={"input": {}, "webhook": hook}), _sub(), _sub(**{"Idempotency-Key": "k"}))
    assert [str(outcome) for outcome in outcomes[:3]] == ["the webhook insert broke"] * 3
    assert outcomes[3][2]  # a keyed submit has its own transaction
    assert list(Execution.objects.values_list("idempotency_key", flat=True)) == ["k"]
    assert ExecutionEvent.objects.count() == 1


def test_a_batch_without_webhooks_is_stored_by_one_statement_after_its_places(
    transactional_db, node, django_assert_num_queries
):
    """Rows, events and NOTIFY in one autocommit statement (as the batch threads run it): no BEGIN, no COMMIT."""
    _many(_sub())  # what the node serves is remembered from here on
    with django_assert_num_queries(2) as captured:
        outcomes = _many(_sub(), _sub(**{"X-Run-ID": "run_two"}), _sub(**{"X-Run-ID": "run_two"}))
    assert captured.captured_queries[1]["sql"].startswith("WITH stored AS (INSERT INTO")
    stored = [outcome[0].id for outcome in outcomes]
    assert list(Execution.objects.filter(pk__in=stored).order_by("fair_seq", "id").values_list("fair_seq", flat=True))[
        -2:
    ] == [1, 2]
    queued = ExecutionEvent.objects.filter(type=events.QUEUED, execution_id__in=stored).order_by("id")
    assert [event.execution_id for event in queued] == stored


def test_a_batch_whose_statement_fails_stores_none_of_it_and_answers_each(node, monkeypatch):
    # pg_notify refuses a channel name this long: the statement fails after its INSERTs ran.
    monkeypatch.setattr(events, "DISPATCH_CHANNEL", "x" * 100)
    outcomes = _many(_sub(), _sub(), _sub())
    assert all("channel name too long" in str(outcome) for outcome in outcomes)
    assert (Execution.objects.count(), ExecutionEvent.objects.count()) == (0, 0)
    monkeypatch.undo()
    assert all(outcome[2] for outcome in _many(_sub(), _sub()))  # the next batch is stored
    assert (Execution.objects.count(), ExecutionEvent.objects.count()) == (2, 2)


def test_a_reasoner_registered_after_the_node_was_remembered_is_accepted_at_once(api, node):
    """What a node serves is remembered briefly, but a name it does not hold is read again."""
    assert post(api, "batch.process_corpus", {"input": {}}).status_code == 202  # remembered now
    Node.objects.filter(pk="batch").update(reasoners=[{"id": "process_corpus"}, {"id": "summarise"}])
    assert post(api, "batch.summarise", {"input": {}}).status_code == 202


def test_a_reasoner_removed_is_refused_once_the_short_window_has_passed(api, node, settings):
    assert post(api, "batch.process_corpus", {"input": {}}).status_code == 202
    Node.objects.filter(pk="batch").update(reasoners=[], skills=[])
    settings.AGENTFIELD_API_KEY_CACHE_SECONDS = 0  # the window (a revoked key's) has passed
    answer = post(api, "batch.process_corpus", {"input": {}})
    assert answer.status_code == 404 and "not found on node" in answer.json()["error"]
    Node.objects.filter(pk="batch").delete()
    assert post(api, "batch.process_corpus", {"input": {}}).status_code == 404
