"""End to end with real SDK agent processes, daphne and run_dispatcher."""

import pytest

from tests.processes import http, wait_until

pytestmark = pytest.mark.e2e


def registered(url: str, node_id: str) -> bool:
    status, body, _ = http("GET", f"{url}/api/v1/nodes/{node_id}")
    return status == 200 and body["health_status"] == "active"


def execution(url: str, execution_id: str) -> dict:
    status, body, _ = http("GET", f"{url}/api/v1/executions/{execution_id}")
    assert status == 200, body
    return body


def terminal(url: str, execution_id: str) -> dict | None:
    body = execution(url, execution_id)
    return body if body["status"] in ("succeeded", "failed", "cancelled", "timeout") else None


def test_async_execute_is_queued_then_succeeds_with_the_result(launch):
    url = launch.server()
    launch.dispatcher()
    launch.agent("echo_agent.py", url, NODE_ID="echo")
    wait_until(lambda: registered(url, "echo"), timeout=60, message="agent registration")

    status, accepted, headers = http("POST", f"{url}/api/v1/execute/async/echo.echo", {"input": {"message": "hi"}})
    assert status == 202, accepted
    assert accepted["status"] == "queued"
    assert accepted["execution_id"].startswith("exec_") and accepted["run_id"].startswith("run_")
    assert accepted["workflow_id"] == accepted["run_id"]
    assert accepted["target"] == "echo.echo" and accepted["type"] == "reasoner"
    assert accepted["webhook_registered"] is False
    assert headers["X-Execution-ID"] == accepted["execution_id"]

    done = wait_until(lambda: terminal(url, accepted["execution_id"]), timeout=30, message="execution to finish")
    assert done["status"] == "succeeded", done
    assert done["result"] == {"echo": "hi", "extra": None}
    assert done["attempt"] == 1
    assert done["started_at"] and done["completed_at"] and done["duration_ms"] >= 0


def test_a_failing_reasoner_fails_with_its_message_and_a_skill_answers_inline(launch):
    url = launch.server()
    launch.dispatcher()
    launch.agent("echo_agent.py", url, NODE_ID="echo")
    wait_until(lambda: registered(url, "echo"), timeout=60, message="agent registration")
    _, failing, _ = http("POST", f"{url}/api/v1/execute/async/echo.boom", {"input": {"message": "kaput"}})
    _, skill, _ = http("POST", f"{url}/api/v1/execute/async/echo.shout", {"input": {"text": "hey"}})
    failed = wait_until(lambda: terminal(url, failing["execution_id"]), timeout=30)
    assert failed["status"] == "failed" and "kaput" in failed["error"] and failed["error_message"] == failed["error"]
    shouted = wait_until(lambda: terminal(url, skill["execution_id"]), timeout=30)
    assert shouted["status"] == "succeeded" and shouted["result"] == {"text": "HEY"} and shouted["type"] == "skill"


def test_sync_execute_answers_with_the_terminal_status(launch):
    url = launch.server()
    launch.dispatcher()
    launch.agent("echo_agent.py", url, NODE_ID="echo")
    wait_until(lambda: registered(url, "echo"), timeout=60, message="agent registration")
    status, body, _ = http("POST", f"{url}/api/v1/execute/echo.slow", {"input": {"seconds": 0.3}}, timeout=60)
    assert status == 200, body
    assert body["status"] == "succeeded" and body["result"] == {"slept": 0.3}


def test_sync_execute_answers_202_after_the_configured_wait(launch):
    url = launch.server(AGENTFIELD_SYNC_WAIT_SECONDS=0.5)
    launch.dispatcher()
    launch.agent("echo_agent.py", url, NODE_ID="echo")
    wait_until(lambda: registered(url, "echo"), timeout=60, message="agent registration")
    status, body, _ = http("POST", f"{url}/api/v1/execute/echo.slow", {"input": {"seconds": 3}}, timeout=60)
    assert status == 202 and body["execution_id"]
    done = wait_until(lambda: terminal(url, body["execution_id"]), timeout=30)
    assert done["status"] == "succeeded"
