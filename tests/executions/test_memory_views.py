"""The memory API over HTTP (Django test client): the Go handler tests plus bad input."""

import json

import pytest

from executions import memory
from executions.memory import ScopeRef
from executions.models import MemoryEntry

pytestmark = pytest.mark.django_db


def post(api, action: str, body, **headers):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return api.post(f"/api/v1/memory/{action}", data=data, content_type="application/json", headers=headers)


def test_set_without_scope_lands_in_the_workflow_of_x_workflow_id(api):
    response = post(api, "set", {"key": "alpha", "data": {"value": 1}}, **{"X-Workflow-ID": "wf-123"})
    assert response.status_code == 200
    body = response.json()
    assert (body["key"], body["scope"], body["scope_id"]) == ("alpha", "workflow", "wf-123")
    assert body["data"] == {"value": 1}  # the whole entry, as CONTRACT §5 describes it
    assert body["created_at"].endswith("Z") and body["updated_at"].endswith("Z")
    assert MemoryEntry.objects.get(scope="workflow", scope_id="wf-123", key="alpha").data == {"value": 1}


def test_get_without_scope_finds_a_session_entry(api, now):
    memory.set_entry(ScopeRef("session", "session-1"), "beta", [1, 2], now)
    response = post(api, "get", {"key": "beta"}, **{"X-Session-ID": "session-1"})
    assert response.status_code == 200
    assert (response.json()["scope"], response.json()["scope_id"], response.json()["data"]) == (
        "session",
        "session-1",
        [1, 2],
    )


def test_workflow_wins_over_session_when_both_hold_the_key(api, now):
    memory.set_entry(ScopeRef("session", "s-1"), "k", "session value", now)
    memory.set_entry(ScopeRef("workflow", "wf-1"), "k", "workflow value", now)
    response = post(api, "get", {"key": "k"}, **{"X-Workflow-ID": "wf-1", "X-Session-ID": "s-1"})
    assert response.json()["data"] == "workflow value"


def test_get_without_headers_falls_back_to_global(api, now):
    memory.set_entry(ScopeRef("global", "global"), "config", {"temperature": 0.2}, now)
    response = post(api, "get", {"key": "config"})
    assert response.status_code == 200
    assert response.json()["scope"] == "global" and response.json()["data"] == {"temperature": 0.2}


def test_a_miss_is_404_in_the_shape_the_sdk_expects(api):
    response = post(api, "get", {"key": "nothing"}, **{"X-Workflow-ID": "wf-1"})
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "message": "Memory key not found in any scope", "code": 404}


def test_a_miss_in_an_explicit_scope_names_the_scope(api):
    response = post(api, "get", {"key": "nothing", "scope": "workflow"}, **{"X-Workflow-ID": "wf-1"})
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert response.json()["message"] == "memory with key 'nothing' not found in scope 'workflow' for ID 'wf-1'"


def test_delete_in_global_scope_answers_204_and_removes_the_key(api, now):
    memory.set_entry(ScopeRef("global", "global"), "gamma", 1, now)
    response = post(api, "delete", {"key": "gamma", "scope": "global"})
    assert response.status_code == 204 and response.content == b""
    assert not MemoryEntry.objects.filter(key="gamma").exists()


def test_deleting_a_missing_key_is_still_204(api):
    assert post(api, "delete", {"key": "never-set"}).status_code == 204


def test_list_returns_the_entries_of_one_scope(api, now):
    memory.set_entry(ScopeRef("workflow", "wf-1"), "k1", 1, now)
    memory.set_entry(ScopeRef("workflow", "wf-1"), "k2", 2, now)
    memory.set_entry(ScopeRef("workflow", "wf-2"), "k3", 3, now)
    response = api.get("/api/v1/memory/list?scope=workflow", headers={"X-Workflow-ID": "wf-1"})
    assert response.status_code == 200
    assert [entry["key"] for entry in response.json()] == ["k1", "k2"]


def test_list_of_an_empty_scope_is_an_empty_array(api):
    response = api.get("/api/v1/memory/list?scope=global")
    assert response.status_code == 200 and response.json() == []


def test_list_without_scope_is_400(api):
    response = api.get("/api/v1/memory/list")
    assert response.status_code == 400
    assert "Scope parameter is required" in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"key": "k", "data": None}, "must not be null"),
        ({"key": "k"}, "must not be null"),
        ({"data": 1}, "'key' is required"),
        ({"key": 5, "data": 1}, "'key' must be a string"),
        ({"key": "", "data": 1}, "must not be empty"),
        ({"key": "k" * 1025, "data": 1}, "longer than 1024"),
        ({"key": "k", "data": 1, "scope": "planet"}, "unknown scope"),
        ({"key": "k", "data": 1, "scope": "session"}, "needs the X-Session-ID header"),
        ([{"key": "k", "data": 1}], "must be a JSON object"),
        ('{"key": "k", "data": ', "malformed JSON"),
        ('{"key": "k", "data": NaN}', "malformed JSON"),
        ('{"key": "k", "data": "a\\u0000b"}', "NUL"),
    ],
)
def test_bad_set_requests_are_400_and_store_nothing(api, body, message):
    response = post(api, "set", body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not MemoryEntry.objects.exists()


@pytest.mark.parametrize("action", ["get", "delete"])
@pytest.mark.parametrize("body", [{}, {"key": None}, {"key": 1}, {"key": "k", "scope": "nope"}, "not json"])
def test_bad_get_and_delete_requests_are_400(api, action, body):
    response = post(api, action, body)
    assert response.status_code == 400
    assert response.json()["error"]


def test_list_with_unknown_scope_is_400(api):
    response = api.get("/api/v1/memory/list?scope=planet")
    assert response.status_code == 400 and "unknown scope" in response.json()["error"]


def test_any_json_value_round_trips(api):
    for value in [0, False, "", "text", [], {}, {"nested": [1, {"deep": None}]}, 1.5]:
        post(api, "set", {"key": "v", "data": value, "scope": "global"})
        assert post(api, "get", {"key": "v", "scope": "global"}).json()["data"] == value


def test_a_checkpoint_is_one_query_and_a_resume_read_is_one_query(api, django_assert_num_queries):
    headers = {"X-Workflow-ID": "run_1", "X-Session-ID": "s-1", "X-Actor-ID": "a-1"}
    with django_assert_num_queries(1):
        assert post(api, "set", {"key": "done", "data": 5}, **headers).status_code == 200
    with django_assert_num_queries(1):
        assert post(api, "get", {"key": "done"}, **headers).json()["data"] == 5


def test_an_overlong_scope_header_is_400_not_a_database_error(api):
    response = post(api, "set", {"key": "k", "data": 1}, **{"X-Session-ID": "s" * 300})
    assert response.status_code == 400 and "X-Session-ID is longer than 255" in response.json()["error"]
    assert not MemoryEntry.objects.exists()
