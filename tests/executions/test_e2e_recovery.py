"""A crash is a delay, never a lost job: SIGKILLed agents and dispatchers, two dispatchers at once."""

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from executions import events
from executions.models import Execution, ExecutionEvent
from tests.http_fakes import FakeAgent
from tests.processes import http, wait_until

pytestmark = pytest.mark.e2e


def node_active(url: str, node_id: str) -> dict | None:
    status, body, _ = http("GET", f"{url}/api/v1/nodes/{node_id}")
    return body if status == 200 and body["health_status"] == "active" else None


def get(url: str, execution_id: str) -> dict:
    return http("GET", f"{url}/api/v1/executions/{execution_id}")[1]


def fire(url: str, target: str, payload: dict, headers: dict | None = None) -> dict:
    status, body, _ = http("POST", f"{url}/api/v1/execute/async/{target}", {"input": payload}, headers)
    assert status == 202, body
    return body


def test_fan_out_reasoner_gathers_three_app_calls_on_other_nodes(launch):
    url = launch.server()
    launch.dispatcher()
    for node_id in ("orchestrator", "finance", "research", "analytics"):
        launch.agent("fanout_agents.py", url, NODE_ID=node_id)
    for node_id in ("orchestrator", "finance", "research", "analytics"):
        wait_until(lambda n=node_id: node_active(url, n), timeout=60, message=f"{node_id} to register")

    accepted = fire(url, "orchestrator.generate_quarterly_report", {"quarter": "Q1-2026"})
    done = wait_until(lambda: get(url, accepted["execution_id"])["status"] in ("succeeded", "failed"), timeout=60)
    assert done
    report = get(url, accepted["execution_id"])
    assert report["status"] == "succeeded", report
    sections = report["result"]["sections"]
    assert [s["section"] for s in sections] == ["deep_analysis", "market_trends", "churn_report"]
    children = http("GET", f"{url}/api/v1/executions?parent_execution_id={accepted['execution_id']}")[1]
    assert children["count"] == 3
    for child in children["executions"]:
        assert child["run_id"] == accepted["run_id"]
        assert child["execution_id"] != accepted["execution_id"]
        assert child["status"] == "succeeded"


def test_agent_killed_mid_reasoner_is_redispatched_under_the_same_ids(launch):
    url = launch.server()
    launch.dispatcher(AGENTFIELD_NODE_LIVENESS_SECONDS=3)
    agent = launch.agent("echo_agent.py", url, NODE_ID="echo")
    wait_until(lambda: node_active(url, "echo"), timeout=60, message="agent registration")
    accepted = fire(url, "echo.slow", {"seconds": 4}, {"X-Run-ID": "run_crash_test"})
    wait_until(lambda: get(url, accepted["execution_id"])["status"] == "running", timeout=30)
    agent.kill()

    launch.agent("echo_agent.py", url, NODE_ID="echo")
    done = wait_until(lambda: get(url, accepted["execution_id"])["status"] in ("succeeded", "failed"), timeout=90)
    assert done
    final = get(url, accepted["execution_id"])
    assert final["status"] == "succeeded", final
    assert final["run_id"] == "run_crash_test"
    assert final["attempt"] == 2
    reasons = [
        event.data["reason"]
        for event in ExecutionEvent.objects.filter(execution_id=accepted["execution_id"], type=events.RETRYING)
    ]
    assert any("restarted" in reason or "heart-beating" in reason for reason in reasons), reasons


def test_agent_that_never_comes_back_fails_with_a_readable_error(launch):
    settings = {"AGENTFIELD_NODE_LIVENESS_SECONDS": 2, "AGENTFIELD_LOST_EXECUTION_GRACE_SECONDS": 2}
    url = launch.server(**settings)
    launch.dispatcher(**settings)
    agent = launch.agent("echo_agent.py", url, NODE_ID="echo")
    wait_until(lambda: node_active(url, "echo"), timeout=60, message="agent registration")
    accepted = fire(url, "echo.slow", {"seconds": 60})
    wait_until(lambda: get(url, accepted["execution_id"])["status"] == "running", timeout=30)
    agent.kill()

    wait_until(lambda: get(url, accepted["execution_id"])["status"] == "failed", timeout=60, message="failure")
    final = get(url, accepted["execution_id"])
    assert "stopped heart-beating" in final["error"] and "did not come back" in final["error"], final["error"]


