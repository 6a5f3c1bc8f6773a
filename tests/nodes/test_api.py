"""The node registry's JSON API: registration, heartbeats, shutdown, listing, health."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from agentfield_project.runtime.server import daphne_command
from nodes import services
from nodes.models import Node, NodeInstance
from tests.processes import Process, base_env, free_port, http, wait_until

pytestmark = pytest.mark.django_db

REGISTER = "/api/v1/nodes/register"


def registration(**overrides) -> dict:
    body = {
        "id": "echo",
        "base_url": "http://localhost:8001",
        "version": "1.0.0",
        "reasoners": [{"id": "echo", "input_schema": {"type": "object"}}],
        "skills": [{"id": "shout"}],
        "instance_id": "first",
    }
    body.update(overrides)
    return body


def post_json(api, url: str, body) -> object:
    return api.post(url, data=json.dumps(body), content_type="application/json")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"id": "echo",', "malformed JSON"),
        (b"", "id: This field is required"),
        (b'["echo"]', "must be a JSON object"),
        (b'"echo"', "must be a JSON object"),
        (b'{"base_url": "http://localhost:1"}', "id: This field is required"),
        (b'{"id": "echo"}', "base_url: This field is required"),
    ],
)
def test_registration_rejects_malformed_bodies_with_a_readable_400(api, raw, message):
    response = api.post(REGISTER, data=raw, content_type="application/json")
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not Node.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"base_url": "ftp://localhost:8001"}, "base_url: must use http or https, got: ftp"),
        ({"base_url": "localhost:8001"}, "base_url: must use http or https"),
        ({"base_url": "http:///reasoners"}, "base_url: must include a host"),
        ({"id": "echo.v2"}, "id: must not contain '.'"),
        ({"id": "x" * 256}, "id: Ensure this field has no more than 255 characters"),
        ({"id": " echo"}, "id: must be a non-empty id without surrounding spaces"),
        ({"id": ""}, "id: This field may not be blank"),
        ({"reasoners": {"id": "echo"}}, "reasoners: Expected a list of items"),
        ({"reasoners": [{"name": "echo"}]}, "reasoners: 0: id: This field is required"),
        ({"reasoners": ["echo"]}, "reasoners: 0: must be an object with an 'id'"),
        ({"skills": [{"id": "a.b"}]}, "skills: 0: id must not contain '.' or '/'"),
        ({"metadata": "x"}, "metadata: Expected a dictionary"),
    ],
)
def test_registration_rejects_each_bad_field_naming_what_is_wrong(api, overrides, message):
    response = post_json(api, REGISTER, registration(**overrides))
    assert response.status_code == 400
    assert message in response.json()["error"], response.json()
    assert response.json()["code"] == "invalid"
    assert not Node.objects.exists()


def test_registration_answers_201_with_the_fields_the_sdk_reads(api):
    response = post_json(api, REGISTER, registration())
    assert response.status_code == 201
    assert response.json() == {
        "success": True,
        "message": "Node registered successfully",
        "node_id": "echo",
        "resolved_base_url": "http://localhost:8001",
        "restarted": False,
    }
    node = Node.objects.get(pk="echo")
    assert node.reasoner_ids() == ["echo"] and node.skill_ids() == ["shout"]
    assert node.lifecycle_status == Node.Lifecycle.STARTING


def test_post_to_the_node_collection_also_registers(api):
    assert post_json(api, "/api/v1/nodes", registration()).status_code == 201
    assert Node.objects.filter(pk="echo").exists()


def test_a_new_instance_at_the_address_of_another_is_reported_as_a_restart(api):
    post_json(api, REGISTER, registration())
    same = post_json(api, REGISTER, registration())
    assert same.json()["restarted"] is False
    again = post_json(api, REGISTER, registration(instance_id="second"))
    assert again.status_code == 201 and again.json()["restarted"] is True
    node = Node.objects.get(pk="echo")
    assert node.instance_id == "second" and node.restarted_at is not None
    assert list(node.instances.values_list("instance_id", flat=True)) == ["second"]  # the old process is gone
    assert Node.objects.count() == 1


def test_a_new_instance_at_another_address_is_a_second_process_of_the_node(api):
    post_json(api, REGISTER, registration())
    other = post_json(api, REGISTER, registration(instance_id="second", base_url="http://localhost:9000/"))
    assert other.status_code == 201 and other.json()["restarted"] is False
    node = Node.objects.get(pk="echo")
    assert node.base_url == "http://localhost:9000"  # the node shows its newest registration
    instances = dict(node.instances.values_list("instance_id", "base_url"))
    assert instances == {registration()["instance_id"]: registration()["base_url"].rstrip("/"),
                         "second": "http://localhost:9000"}  # fmt: skip


def test_heartbeats_are_per_instance(api):
    post_json(api, REGISTER, registration(instance_id="a", base_url="http://localhost:9001"))
    post_json(api, REGISTER, registration(instance_id="b", base_url="http://localhost:9002"))
    NodeInstance.objects.update(last_heartbeat_at=timezone.now() - timedelta(minutes=5))
    assert post_json(api, "/api/v1/nodes/echo/heartbeat", {"status": "ready", "instance_id": "a"}).status_code == 200
    beats = dict(NodeInstance.objects.values_list("instance_id", "last_heartbeat_at"))
    assert timezone.now() - beats["a"] < timedelta(seconds=5) < timezone.now() - beats["b"]
    unknown = post_json(api, "/api/v1/nodes/echo/heartbeat", {"instance_id": "gone"})
    assert unknown.status_code == 404 and "instance 'gone'" in unknown.json()["error"]


def test_heartbeat_for_an_unknown_node_is_404_so_the_sdk_registers_again(api):
    response = post_json(api, "/api/v1/nodes/ghost/heartbeat", {"status": "ready"})
    assert response.status_code == 404
    assert response.json() == {"error": "node 'ghost' not found", "code": "not_found"}


def test_heartbeat_is_a_single_update_query(api, django_assert_num_queries):
    post_json(api, REGISTER, registration())
    with django_assert_num_queries(1) as context:
        response = post_json(api, "/api/v1/nodes/echo/heartbeat", {"status": "ready", "timestamp": "x"})
    assert response.status_code == 200
    sql = context.captured_queries[0]["sql"]
    assert "UPDATE nodes_nodeinstance" in sql and "UPDATE nodes_node\n" in sql


def test_heartbeat_accepts_an_empty_or_odd_body(api):
    post_json(api, REGISTER, registration())
    assert api.post("/api/v1/nodes/echo/heartbeat").status_code == 200
    assert post_json(api, "/api/v1/nodes/echo/heartbeat", ["not", "an", "object"]).status_code == 200
    assert Node.objects.get(pk="echo").lifecycle_status == Node.Lifecycle.STARTING


def test_shutdown_answers_202_and_the_node_goes_offline(api):
    post_json(api, REGISTER, registration())
    response = post_json(api, "/api/v1/nodes/echo/shutdown", {"reason": "signal", "timeout_seconds": 30.0})
    assert response.status_code == 202
    body = api.get("/api/v1/nodes/echo").json()
    assert body["health_status"] == "offline" and body["lifecycle_status"] == "offline"


def test_shutdown_of_an_unknown_node_is_404(api):
    assert post_json(api, "/api/v1/nodes/ghost/shutdown", {}).status_code == 404


def test_a_heartbeat_after_shutdown_does_not_revive_the_node(api):
    post_json(api, REGISTER, registration())
    post_json(api, "/api/v1/nodes/echo/shutdown", {})
    assert post_json(api, "/api/v1/nodes/echo/heartbeat", {"status": "ready"}).status_code == 200
    assert api.get("/api/v1/nodes/echo").json()["health_status"] == "offline"
    post_json(api, REGISTER, registration(instance_id="second"))
    assert api.get("/api/v1/nodes/echo").json()["health_status"] == "active"


def test_node_detail_reports_ready_once_heartbeats_arrive(api):
    post_json(api, REGISTER, registration())
    assert api.get("/api/v1/nodes/echo").json()["lifecycle_status"] == "starting"
    post_json(api, "/api/v1/nodes/echo/heartbeat", {"status": "ready"})
    body = api.get("/api/v1/nodes/echo").json()
    assert body["lifecycle_status"] == "ready" and body["health_status"] == "active"
    assert body["reasoners"][0]["input_schema"] == {"type": "object"}


def test_node_detail_of_an_unknown_node_is_404(api):
    response = api.get("/api/v1/nodes/ghost")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def _three_nodes() -> None:
    now = timezone.now()
    services.register_node(registration(id="fresh"), now)
    services.register_node(registration(id="stale"), now - timedelta(hours=1))
    services.register_node(registration(id="gone"), now)
    services.shutdown("gone", None, now)


def test_node_list_shows_active_nodes_unless_asked_otherwise(api):
    _three_nodes()
    body = api.get("/api/v1/nodes").json()
    assert [n["id"] for n in body["nodes"]] == ["fresh"]
    assert body["count"] == 1 and body["filters"] == {"health_status": "active"}
    everything = api.get("/api/v1/nodes?show_all=true").json()
    assert sorted(n["id"] for n in everything["nodes"]) == ["fresh", "gone", "stale"]
    assert everything["filters"] == {}


@pytest.mark.parametrize(("health", "expected"), [("active", "fresh"), ("inactive", "stale"), ("offline", "gone")])
def test_node_list_filters_by_health_status(api, health, expected):
    _three_nodes()
    body = api.get(f"/api/v1/nodes?health_status={health}").json()
    assert [n["id"] for n in body["nodes"]] == [expected]
    assert body["nodes"][0]["health_status"] == health


def test_node_list_rejects_an_unknown_health_status(api):
    response = api.get("/api/v1/nodes?health_status=sleepy")
    assert response.status_code == 400
    assert "health_status: must be one of active, inactive, offline" in response.json()["error"]


def test_health_answers_200_while_the_database_responds(api):
    response = api.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json()["status"] == "healthy"
    assert response.json()["checks"]["storage"]["status"] == "healthy"


@pytest.mark.e2e
def test_health_answers_503_when_the_database_is_unreachable(log_dir):
    """A real server whose DATABASE_URL points at a closed port still answers, with 503."""
    db_port, port = free_port(), free_port()
    args = daphne_command("-b", "127.0.0.1", "-p", str(port))
    server = Process("daphne", args, base_env(f"postgres://postgres@127.0.0.1:{db_port}/nowhere"), log_dir)
    try:

        def answer():
            try:
                return http("GET", f"http://127.0.0.1:{port}/api/v1/health", timeout=5)
            except OSError:
                return None

        status, body, _ = wait_until(answer, timeout=30, message="daphne to answer")
        assert status == 503, body
        assert body["status"] == "unhealthy"
        assert body["checks"]["storage"] == {"status": "unhealthy", "message": "database error: OperationalError"}
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"base_url": "http://[::1"}, "base_url: is not a valid URL"),
        ({"base_url": "http://localhost:99999"}, "base_url: is not a valid URL"),
        ({"base_url": "http://[::1]:8001"}, "base_url: must be an http(s) URL with a plain host name"),
        ({"base_url": "http://local host:1"}, "base_url: must be an http(s) URL with a plain host name"),
        ({"base_url": "http://user@host:1"}, "base_url: must be an http(s) URL with a plain host name"),
        ({"skills": [{"id": 0}]}, "skills: 0: id: Not a valid string"),
        ({"skills": [{"id": " shout"}]}, "skills: 0: id must not be blank or have surrounding spaces"),
        ({"instance_id": 7}, "instance_id: Not a valid string"),
    ],
)
def test_registration_rejects_inputs_schemathesis_found(api, overrides, message):
    """Each of these once gave a 500 or was silently coerced."""
    response = post_json(api, REGISTER, registration(**overrides))
    assert response.status_code == 400
    assert message in response.json()["error"], response.json()
    assert not Node.objects.exists()


@pytest.mark.parametrize("url", ["http://127.0.0.1:8001", "HTTPS://LOCALHOST:443/base/", "http://127.1:8001/x"])
def test_registration_accepts_unusual_but_valid_base_urls(api, url):
    assert post_json(api, REGISTER, registration(base_url=url)).status_code == 201


@pytest.mark.parametrize(
    ("url", "allowed", "message"),
    [
        ("http://169.254.169.254/", ["0.0.0.0/0"], "agents may not use (169.254.169.254)"),
        ("http://169.254.1.1:80/", ["169.254.0.0/16"], "agents may not use (169.254.1.1)"),  # listed, still not
        ("http://2130706433:8001/", [], "agents may not use (127.0.0.1)"),  # an integer spelling of loopback
        ("http://127.0.0.1:8001/", [], "agents may not use (127.0.0.1)"),  # loopback is not listed
        ("http://10.1.2.3:8001/", ["127.0.0.0/8"], "agents may not use (10.1.2.3)"),
        ("http://127.0.0.1:8001/internal/secret?", ["127.0.0.0/8"], "query string or a fragment"),
        ("http://127.0.0.1:8001/x#frag", ["127.0.0.0/8"], "query string or a fragment"),
        ("http://user:pw@127.0.0.1:8001/", ["127.0.0.0/8"], "no user"),
        ("http://no-such-host.invalid/", ["0.0.0.0/0"], "could not resolve no-such-host.invalid"),
    ],
)
def test_registration_refuses_agent_urls_the_control_plane_must_not_call(api, settings, url, allowed, message):
    settings.AGENTFIELD_AGENT_ALLOWED_CIDRS = allowed
    response = post_json(api, REGISTER, registration(base_url=url))
    assert response.status_code == 400 and message in response.json()["error"], response.json()
    assert not Node.objects.exists()


def test_an_agent_on_a_listed_private_network_or_a_public_address_is_accepted(api, settings):
    settings.AGENTFIELD_AGENT_ALLOWED_CIDRS = ["10.0.0.0/8"]
    assert post_json(api, REGISTER, registration(base_url="http://10.1.2.3:8001")).status_code == 201
    assert post_json(api, REGISTER, registration(id="pub", base_url="http://93.184.216.34:80")).status_code == 201


def test_node_list_rejects_a_show_all_that_is_not_a_boolean(api):
    response = api.get("/api/v1/nodes?show_all=maybe")
    assert response.status_code == 400 and "show_all: must be true or false" in response.json()["error"]
