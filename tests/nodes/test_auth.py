"""API keys: required once one exists, accepted from headers only, refusals indistinguishable."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import RequestFactory, override_settings
from django.utils import timezone

from nodes import auth, policy
from nodes.models import ApiKey

pytestmark = pytest.mark.django_db

REFUSAL = {"error": auth.UNAUTHORIZED_MESSAGE, "code": "not_authenticated"}
ROUTES = [("get", "/api/v1/nodes"), ("get", "/api/v1/nodes/echo"), ("post", "/api/v1/nodes/echo/heartbeat")]


def register(api, **headers):
    body = json.dumps({"id": "echo", "base_url": "http://localhost:8001"})
    return api.post("/api/v1/nodes/register", data=body, content_type="application/json", headers=headers)


def test_without_any_key_the_api_is_open(api):
    assert register(api).status_code == 201
    assert register(api, **{"X-API-Key": "anything"}).status_code == 201


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-API-Key": "afk_wrong"}, {"Authorization": "Bearer afk_wrong"}, {"Authorization": "Basic abc"}],
    ids=["no-key", "wrong-x-api-key", "wrong-bearer", "other-scheme"],
)
def test_once_a_key_exists_every_refusal_is_the_same_401(api, headers):
    auth.issue_key("agents")
    response = register(api, **headers)
    assert response.status_code == 401
    assert response.json() == REFUSAL
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    for method, url in ROUTES:
        refused = getattr(api, method)(url, headers=headers)
        assert (refused.status_code, refused.json()) == (401, REFUSAL)


def test_a_revoked_key_gets_the_same_refusal(api):
    key, raw = auth.issue_key("agents")
    auth.issue_key("other")  # keys are still required after the revocation
    assert register(api, **{"X-API-Key": raw}).status_code == 201
    assert auth.revoke_key(key) is True
    response = register(api, **{"X-API-Key": raw})
    assert (response.status_code, response.json()) == (401, REFUSAL)
    assert auth.revoke_key(key) is False


def test_revoking_the_last_key_opens_the_api_again(api):
    key, _ = auth.issue_key("agents")
    assert register(api).status_code == 401
    auth.revoke_key(key)
    assert register(api).status_code == 201


@pytest.mark.parametrize("header", ["X-API-Key", "Authorization"])
def test_a_valid_key_is_accepted_from_either_header(api, header):
    _, raw = auth.issue_key("agents")
    value = raw if header == "X-API-Key" else f"Bearer {raw}"
    assert register(api, **{header: value}).status_code == 201
    assert api.get("/api/v1/nodes/echo", headers={header: value}).status_code == 200


@pytest.mark.parametrize("param", ["api_key", "key", "X-API-Key", "token", "access_token"])
def test_a_key_in_the_query_string_is_not_accepted(api, param):
    _, raw = auth.issue_key("agents")
    response = api.get(f"/api/v1/nodes?{param}={raw}")
    assert (response.status_code, response.json()) == (401, REFUSAL)


def test_health_stays_open_for_load_balancers(api):
    auth.issue_key("agents")
    assert api.get("/api/v1/health").status_code == 200


def test_a_staff_session_may_use_the_api_and_must_send_csrf_for_writes(client):
    auth.issue_key("agents")
    staff = get_user_model().objects.create_user("ops", password="pw-for-tests", is_staff=True)
    client.force_login(staff)
    assert client.get("/api/v1/nodes").status_code == 200
    client.handler.enforce_csrf_checks = True
    body = json.dumps({"id": "echo", "base_url": "http://localhost:8001"})
    response = client.post("/api/v1/nodes/register", data=body, content_type="application/json")
    assert response.status_code == 403 and "CSRF" in response.json()["error"]


def test_a_logged_in_non_staff_user_is_refused(client):
    auth.issue_key("agents")
    client.force_login(get_user_model().objects.create_user("someone", password="pw-for-tests"))
    response = client.get("/api/v1/nodes")
    assert (response.status_code, response.json()) == (401, REFUSAL)


def test_only_the_hash_of_a_key_is_stored(api):
    key, raw = auth.issue_key("agents")
    stored = ApiKey.objects.get(pk=key.pk)
    assert raw.startswith("afk_") and len(raw) > 40
    assert stored.key_hash == auth.hash_key(raw) and raw not in stored.key_hash
    assert stored.prefix == raw[:12]


def test_last_used_is_recorded_at_most_once_a_minute(api, django_assert_num_queries):
    key, raw = auth.issue_key("agents")
    headers = {"X-API-Key": raw}
    register(api, **headers)
    first = ApiKey.objects.get(pk=key.pk).last_used_at
    assert first is not None
    with django_assert_num_queries(1):  # the heartbeat's UPDATE, no key lookup nor last_used write
        assert api.post("/api/v1/nodes/echo/heartbeat", headers=headers).status_code == 200
    assert ApiKey.objects.get(pk=key.pk).last_used_at == first


@override_settings(AGENTFIELD_API_KEY_CACHE_SECONDS=0)
def test_a_key_revoked_by_another_process_stops_working_after_the_cache_ttl(api):
    key, raw = auth.issue_key("agents")
    auth.issue_key("other")
    assert register(api, **{"X-API-Key": raw}).status_code == 201
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now() - timedelta(seconds=1))  # no signal
    assert register(api, **{"X-API-Key": raw}).status_code == 401


def test_authenticate_request_serves_plain_django_views():
    factory = RequestFactory()
    assert auth.authenticate_request(factory.get("/api/ui/v1/executions/events")) == policy.OPEN
    key, raw = auth.issue_key("dashboard", policy.CLIENT)
    assert auth.authenticate_request(factory.get("/x")) is None
    assert auth.authenticate_request(factory.get("/x", headers={"X-API-Key": "afk_nope"})) is None
    assert auth.authenticate_request(factory.get(f"/x?api_key={raw}")) is None
    principal = auth.authenticate_request(factory.get("/x", headers={"X-API-Key": raw}))
    assert (principal.key_id, principal.role) == (key.pk, policy.CLIENT)
    assert auth.authenticate_request(factory.get("/x", headers={"Authorization": f"bearer {raw}"})) == principal
    response = auth.unauthorized_response()
    assert response.status_code == 401 and json.loads(response.content) == REFUSAL


def test_create_api_key_prints_a_working_key_once(api, capsys):
    call_command("create_api_key", "ci", "--role", "agent", "--nodes", "echo,batch")
    out, err = capsys.readouterr()
    raw = out.strip()
    assert "shown only now" in err and raw not in err
    key = ApiKey.objects.get(name="ci")
    assert (key.key_hash, key.role, key.node_ids) == (auth.hash_key(raw), "agent", ["echo", "batch"])
    assert register(api, **{"X-API-Key": raw}).status_code == 201


def test_create_api_key_insists_on_a_role_and_reserves_nodes_only_for_agents():
    with pytest.raises(CommandError):
        call_command("create_api_key", "ci")
    with pytest.raises(CommandError, match="--role agent"):
        call_command("create_api_key", "ci", "--role", "client", "--nodes", "echo")
    assert not ApiKey.objects.exists()


def test_plain_django_views_under_the_api_are_guarded_too(api):
    """The sync execute route is a plain async view: the middleware refuses it the same way."""
    _, raw = auth.issue_key("agents")
    body = json.dumps({"input": {}})
    response = api.post("/api/v1/execute/ghost.echo", data=body, content_type="application/json")
    assert (response.status_code, response.json()) == (401, REFUSAL)
    wrong = api.post(
        "/api/v1/execute/ghost.echo", data=body, content_type="application/json", headers={"X-API-Key": "afk_x"}
    )
    assert (wrong.status_code, wrong.json()) == (401, REFUSAL)
    allowed = api.post(
        "/api/v1/execute/ghost.echo", data=body, content_type="application/json", headers={"X-API-Key": raw}
    )
    assert allowed.status_code == 404  # past authentication: the node is unknown


def test_a_staff_session_counts_for_plain_views_only_when_reading():
    auth.issue_key("agents")
    staff = get_user_model().objects.create_user("ops", password="pw-for-tests", is_staff=True)
    reading = RequestFactory().get("/api/ui/v1/executions/events")
    reading.user = staff
    writing = RequestFactory().post("/api/v1/execute/a.b")
    writing.user = staff
    assert auth.authenticate_request(reading) == policy.STAFF
    assert auth.authenticate_request(writing) is None


def test_the_middleware_guards_plain_async_views_under_the_ui_api_but_nothing_else():
    from nodes.middleware import ApiKeyMiddleware

    async def stream(request):  # stands in for the SSE view
        raise AssertionError("not called by process_view")

    middleware = ApiKeyMiddleware(lambda request: None)
    factory = RequestFactory()
    _, raw = auth.issue_key("dashboard")
    refused = middleware.process_view(factory.get("/api/ui/v1/executions/events"), stream, (), {})
    assert refused.status_code == 401 and json.loads(refused.content) == REFUSAL
    keyed = factory.get("/api/ui/v1/executions/events", headers={"X-API-Key": raw})
    assert middleware.process_view(keyed, stream, (), {}) is None
    assert middleware.process_view(factory.get("/dashboard/"), stream, (), {}) is None
