"""executions.recovery.recover: executions of dead agents are re-queued or failed, never left running."""

from __future__ import annotations

from datetime import timedelta

import pytest

from executions import queue, recovery
from executions.models import Execution, ExecutionEvent
from tests.factories import make_execution, make_instance, make_node

pytestmark = pytest.mark.django_db

ALIVE = 7.0
GRACE = 300.0


def recover(now) -> int:
    return recovery.recover(now, alive_seconds=ALIVE, grace_seconds=GRACE)


def running_on(node, now, **fields) -> Execution:
    values = {
        "status": "running",
        "attempt": 1,
        "started_at": now - timedelta(minutes=1),
        "node_instance_id": node.instance_id,
    }
    values.update(fields)
    return make_execution(node, now=now - timedelta(minutes=1), **values)


def events_of(execution) -> list[str]:
    return list(ExecutionEvent.objects.filter(execution_id=execution.id).values_list("type", flat=True))


def test_a_running_execution_of_a_node_that_stopped_heart_beating_is_requeued_with_the_same_ids(now):
    node = make_node(now=now - timedelta(seconds=ALIVE + 1))
    execution = running_on(node, now)
    assert recover(now) == 1
    fresh = Execution.objects.get(pk=execution.pk)
    assert fresh.status == "queued"
    assert (fresh.id, fresh.run_id) == (execution.id, execution.run_id)
    assert fresh.run_at == now
    assert fresh.node_instance_id == node.instance_id  # if that same instance comes back, it is waited for
    assert fresh.attempt == 1  # the next claim counts the next attempt
    assert "stopped heart-beating" in fresh.error
    assert events_of(execution) == ["execution_retrying"]


def test_a_running_execution_of_a_restarted_node_is_requeued(now):
    node = make_node(now=now, instance_id="new-instance")
    execution = running_on(node, now, node_instance_id="old-instance")
    assert recover(now) == 1
    fresh = Execution.objects.get(pk=execution.pk)
    assert fresh.status == "queued"
    assert "restarted" in fresh.error


def test_a_running_execution_of_a_removed_node_is_requeued(now):
    node = make_node(now=now)
    execution = running_on(node, now)
    node.delete()
    assert recover(now) == 1
    assert "removed" in Execution.objects.get(pk=execution.pk).error


def test_a_lost_execution_at_its_attempt_limit_fails_saying_what_happened(now):
    node = make_node(now=now - timedelta(minutes=5))
    execution = running_on(node, now, attempt=3, max_attempts=3)
    assert recover(now) == 1
    fresh = Execution.objects.get(pk=execution.pk)
    assert fresh.status == "failed"
    assert "stopped heart-beating" in fresh.error and "3 attempts" in fresh.error
    assert fresh.completed_at == now
    assert events_of(execution) == ["execution_failed"]


def test_a_requeued_execution_is_claimed_again_under_the_same_ids_when_its_node_is_back(now):
    node = make_node(now=now - timedelta(seconds=ALIVE + 1))
    execution = running_on(node, now)
    recover(now)
    make_instance(node, "instance-2", last_heartbeat_at=now)
    [item] = queue.claim("w", now, 10, lease_seconds=60, alive_seconds=ALIVE)
    assert (item.execution.id, item.execution.run_id) == (execution.id, execution.run_id)
    assert item.execution.attempt == 2
    assert item.instance_id == "instance-2"


def test_a_healthy_running_execution_is_never_touched_however_old(now):
    node = make_node(now=now)
    execution = running_on(node, now, started_at=now - timedelta(days=30), created_at=now - timedelta(days=30))
    assert recover(now) == 0
    assert recover(now + timedelta(seconds=ALIVE - 1)) == 0
    fresh = Execution.objects.get(pk=execution.pk)
    assert fresh.status == "running"
    assert events_of(execution) == []


def test_a_queued_execution_of_a_down_node_that_never_ran_waits(now):
    node = make_node(now=now - timedelta(days=1))
    execution = make_execution(node, now=now - timedelta(days=1))
    assert recover(now) == 0
    assert Execution.objects.get(pk=execution.pk).status == "queued"


def test_an_abandoned_execution_fails_with_a_readable_error_after_the_grace_period(now):
    node = make_node(now=now - timedelta(hours=1))
    execution = make_execution(
        node, now=now, attempt=2, run_at=now - timedelta(seconds=GRACE + 1), error="agent node stopped heart-beating"
    )
    assert recover(now) == 1
    fresh = Execution.objects.get(pk=execution.pk)
    assert fresh.status == "failed"
    assert node.id in fresh.error
    assert "did not come back" in fresh.error
    assert "attempt 2 of 5" in fresh.error


def test_an_abandoned_execution_of_a_shut_down_node_fails_too(now):
    node = make_node(now=now, shutdown_at=now - timedelta(hours=1))
    execution = make_execution(node, now=now, attempt=1, run_at=now - timedelta(seconds=GRACE + 1))
    assert recover(now) == 1
    assert Execution.objects.get(pk=execution.pk).status == "failed"


def test_a_requeued_execution_within_the_grace_period_keeps_waiting(now):
    node = make_node(now=now - timedelta(hours=1))
    execution = make_execution(node, now=now, attempt=1, run_at=now - timedelta(seconds=GRACE - 1))
    assert recover(now) == 0
    assert Execution.objects.get(pk=execution.pk).status == "queued"


def test_a_requeued_execution_whose_node_is_back_is_not_abandoned(now):
    node = make_node(now=now)
    execution = make_execution(node, now=now, attempt=1, run_at=now - timedelta(seconds=GRACE * 10))
    assert recover(now) == 0
    assert Execution.objects.get(pk=execution.pk).status == "queued"


def test_recovery_handles_many_lost_executions_in_one_pass(now):
    node = make_node(now=now - timedelta(minutes=1))
    executions = [running_on(node, now) for _ in range(25)]
    assert recover(now) == 25
    assert set(Execution.objects.filter(pk__in=[e.pk for e in executions]).values_list("status", flat=True)) == {
        "queued"
    }


@pytest.mark.django_db(transaction=True)
def test_lost_and_abandoned_refuse_to_run_outside_a_transaction(now):
    with pytest.raises(RuntimeError):
        queue.lost(now, ALIVE)
    with pytest.raises(RuntimeError):
        queue.abandoned(now, ALIVE, GRACE)
