"""Memory change events: the SDK's WebSocket and history route, fed across processes by PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta

import pytest
import websockets
from agentfield.memory_events import EventSubscription
from agentfield.types import MemoryChangeEvent
from django.utils import timezone

from executions import memory_events
from executions.memory import ScopeRef, delete_entry, set_entry
from executions.models import MemoryEvent
from nodes import auth, policy
from tests.factories import make_execution, make_node
from tests.processes import http, wait_until


@pytest.mark.parametrize(
    ("patterns", "key", "hit"),
    [([], "any", True), (["progress*"], "progress.items", True), (["progress*"], "done", False),
     (["a.b"], "aXb", False), (["*.done", "x"], "batch.done", True)],
)  # fmt: skip
def test_patterns_follow_the_sdks_wildcards_without_regex_surprises(patterns, key, hit):
    assert memory_events.key_matches(patterns, key) is hit


@pytest.mark.django_db
def test_every_set_and_delete_leaves_an_event_and_history_shows_what_the_key_may_read():
    now = timezone.now()
    set_entry(ScopeRef("workflow", "run_mine"), "progress", {"done": 1}, now)
    set_entry(ScopeRef("workflow", "run_theirs"), "progress", {"done": 9}, now)
    assert delete_entry(ScopeRef("workflow", "run_mine"), "progress", now) is True
    assert delete_entry(ScopeRef("workflow", "run_mine"), "progress", now) is False  # nothing changed
    assert list(MemoryEvent.objects.values_list("scope_id", "action")) == [
        ("run_mine", "set"), ("run_theirs", "set"), ("run_mine", "delete"),
    ]  # fmt: skip
    key, _ = auth.issue_key("client", policy.CLIENT)
    make_execution(make_node(), run_id="run_mine", owner_key_id=key.pk, submitted_by_id=key.pk)
    seen = memory_events.history(policy.Principal(key.pk, policy.CLIENT), {})
    assert [(e["scope_id"], e["action"], e["data"]) for e in seen] == [
        ("run_mine", "set", None),
        ("run_mine", "delete", None),
    ]
    everything = memory_events.history(policy.OPEN, {"patterns": "prog*", "scope_id": "run_theirs"})
    assert [(e["key"], e["data"]) for e in everything] == [("progress", {"done": 9})]
    assert memory_events.prune(now + timedelta(days=2)) == 3


@pytest.mark.e2e
def test_a_socket_hears_changes_made_through_another_server_in_the_sdks_shape(launch, db_url):
    _, key = auth.issue_key("ops", policy.ADMIN)
    watching = launch.server()
    writing = launch.server()
    headers = {"X-API-Key": key}

    async def watch() -> list[dict]:
        url = watching.replace("http://", "ws://") + "/api/v1/memory/events/ws?patterns=progress*&scope=global"
        async with websockets.connect(url, additional_headers=headers) as socket:
            for data in ({"n": 1}, {"n": 2}):
                body = {"key": "progress", "data": data, "scope": "global"}
                await asyncio.to_thread(http, "POST", f"{writing}/api/v1/memory/set", body, headers)
                await asyncio.to_thread(http, "POST", f"{writing}/api/v1/memory/set", {**body, "key": "other"}, headers)
            return [json.loads(await asyncio.wait_for(socket.recv(), 30)) for _ in range(2)]

    received = asyncio.run(watch())
    assert [(e["key"], e["action"], e["data"]) for e in received] == [
        ("progress", "set", {"n": 1}),
        ("progress", "set", {"n": 2}),
    ]
    event = MemoryChangeEvent.from_dict(received[0])
    assert event.scope == "global" and EventSubscription(["progress*"], lambda e: None).matches_event(event)
    status, history, _ = http("GET", f"{watching}/api/v1/memory/events/history?patterns=progress", headers=headers)
    assert status == 200 and [e["data"] for e in history] == [{"n": 2}, {"n": 2}]  # the entry's current value


@pytest.mark.e2e
def test_a_socket_without_a_valid_key_is_refused(launch, db_url):
    auth.issue_key("ops", policy.ADMIN)
    url = launch.server().replace("http://", "ws://") + "/api/v1/memory/events/ws"

    async def connect(headers: dict) -> None:
        async with websockets.connect(url, additional_headers=headers) as socket:
            await asyncio.wait_for(socket.recv(), 10)

    with pytest.raises(websockets.exceptions.WebSocketException):
        asyncio.run(connect({"X-API-Key": "wrong"}))


@pytest.mark.e2e
def test_an_sdk_agent_starts_without_memory_socket_errors(launch):
    url = launch.server()
    agent = launch.agent("echo_agent.py", url, NODE_ID="echo")

    def registered() -> bool:
        code, body, _ = http("GET", f"{url}/api/v1/nodes/echo")
        return code == 200 and body["health_status"] == "active"

    wait_until(registered, timeout=60, message="agent registration")
    wait_until(lambda: "Connected to AgentField server" in agent.output(), timeout=30)
    time.sleep(3)  # the SDK connects its memory socket right after; it used to be refused (403) here
    assert "Failed to connect to memory events" not in agent.output()


@pytest.mark.django_db
def test_did_registration_is_a_404_that_says_why(api):
    answer = api.post("/api/v1/did/register", {"agent_node_id": "echo"}, format="json")
    assert answer.status_code == 404 and answer.json()["code"] == "did_not_supported"
    assert "issues no DIDs" in answer.json()["error"]
