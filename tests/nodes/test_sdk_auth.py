"""The real SDK, given AGENTFIELD_API_KEY, registers and heart-beats with a server that requires keys."""

import pytest

from nodes import policy
from nodes.auth import issue_key
from nodes.models import ApiKey, Node
from tests.processes import http, wait_until

pytestmark = pytest.mark.e2e


def test_sdk_agent_with_an_api_key_registers_where_keys_are_required(launch):
    key, raw = issue_key("agents")
    url = launch.server()
    status, body, _ = http("GET", f"{url}/api/v1/nodes?show_all=true")
    assert status == 401 and body["code"] == "not_authenticated"

    launch.agent("echo_agent.py", url, NODE_ID="keyed", AGENTFIELD_API_KEY=raw)
    headers = {"X-API-Key": raw}

    def ready():
        status, body, _ = http("GET", f"{url}/api/v1/nodes/keyed", headers=headers)
        return status == 200 and body["lifecycle_status"] == "ready"

    wait_until(ready, timeout=60, message="the keyed agent to register and heart-beat")
    assert ApiKey.objects.get(pk=key.pk).last_used_at is not None
    status, _, _ = http("POST", f"{url}/api/v1/nodes/keyed/heartbeat", {"status": "ready"})
    assert status == 401


def _wait_active(url: str, node_id: str, headers: dict) -> None:
    def active():
        status, body, _ = http("GET", f"{url}/api/v1/nodes/{node_id}", headers=headers)
        return status == 200 and body["health_status"] == "active"

    wait_until(active, timeout=60, message=f"{node_id} to register with its key")


def test_executions_run_end_to_end_with_an_agent_key_and_a_client_key(launch):
    """The SDK runs unchanged with an agent key: registration, heartbeats, memory, callbacks, logs and
    nested app.call traffic all carry it; a client key fires the work and reads only its own."""
    agent_key, raw = issue_key("agents", policy.AGENT)
    _, client_raw = issue_key("ci", policy.CLIENT)
    _, other_raw = issue_key("someone-else", policy.CLIENT)
    headers = {"X-API-Key": client_raw}
    url = launch.server()
    launch.dispatcher()
    launch.agent("echo_agent.py", url, NODE_ID="echo", AGENTFIELD_API_KEY=raw)
    for node_id in ("orchestrator", "finance", "research", "analytics"):
        launch.agent("fanout_agents.py", url, NODE_ID=node_id, AGENTFIELD_API_KEY=raw)
    for node_id in ("echo", "orchestrator", "finance", "research", "analytics"):
        _wait_active(url, node_id, headers)
    assert set(Node.objects.values_list("owner_key_id", flat=True)) == {agent_key.pk}  # claimed by the agents' key

    status, _, _ = http("POST", f"{url}/api/v1/execute/async/echo.echo", {"input": {"message": "hi"}})
    assert status == 401
    runs = {}
    for target, payload in (
        ("echo.echo", {"message": "hi"}),
        ("orchestrator.generate_quarterly_report", {"quarter": "Q1"}),
    ):
        status, body, _ = http("POST", f"{url}/api/v1/execute/async/{target}", {"input": payload}, headers)
        assert status == 202, body
        runs[target] = body["execution_id"]

    def finished(execution_id: str) -> dict | None:
        body = http("GET", f"{url}/api/v1/executions/{execution_id}", headers=headers)[1]
        return body if body["status"] in ("succeeded", "failed", "cancelled", "timeout") else None

    echo = wait_until(lambda: finished(runs["echo.echo"]), timeout=60, message="echo to finish")
    assert echo["status"] == "succeeded" and echo["result"]["echo"] == "hi"
    report = wait_until(lambda: finished(runs["orchestrator.generate_quarterly_report"]), timeout=90)
    assert report["status"] == "succeeded", report
    assert len(report["result"]["sections"]) == 3
    # The children the orchestrator fired belong to the client's run; another client sees none of it.
    parent = runs["orchestrator.generate_quarterly_report"]
    children = http("GET", f"{url}/api/v1/executions?parent_execution_id={parent}", headers=headers)[1]
    assert children["count"] == 3
    other = {"X-API-Key": other_raw}
    assert http("GET", f"{url}/api/v1/executions/{parent}", headers=other)[0] == 404
    assert http("GET", f"{url}/api/v1/executions", headers=other)[1]["count"] == 0
    # The client may not forge the agent's report.
    forged = http("POST", f"{url}/api/v1/executions/{runs['echo.echo']}/status", {"status": "failed"}, headers)
    assert forged[0] == 403


def test_the_event_stream_accepts_an_api_key_and_refuses_like_every_route(launch):
    from tests.sse_client import Stream

    _, raw = issue_key("watcher")
    url = launch.server()
    with Stream(url) as anonymous:
        assert anonymous.status == 401 and anonymous.json()["code"] == "not_authenticated"
    with Stream(url, headers={"X-API-Key": "afk_wrong"}) as wrong:
        assert wrong.status == 401 and wrong.json()["code"] == "not_authenticated"
    with Stream(url, headers={"X-API-Key": raw}) as keyed:
        assert keyed.status == 200
        assert keyed.headers["Content-Type"].startswith("text/event-stream")
