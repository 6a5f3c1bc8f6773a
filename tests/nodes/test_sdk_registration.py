"""A real `agentfield` SDK agent registers, heart-beats, dies and comes back."""

import pytest

from tests.processes import http, wait_until

pytestmark = pytest.mark.e2e


def node(url: str, node_id: str) -> dict | None:
    status, body, _ = http("GET", f"{url}/api/v1/nodes/{node_id}")
    return body if status == 200 else None


def test_sdk_agent_registers_and_becomes_active(launch):
    url = launch.server(AGENTFIELD_NODE_LIVENESS_SECONDS=3)
    agent = launch.agent("echo_agent.py", url, NODE_ID="echo")
    registered = wait_until(lambda: node(url, "echo"), timeout=60, message="the agent to register")
    assert {"echo", "slow", "boom"} <= {r["id"] for r in registered["reasoners"]}
    assert [s["id"] for s in registered["skills"]] == ["shout"]
    assert registered["base_url"].startswith("http://")
    first_instance = registered["instance_id"]
    assert first_instance
    wait_until(lambda: (node(url, "echo") or {}).get("lifecycle_status") == "ready", timeout=30)
    assert node(url, "echo")["health_status"] == "active"

    agent.kill()
    wait_until(lambda: node(url, "echo")["health_status"] == "inactive", timeout=30, message="inactive after SIGKILL")

    restarted = launch.agent("echo_agent.py", url, NODE_ID="echo")
    wait_until(lambda: node(url, "echo")["instance_id"] != first_instance, timeout=60, message="re-registration")
    wait_until(lambda: node(url, "echo")["health_status"] == "active", timeout=30)
    assert node(url, "echo")["restarted_at"] is not None

    restarted.stop()  # SIGTERM: the SDK sends its shutdown notice
    wait_until(lambda: node(url, "echo")["health_status"] == "offline", timeout=30, message="offline after SIGTERM")
    status, listed, _ = http("GET", f"{url}/api/v1/nodes")
    assert status == 200 and listed["count"] == 0
    status, listed, _ = http("GET", f"{url}/api/v1/nodes?show_all=true")
    assert [n["id"] for n in listed["nodes"]] == ["echo"]