def test_dispatcher_killed_after_claiming_loses_nothing(launch, db_url):
    release = threading.Event()
    first_call = threading.Event()

    def answer(execution_id, body):
        if not first_call.is_set():
            first_call.set()
            release.wait(timeout=30)  # the first dispatcher dies while we hold its request
        return 200, {"done": body}

    with FakeAgent(answer) as agent:
        agent.register("fake", ("work",))
        url = launch.server()
        settings = {"AGENTFIELD_DISPATCH_LEASE_SECONDS": 2, "AGENTFIELD_AGENT_CALL_TIMEOUT_SECONDS": 1}
        first = launch.dispatcher(**settings)
        accepted = fire(url, "fake.work", {"n": 1})
        wait_until(first_call.is_set, timeout=30, message="the first dispatch")
        first.kill()
        release.set()
        launch.dispatcher(**settings)
        wait_until(lambda: get(url, accepted["execution_id"])["status"] == "succeeded", timeout=30)
        final = get(url, accepted["execution_id"])
        assert final["result"] == {"done": {"n": 1}}
        assert final["attempt"] == 2
        assert agent.calls[accepted["execution_id"]] == 2


def test_two_dispatchers_drain_2000_executions_without_running_one_twice(launch):
    with FakeAgent() as agent:
        agent.register("fake", ("work",))
        now = timezone.now()
        rows = [
            Execution(
                id=f"exec_bulk_{i:05d}",
                run_id=f"run_bulk_{i:05d}",
                node_id="fake",
                target_name="work",
                input={"i": i},
                run_at=now - timedelta(seconds=1),
                created_at=now,
                updated_at=now,
            )
            for i in range(2000)
        ]
        Execution.objects.bulk_create(rows)
        launch.dispatcher()
        launch.dispatcher()
        wait_until(lambda: Execution.objects.filter(status="succeeded").count() == 2000, timeout=240, interval=0.5)
        assert agent.overlaps == 0
        assert len(agent.calls) == 2000
        assert max(agent.calls.values()) == 1
        assert Execution.objects.exclude(attempt=1).count() == 0


def live_instances(url: str, node_id: str) -> list[str]:
    status, body, _ = http("GET", f"{url}/api/v1/nodes/{node_id}")
    if status != 200:
        return []
    return [item["instance_id"] for item in body["instances"] if item["health_status"] == "active"]


def test_two_processes_serve_one_node_and_the_death_of_one_moves_exactly_its_work(launch):
    url = launch.server()
    launch.dispatcher(AGENTFIELD_NODE_LIVENESS_SECONDS=3)
    processes = {}
    for _ in range(2):
        agent = launch.agent("echo_agent.py", url, NODE_ID="echo")
        new = wait_until(
            lambda known=set(processes): set(live_instances(url, "echo")) - known, timeout=60, message="a process"
        )
        processes[new.pop()] = agent

    ids = [fire(url, "echo.slow", {"seconds": 6})["execution_id"] for _ in range(16)]
    wait_until(lambda: Execution.objects.filter(pk__in=ids, status="running").count() == 16, timeout=60)
    placed = dict(Execution.objects.filter(pk__in=ids).values_list("id", "node_instance_id"))
    assert set(placed.values()) == set(processes)  # spread over both processes
    victim = placed[ids[0]]
    survivor = next(instance for instance in processes if instance != victim)
    processes[victim].kill()

    finished = ("succeeded", "failed")
    wait_until(lambda: Execution.objects.filter(pk__in=ids, status__in=finished).count() == 16, timeout=120)
    final = {row.id: row for row in Execution.objects.filter(pk__in=ids)}
    assert {row.status for row in final.values()} == {"succeeded"}
    for execution_id, instance in placed.items():
        # Exactly the dead process's work ran again (attempt 2, on the survivor); the rest ran once.
        expected = (2, survivor) if instance == victim else (1, instance)
        assert (final[execution_id].attempt, final[execution_id].node_instance_id) == expected, execution_id

    later = [fire(url, "echo.echo", {"message": str(n)})["execution_id"] for n in range(5)]
    wait_until(lambda: Execution.objects.filter(pk__in=later, status="succeeded").count() == 5, timeout=60)
    assert set(Execution.objects.filter(pk__in=later).values_list("node_instance_id", "attempt")) == {(survivor, 1)}
