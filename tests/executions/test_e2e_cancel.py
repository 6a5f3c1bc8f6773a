"""Cancel reaches real SDK reasoners: a looping reasoner stops, and so does a whole app.call tree."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from executions.models import AgentNotice
from tests.processes import http, wait_until

pytestmark = pytest.mark.e2e


def ticks(path: Path) -> Counter:
    return Counter(path.read_text().split()) if path.exists() else Counter()


def stopped(path: Path, execution_ids: list[str], quiet: float = 2.0) -> bool:
    """True once none of `execution_ids` ticked for `quiet` seconds (they tick every 0.1 s)."""
    before = ticks(path)
    time.sleep(quiet)
    after = ticks(path)
    return all(after[i] == before[i] for i in execution_ids)


@pytest.fixture
def stack(launch, tmp_path):
    url = launch.server()
    launch.dispatcher()
    ticks_file = tmp_path / "ticks"
    launch.agent("echo_agent.py", url, NODE_ID="echo", TICKS_FILE=str(ticks_file))

    def registered() -> bool:
        status, body, _ = http("GET", f"{url}/api/v1/nodes/echo")
        return status == 200 and body["health_status"] == "active"

    wait_until(registered, timeout=60, message="agent registration")
    return url, ticks_file


def test_cancel_interrupts_a_looping_sdk_reasoner(stack):
    url, ticks_file = stack
    _, accepted, _ = http("POST", f"{url}/api/v1/execute/async/echo.loop", {"input": {"seconds": 120}})
    execution_id = accepted["execution_id"]
    wait_until(lambda: ticks(ticks_file)[execution_id] >= 5, timeout=60, message="the loop to tick")
    status, body, _ = http("POST", f"{url}/api/v1/executions/{execution_id}/cancel")
    assert status == 200 and body["status"] == "cancelled" and body["cancelled"] == [execution_id]
    wait_until(lambda: stopped(ticks_file, [execution_id]), timeout=30, message="the loop to stop advancing")
    notice = wait_until(
        lambda: AgentNotice.objects.filter(execution_id=execution_id, status="delivered").first(), timeout=30
    )
    assert notice.attempts >= 1 and "200" in notice.outcome
    assert http("GET", f"{url}/api/v1/executions/{execution_id}")[1]["status"] == "cancelled"


def test_cancelling_a_parent_stops_its_app_call_children_too(stack):
    url, ticks_file = stack
    _, accepted, _ = http("POST", f"{url}/api/v1/execute/async/echo.fan", {"input": {"children": 3, "seconds": 120}})
    parent = accepted["execution_id"]

    def children() -> list[str] | None:
        _, page, _ = http("GET", f"{url}/api/v1/executions?parent_execution_id={parent}")
        ids = [e["execution_id"] for e in page["executions"]]
        return ids if len(ids) == 3 and all(ticks(ticks_file)[i] >= 3 for i in ids) else None

    child_ids = wait_until(children, timeout=60, message="three ticking children")
    status, body, _ = http("POST", f"{url}/api/v1/executions/{parent}/cancel")
    assert status == 200 and sorted(body["cancelled"]) == sorted([parent, *child_ids])
    assert body["cancelled"][-1] == parent  # children first
    wait_until(lambda: stopped(ticks_file, child_ids), timeout=30, message="every child to stop advancing")
    for child in child_ids:
        assert http("GET", f"{url}/api/v1/executions/{child}")[1]["status"] == "cancelled"
