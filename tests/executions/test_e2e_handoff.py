"""A dispatcher killed between the agent's 202 and recording it: the work runs once, not twice.

The window is made deterministic with a row lock: the test holds the event counter row, which
every batch `mark_running` must update, so the dispatcher hands the executions to the agent and
then blocks before it can record that. It is SIGKILLed there; a second dispatcher re-claims the
work after the lease and must see that the SDK agent reported starting each execution.
"""

from __future__ import annotations

import psycopg
import pytest

from executions.models import Execution
from tests.processes import http, wait_until

pytestmark = pytest.mark.e2e

COUNT = 12


def test_work_handed_over_by_a_killed_dispatcher_runs_once(launch, db_url, tmp_path):
    starts = tmp_path / "starts.txt"
    starts.touch()
    url = launch.server()
    launch.agent("echo_agent.py", url, NODE_ID="echo", STARTS_FILE=starts)
    wait_until(lambda: http("GET", f"{url}/api/v1/nodes/echo")[0] == 200, timeout=60, message="registration")
    wait_until(lambda: http("GET", f"{url}/api/v1/nodes/echo")[1]["health_status"] == "active", timeout=30)
    ids = []
    for _ in range(COUNT):
        status, body, _ = http("POST", f"{url}/api/v1/execute/async/echo.counted", {"input": {"seconds": 15}})
        assert status == 202
        ids.append(body["execution_id"])

    # The work is re-claimed ~5 s after the kill, while the agent still runs it (15 s).
    quick = {
        "AGENTFIELD_AGENT_CALL_TIMEOUT_SECONDS": 3,
        "AGENTFIELD_DISPATCH_LEASE_SECONDS": 4,
        "AGENTFIELD_DISPATCH_LEASE_GRACE_SECONDS": 1,
    }
    with psycopg.connect(db_url) as blocker:
        blocker.execute("SELECT * FROM executions_eventcounter FOR UPDATE")
        first = launch.dispatcher("--concurrency", str(COUNT), **quick)
        wait_until(lambda: len(starts.read_text().split()) == COUNT, timeout=60, message="the agent to start all")
        first.kill()
        # The killed process's backend waits on our lock and would notice the closed socket only
        # after its statement ran: end it the way a lost machine would, before letting go.
        blocker.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        blocker.rollback()
    assert set(Execution.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"queued"}  # unrecorded

    second = launch.dispatcher(**quick)
    finished = ("succeeded", "failed")
    wait_until(lambda: Execution.objects.filter(pk__in=ids, status__in=finished).count() == COUNT, timeout=120)
    assert set(Execution.objects.filter(pk__in=ids).values_list("status", "attempt")) == {("succeeded", 1)}
    started = starts.read_text().split()
    assert sorted(started) == sorted(ids), "each execution started exactly once"
    assert Execution.objects.filter(pk__in=ids, claimed_by__contains=str(second.pid)).count() == COUNT
