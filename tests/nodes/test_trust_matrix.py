"""The trust model, route by route: every route × every role × its own object and another's.

Two tenants share the server. Client A fired E1 on node `node-a`, which agent A serves; client B
fired E2 on `node-b`, which agent B serves. Each case asks as one principal about "own" (E1,
node-a, E1's run) or "other" (E2, node-b, E2's run) and expects one status. The rules are
nodes/policy.py's; a refusal of something the principal may not even see is a 404.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from executions.models import Execution, MemoryEntry
from nodes import auth, policy
from nodes.models import Node
from tests.factories import make_execution, make_node

pytestmark = pytest.mark.django_db


@dataclass
class World:
    keys: dict[str, str]  # role name -> raw key
    e1: Execution
    e2: Execution


@pytest.fixture
def world() -> World:
    raw = {}
    ids = {}
    for name, role in (("admin", policy.ADMIN), ("client", policy.CLIENT), ("client-b", policy.CLIENT),
                       ("agent", policy.AGENT), ("agent-b", policy.AGENT)):  # fmt: skip
        key, raw[name] = auth.issue_key(name, role)
        ids[name] = key.pk
    node_a = make_node("node-a", reasoners=("work",), owner_key_id=ids["agent"])
    node_b = make_node("node-b", reasoners=("work",), owner_key_id=ids["agent-b"])
    e1 = make_execution(node_a, status="running", owner_key_id=ids["client"], submitted_by_id=ids["client"],
                        node_instance_id=node_a.instance_id)  # fmt: skip
    e2 = make_execution(node_b, status="running", owner_key_id=ids["client-b"], submitted_by_id=ids["client-b"],
                        node_instance_id=node_b.instance_id)  # fmt: skip
    now = timezone.now()
    for execution in (e1, e2):
        MemoryEntry.objects.create(scope="workflow", scope_id=execution.run_id, key="done", data=3,
                                   created_at=now, updated_at=now)  # fmt: skip
    return World(raw, e1, e2)


def call(world: World, role: str, method: str, path: str, body=None, headers=None):
    client = APIClient()
    all_headers = {"X-API-Key": world.keys[role], **(headers or {})}
    if method == "GET":
        return client.get(path, headers=all_headers)
    return client.post(path, data=json.dumps(body or {}), content_type="application/json", headers=all_headers)


# (name, request for (world, execution, node id), expected per role as (own, other))
ROUTES = {
    "read execution": (
        lambda w, e, n: ("GET", f"/api/v1/executions/{e.id}", None, None),
        {"admin": (200, 200), "client": (200, 404), "agent": (200, 404)},
    ),
    "status callback": (
        lambda w, e, n: ("POST", f"/api/v1/executions/{e.id}/status", {"status": "running", "progress": 5}, None),
        {"admin": (200, 200), "client": (403, 404), "agent": (200, 404)},
    ),
    "logs": (
        lambda w, e, n: ("POST", f"/api/v1/executions/{e.id}/logs", {"entries": [{"message": "m"}]}, None),
        {"admin": (202, 202), "client": (403, 404), "agent": (202, 404)},
    ),
    "step event": (
        lambda w, e, n: (
            "POST",
            "/api/v1/workflow/executions/events",
            {"execution_id": e.id, "status": "running"},
            None,
        ),
        {"admin": (200, 200), "client": (403, 404), "agent": (200, 404)},
    ),
    "note": (
        lambda w, e, n: ("POST", "/api/v1/executions/note", {"message": "hi"}, {"X-Execution-ID": e.id}),
        {"admin": (200, 200), "client": (403, 404), "agent": (200, 404)},
    ),
    "cancel": (
        lambda w, e, n: ("POST", f"/api/v1/executions/{e.id}/cancel", None, None),
        {"admin": (200, 200), "client": (200, 404), "agent": (403, 404)},
    ),
    "cancel run": (
        lambda w, e, n: ("POST", f"/api/v1/runs/{e.run_id}/cancel", None, None),
        {"admin": (200, 200), "client": (200, 404), "agent": (403, 404)},
    ),
    "restart": (
        lambda w, e, n: ("POST", f"/api/v1/executions/{e.id}/restart", {}, None),
        {"admin": (202, 202), "client": (202, 404), "agent": (403, 404)},
    ),
    "request approval": (
        lambda w, e, n: (
            "POST",
            f"/api/v1/agents/{n}/executions/{e.id}/request-approval",
            {"approval_request_id": "r"},
            None,
        ),
        {"admin": (200, 200), "client": (403, 404), "agent": (200, 404)},
    ),
    "approval status": (  # no approval requested: those allowed get the route's own 404
        lambda w, e, n: ("GET", f"/api/v1/agents/{n}/executions/{e.id}/approval-status", None, None),
        {"admin": ("not_found", "not_found"), "client": (403, 404), "agent": ("not_found", 404)},
    ),
    "awaiter status": (
        lambda w, e, n: ("POST", f"/api/v1/agents/{n}/executions/{e.id}/awaiter-status", {"status": "waiting"}, None),
        {"admin": (200, 200), "client": (403, 404), "agent": (200, 404)},
    ),
    "approval response": (
        lambda w, e, n: ("POST", f"/api/v1/executions/{e.id}/approval-response", {"decision": "approved"}, None),
        {"admin": ("not_found", "not_found"), "client": ("not_found", 404), "agent": (403, 404)},
    ),
    "redeliver": (  # no webhook registered: those allowed get the webhook's own 404
        lambda w, e, n: ("POST", f"/api/v1/executions/{e.id}/webhook/redeliver", None, None),
        {
            "admin": ("webhook_not_found", "webhook_not_found"),
            "client": ("webhook_not_found", 404),
            "agent": (403, 404),
        },  # fmt: skip
    ),
    "memory get": (
        lambda w, e, n: (
            "POST",
            "/api/v1/memory/get",
            {"key": "done", "scope": "workflow"},
            {"X-Workflow-ID": e.run_id},
        ),
        {"admin": (200, 200), "client": (200, 403), "agent": (200, 403)},
    ),
    "memory set": (
        lambda w, e, n: ("POST", "/api/v1/memory/set", {"key": "done", "data": 4}, {"X-Workflow-ID": e.run_id}),
        {"admin": (200, 200), "client": (403, 403), "agent": (200, 403)},
    ),
    "memory delete": (
        lambda w, e, n: ("POST", "/api/v1/memory/delete", {"key": "done"}, {"X-Workflow-ID": e.run_id}),
        {"admin": (204, 204), "client": (403, 403), "agent": (204, 403)},
    ),
    "memory list": (
        lambda w, e, n: ("GET", "/api/v1/memory/list?scope=workflow", None, {"X-Workflow-ID": e.run_id}),
        {"admin": (200, 200), "client": (200, 403), "agent": (200, 403)},
    ),
    "global memory": (
        lambda w, e, n: ("POST", "/api/v1/memory/set", {"key": "k", "data": 1, "scope": "global"}, None),
        {"admin": (200, 200), "client": (403, 403), "agent": (200, 200)},
    ),
    "register node": (
        lambda w, e, n: (
            "POST",
            "/api/v1/nodes/register",
            {"id": n, "base_url": "http://127.0.0.1:9", "reasoners": [{"id": "work"}], "instance_id": "i2"},
            None,
        ),
        {"admin": (201, 201), "client": (403, 403), "agent": (201, 403)},
    ),  # fmt: skip
    "heartbeat": (
        lambda w, e, n: ("POST", f"/api/v1/nodes/{n}/heartbeat", {"status": "ready"}, None),
        {"admin": (200, 200), "client": (403, 403), "agent": (200, 403)},
    ),
    "shutdown": (
        lambda w, e, n: ("POST", f"/api/v1/nodes/{n}/shutdown", {}, None),
        {"admin": (202, 202), "client": (403, 403), "agent": (202, 403)},
    ),
    "read node": (
        lambda w, e, n: ("GET", f"/api/v1/nodes/{n}", None, None),
        {"admin": (200, 200), "client": (200, 200), "agent": (200, 200)},
    ),
    "execute": (
        lambda w, e, n: ("POST", f"/api/v1/execute/async/{n}.work", {"input": {}}, None),
        {"admin": (202, 202), "client": (202, 202), "agent": (202, 202)},
    ),
    "execute into the run": (
        lambda w, e, n: ("POST", f"/api/v1/execute/async/{n}.work", {"input": {}}, {"X-Run-ID": e.run_id}),
        {"admin": (202, 202), "client": (202, 403), "agent": (202, 403)},
    ),
    "event stream stats": (
        lambda w, e, n: ("GET", "/api/ui/v1/executions/events/stats", None, None),
        {"admin": (200, 200), "client": (403, 403), "agent": (403, 403)},
    ),
}

CASES = [
    pytest.param(route, role, which, id=f"{route}-{role}-{which}")
    for route in ROUTES
    for role in ("admin", "client", "agent")
    for which in ("own", "other")
]


@pytest.mark.parametrize(("route", "role", "which"), CASES)
def test_route_by_role(world, route, role, which):
    make_request, expected = ROUTES[route]
    execution, node = (world.e1, "node-a") if which == "own" else (world.e2, "node-b")
    method, path, body, headers = make_request(world, execution, node)
    before = _state(world)
    response = call(world, role, method, path, body, headers)
    want = expected[role][0 if which == "own" else 1]
    if isinstance(want, str):  # allowed through, answered by the route itself
        assert (response.status_code, response.json().get("code")) == (404, want), response.content
    else:
        assert response.status_code == want, response.content
    if want in (403, 404):
        assert _state(world) == before, "a refused request changed something"
        assert response.json()["code"] in ("permission_denied", "not_found")


def _state(world: World) -> tuple:
    """Everything a request could change, to show that a refusal changed nothing."""
    executions = sorted(Execution.objects.values_list("id", "status", "progress", "owner_key_id"))
    memory = sorted(MemoryEntry.objects.values_list("scope", "scope_id", "key", "data"))
    nodes = sorted(Node.objects.values_list("id", "base_url", "owner_key_id", "shutdown_at", "last_heartbeat_at"))
    from executions.models import TraceEntry

    return executions, memory, nodes, TraceEntry.objects.count()


def test_lists_and_batch_status_show_each_key_only_what_it_may_read(world):
    listing = {role: {item["execution_id"] for item in call(world, role, "GET", "/api/v1/executions").json()["executions"]}
               for role in ("admin", "client", "agent")}  # fmt: skip
    assert listing == {"admin": {world.e1.id, world.e2.id}, "client": {world.e1.id}, "agent": {world.e1.id}}
    body = {"execution_ids": [world.e1.id, world.e2.id]}
    answer = call(world, "client", "POST", "/api/v1/executions/batch-status", body).json()
    assert answer[world.e1.id]["status"] == "running"
    assert answer[world.e2.id] == {"execution_id": world.e2.id, "status": "not_found"}


def test_a_child_fired_by_the_agent_serving_the_parent_belongs_to_the_parents_owner(world):
    headers = {"X-Execution-ID": world.e1.id, "X-Run-ID": world.e1.run_id}
    response = call(world, "agent", "POST", "/api/v1/execute/async/node-b.work", {"input": {}}, headers)
    assert response.status_code == 202, response.content
    child = Execution.objects.get(pk=response.json()["execution_id"])
    assert (child.owner_key_id, child.submitted_by_id) == (
        world.e1.owner_key_id,
        auth.match_key(world.keys["agent"]).key_id,
    )
    assert call(world, "client", "GET", f"/api/v1/executions/{child.id}").status_code == 200  # the run's owner
    assert call(world, "agent", "GET", f"/api/v1/executions/{child.id}").status_code == 200  # the caller polls it
    assert (
        call(world, "agent-b", "POST", f"/api/v1/executions/{child.id}/status", {"status": "succeeded"}).status_code
        == 200
    )
    assert call(world, "client-b", "GET", f"/api/v1/executions/{child.id}").status_code == 404


def test_a_node_id_reserved_for_an_agent_key_is_refused_to_every_other_agent_key(world):
    key, raw = auth.issue_key("reserved", policy.AGENT, ["node-r"])
    world.keys["reserved"] = raw
    body = {"id": "node-r", "base_url": "http://127.0.0.1:9", "reasoners": [{"id": "work"}]}
    assert call(world, "agent", "POST", "/api/v1/nodes/register", body).status_code == 403
    assert not Node.objects.filter(pk="node-r").exists()
    assert call(world, "reserved", "POST", "/api/v1/nodes/register", body).status_code == 201
    assert Node.objects.get(pk="node-r").owner_key_id == key.pk


def test_a_hijack_of_another_agents_node_changes_nothing_and_moves_no_work(world):
    attack = {"id": "node-a", "base_url": "http://127.0.0.1:6666", "reasoners": [{"id": "work"}], "instance_id": "evil"}
    response = call(world, "agent-b", "POST", "/api/v1/nodes/register", attack)
    assert response.status_code == 403
    node = Node.objects.get(pk="node-a")
    assert node.base_url == "http://127.0.0.1:9" and list(node.instances.values_list("instance_id", flat=True)) == [
        node.instance_id
    ]
    assert Execution.objects.get(pk=world.e1.pk).status == "running"
