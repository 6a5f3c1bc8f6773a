"""Approval gates with the real SDK: `app.pause()` waits, a decision resumes it, even across an agent kill."""

from __future__ import annotations

import pytest

from executions.models import AgentNotice
from tests.processes import http, wait_until

pytestmark = pytest.mark.e2e


def status(url: str, execution_id: str) -> dict:
    return http("GET", f"{url}/api/v1/executions/{execution_id}")[1]


def registered(url: str) -> bool:
    code, body, _ = http("GET", f"{url}/api/v1/nodes/echo")
    return code == 200 and body["health_status"] == "active"


@pytest.fixture
def stack(launch):
    url = launch.server()
    launch.dispatcher()
    return url


def test_a_paused_reasoner_gets_the_decision_made_through_the_api(stack, launch):
    url = stack
    launch.agent("echo_agent.py", url, NODE_ID="echo")
    wait_until(lambda: registered(url), timeout=60, message="agent registration")
    _, accepted, _ = http("POST", f"{url}/api/v1/execute/async/echo.gated", {"input": {"request_id": "req-api"}})
    execution_id = accepted["execution_id"]
    wait_until(lambda: status(url, execution_id)["status"] == "waiting", timeout=60, message="the pause")
    code, body, _ = http(
        "POST", f"{url}/api/v1/executions/{execution_id}/approval-response", {"decision": "approved", "feedback": "go"}
    )
    assert code == 200 and body["status"] == "approved"
    done = wait_until(lambda: (s := status(url, execution_id))["status"] == "succeeded" and s, timeout=60)
    assert done["result"] == {"decision": "approved", "feedback": "go"}
    assert AgentNotice.objects.get(execution_id=execution_id, kind="approval").status == "delivered"


def test_a_wait_survives_the_agent_being_killed_and_the_decision_reaches_its_successor(stack, launch):
    url = stack
    first = launch.agent("echo_agent.py", url, NODE_ID="echo")
    wait_until(lambda: registered(url), timeout=60, message="agent registration")
    _, accepted, _ = http("POST", f"{url}/api/v1/execute/async/echo.gated", {"input": {"request_id": "req-kill"}})
    execution_id = accepted["execution_id"]
    wait_until(lambda: status(url, execution_id)["status"] == "waiting", timeout=60, message="the pause")
    first.kill()
    launch.agent("echo_agent.py", url, NODE_ID="echo")  # a new process: new instance id, new port
    wait_until(lambda: registered(url), timeout=60, message="the new agent to register")
    assert status(url, execution_id)["status"] == "waiting"  # the wait outlived its agent
    code, _, _ = http("POST", f"{url}/api/v1/executions/{execution_id}/approval-response", {"decision": "reject"})
    assert code == 200
    done = wait_until(lambda: (s := status(url, execution_id))["status"] == "succeeded" and s, timeout=120)
    assert done["result"]["decision"] == "rejected"  # the re-dispatched reasoner paused again and got it
    assert done["attempt"] == 2


def test_the_control_plane_expires_a_wait_and_the_reasoner_hears_it(stack, launch):
    url = stack
    launch.agent("echo_agent.py", url, NODE_ID="echo")
    wait_until(lambda: registered(url), timeout=60, message="agent registration")
    # Expires in about 2 s on our side; the SDK's own timer would wait 10 minutes.
    body = {"input": {"request_id": "req-exp", "hours": 0.0006, "timeout": 600}}
    _, accepted, _ = http("POST", f"{url}/api/v1/execute/async/echo.gated", body)
    execution_id = accepted["execution_id"]
    done = wait_until(lambda: (s := status(url, execution_id))["status"] == "succeeded" and s, timeout=90)
    assert done["result"]["decision"] == "expired"
    approval = http("GET", f"{url}/api/v1/agents/echo/executions/{execution_id}/approval-status")[1]
    assert approval["status"] == "expired" and approval["decided_by"] == "the control plane (expired)"
