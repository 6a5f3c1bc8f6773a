"""An agent whose heartbeats paused but whose process lived on is not sent the work a second time."""

from datetime import timedelta

import pytest
from django.utils import timezone

from executions import recovery
from executions.dispatcher import ExecutionDispatcher
from executions.models import Execution, ExecutionEvent
from nodes.models import Node
from tests.factories import set_heartbeat
from tests.http_fakes import FakeAgent

pytestmark = pytest.mark.django_db(transaction=True)


def running_on(node: Node, instance: str) -> Execution:
    now = timezone.now()
    return Execution.objects.create(
        id="exec_paused", run_id="run_paused", node_id=node.id, target_name="work", status="running",
        attempt=1, node_instance_id=instance, started_at=now, run_at=now, created_at=now, updated_at=now,
    )  # fmt: skip


def test_same_instance_back_after_a_heartbeat_pause_resumes_waiting_without_a_second_dispatch():
    with FakeAgent() as agent:
        node = agent.register("fake", ("work",))
        execution = running_on(node, node.instance_id)
        now = timezone.now()
        set_heartbeat(node, now - timedelta(seconds=60))
        assert recovery.recover(now, alive_seconds=7, grace_seconds=300) == 1
        execution.refresh_from_db()
        assert (execution.status, execution.node_instance_id) == ("queued", node.instance_id)

        set_heartbeat(node, now + timedelta(hours=1))  # it beats again
        dispatcher = ExecutionDispatcher("test-worker", concurrency=2)
        assert dispatcher.run_once(now + timedelta(seconds=1))
        execution.refresh_from_db()
        assert (execution.status, execution.attempt, execution.lease_token) == ("running", 1, None)
        assert agent.calls[execution.id] == 0
        assert ExecutionEvent.objects.filter(execution_id=execution.id, data__resumed=True).exists()


def test_a_restarted_instance_gets_the_work_again_under_the_same_ids():
    with FakeAgent(lambda execution_id, body: (202, {"status": "processing"})) as agent:
        node = agent.register("fake", ("work",))
        execution = running_on(node, "the-instance-that-died")
        now = timezone.now()
        assert recovery.recover(now, alive_seconds=7, grace_seconds=300) == 1
        dispatcher = ExecutionDispatcher("test-worker", concurrency=2)
        dispatcher.run_once(now + timedelta(seconds=1))
        dispatcher.drain(timeout=10)
        execution.refresh_from_db()
        assert (execution.status, execution.attempt, execution.node_instance_id) == ("running", 2, node.instance_id)
        assert (execution.id, execution.run_id) == ("exec_paused", "run_paused")
        assert agent.calls[execution.id] == 1
