"""Prometheus metrics: the state from PostgreSQL on /metrics, and a dispatcher's own counters on its port."""

from __future__ import annotations

import urllib.request
from datetime import timedelta

import pytest
from django.test import Client, override_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from nodes import auth, policy
from tests.factories import make_execution, make_node
from tests.processes import free_port, http, wait_until


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.django_db
def test_metrics_show_queue_depth_by_node_and_status_and_the_oldest_due_age():
    node = make_node("writer")
    make_execution(node, run_at=timezone.now() - timedelta(seconds=90))
    make_execution(node, status="running")
    make_execution(node, status="waiting")
    make_execution(node, run_at=timezone.now() + timedelta(hours=1))  # delayed: queued but not due
    answer = Client().get("/metrics")
    assert answer.status_code == 200 and answer["Content-Type"].startswith("text/plain")
    found = samples(answer.content.decode())
    assert found[("agentfield_executions", (("node", "writer"), ("status", "queued")))] == 2
    assert found[("agentfield_executions", (("node", "writer"), ("status", "running")))] == 1
    assert found[("agentfield_executions", (("node", "writer"), ("status", "waiting")))] == 1
    assert 85 <= found[("agentfield_oldest_due_execution_age_seconds", ())] < 300
    assert found[("agentfield_node_instances", (("health", "active"),))] == 1
    assert ("agentfield_approvals_pending", ()) in found and ("agentfield_agent_notices_pending", ()) in found


@pytest.mark.django_db(transaction=True)
def test_an_execution_finished_by_its_callback_is_counted_with_its_duration():
    node = make_node("timer", reasoners=("tick",))
    started = timezone.now() - timedelta(seconds=7)
    execution = make_execution(node, status="running", started_at=started, attempt=1)

    def finished() -> dict:
        return samples(Client().get("/metrics").content.decode())

    labels = (("status", "succeeded"), ("target", "timer.tick"))
    before = finished().get(("agentfield_executions_finished_total", labels), 0)
    seven = ("agentfield_execution_duration_seconds_bucket", (("le", "10.0"), ("target", "timer.tick")))
    below_ten = finished().get(seven, 0)
    answer = Client().post(
        f"/api/v1/executions/{execution.id}/status", {"status": "succeeded"}, content_type="application/json"
    )
    assert answer.status_code == 200
    after = finished()
    assert after[("agentfield_executions_finished_total", labels)] == before + 1
    assert after[seven] == below_ten + 1  # seven seconds since it started


@pytest.mark.django_db
def test_metrics_are_protected_like_the_api_once_a_key_exists(admin_client):
    _, admin = auth.issue_key("ops", policy.ADMIN)
    _, client = auth.issue_key("ci", policy.CLIENT)
    assert Client().get("/metrics").status_code == 401
    assert Client().get("/metrics", headers={"X-API-Key": client}).status_code == 401
    assert Client().get("/metrics", headers={"X-API-Key": admin}).status_code == 200
    assert admin_client.get("/metrics").status_code == 200
    with override_settings(AGENTFIELD_METRICS_TOKEN="scrape-token-123"):
        assert Client().get("/metrics", headers={"Authorization": "Bearer scrape-token-123"}).status_code == 200
        assert Client().get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401


@pytest.mark.e2e
def test_a_dispatcher_serves_its_counters_on_its_metrics_port(launch, db_url, stub_agent):
    # The stub agent does not heart-beat: its registration must outlive a dispatcher that starts slowly.
    alive = {"AGENTFIELD_NODE_LIVENESS_SECONDS": 600}
    url = launch.server(**alive)
    port = free_port()
    launch.dispatcher("--metrics-port", str(port), **alive)
    node = {"id": "stubbed", "base_url": stub_agent.url, "reasoners": [{"id": "work"}], "skills": []}
    assert http("POST", f"{url}/api/v1/nodes/register", node)[0] == 201
    stub_agent.status, stub_agent.body = 200, {"done": True}
    for _ in range(3):
        assert http("POST", f"{url}/api/v1/execute/async/stubbed.work", {"input": {}})[0] == 202

    def scraped() -> dict | None:
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        except OSError:
            return None
        found = samples(text)
        return found if found.get(("agentfield_dispatch_outcomes_total", (("outcome", "succeeded"),))) == 3 else None

    found = wait_until(scraped, timeout=60, message="three recorded outcomes on the metrics port")
    assert found[("agentfield_dispatches_total", (("target", "stubbed.work"),))] == 3
    assert found[("agentfield_dispatch_latency_seconds_count", ())] == 3
    assert found[("agentfield_agent_call_seconds_count", (("outcome", "ok"),))] == 3
    assert found[("agentfield_dispatcher_in_flight", ())] == 0
