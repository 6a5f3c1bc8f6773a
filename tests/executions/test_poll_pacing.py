"""The SDK's status polls of unfinished executions are held until there is news (bounded)."""

import threading

import pytest
from django.utils import timezone

from nodes.auth import issue_key
from tests.factories import make_execution, make_node
from tests.processes import http, wait_until

pytestmark = pytest.mark.e2e

SDK = {"User-Agent": "AgentField-SDK-AsyncClient/1.0"}


def test_a_held_sdk_poll_answers_with_the_news_that_arrived_while_it_waited(launch):
    url = launch.server(AGENTFIELD_SDK_POLL_HOLD_SECONDS=20)
    execution = make_execution(make_node("echo"), id="exec_paced", status="running")
    headers = SDK | {"X-API-Key": issue_key("agents")[1]}  # the key also opens the stream's stats
    http("GET", f"{url}/api/v1/executions/{execution.id}", headers=headers)  # starts the event listener
    # A poll that arrives before the listener has caught up is answered at once (by design).
    stats = f"{url}/api/ui/v1/executions/events/stats"
    wait_until(lambda: http("GET", stats, headers=headers)[1]["last_event_id"] is not None, message="the listener")
    answers = []
    poll = threading.Thread(
        target=lambda: answers.append(
            http("GET", f"{url}/api/v1/executions/{execution.id}", headers=headers, timeout=30)
        )
    )
    poll.start()
    poll.join(timeout=0.5)
    assert poll.is_alive(), "the SDK's poll of a running execution answered without news"
    execution.complete({"done": True}, timezone.now())
    poll.join(timeout=25)
    status, body, _ = answers[0]
    assert status == 200 and body["status"] == "succeeded" and body["result"] == {"done": True}


def test_other_clients_and_finished_executions_are_answered_at_once(launch):
    url = launch.server(AGENTFIELD_SDK_POLL_HOLD_SECONDS=60)
    node = make_node("echo")
    running = make_execution(node, id="exec_curl", status="running")
    finished = make_execution(node, id="exec_done", status="succeeded")
    # Each would block for a minute if held; the HTTP timeout is far shorter.
    assert http("GET", f"{url}/api/v1/executions/{running.id}", timeout=10)[1]["status"] == "running"
    assert http("GET", f"{url}/api/v1/executions/{finished.id}", headers=SDK, timeout=10)[1]["status"] == "succeeded"
    status, body, _ = http("GET", f"{url}/api/v1/executions/exec_missing", headers=SDK, timeout=10)
    assert status == 404 and body["code"] == "not_found"
