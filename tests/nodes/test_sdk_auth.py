"""The real SDK, given AGENTFIELD_API_KEY, registers and heart-beats with a server that requires keys."""

import pytest

from nodes.auth import issue_key
from nodes.models import ApiKey
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


def test_executions_run_end_to_end_with_keys_required(launch):
    """Status callbacks, logs and nested app.call traffic all carry the SDK's X-API-Key."""
    _, raw = issue_key("agents")
    headers = {"X-API-Key": raw}
    url = launch.server()
    launch.dispatcher()
    launch.agent("echo_agent.py", url, NODE_ID="echo", AGENTFIELD_API_KEY=raw)
    for node_id in ("orchestrator", "finance", "research", "analytics"):
        launch.agent("fanout_agents.py", url, NODE_ID=node_id, AGENTFIELD_API_KEY=raw)
    for node_id in ("echo", "orchestrator", "finance", "research", "analytics"):
        _wait_active(url, node_id, headers)

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
