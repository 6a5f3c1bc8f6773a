"""Several processes serve one node: work is spread over live instances, each dies alone, and a
dispatcher that dies between the agent's 202 and its record does not make the work run twice."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from executions import queue, recovery
from executions.dispatcher import ExecutionDispatcher
from executions.models import Execution, TraceEntry
from nodes import services
from tests.factories import make_execution, make_instance, make_node
from tests.processes import wait_until

pytestmark = pytest.mark.django_db

LEASE = 60.0
ALIVE = 7.0


def claim(now, limit: int = 100, worker: str = "w"):
    return queue.claim(worker, now, limit, lease_seconds=LEASE, alive_seconds=ALIVE)


def test_a_nodes_work_is_spread_over_its_live_instances_only(now):
    node = make_node(now=now, instance_id="a", base_url="http://127.0.0.1:9001")
    make_instance(node, "b", base_url="http://127.0.0.1:9002")
    make_instance(node, "silent", base_url="http://127.0.0.1:9003", last_heartbeat_at=now - timedelta(minutes=1))
    make_instance(node, "stopped", base_url="http://127.0.0.1:9004", shutdown_at=now)
    for _ in range(60):
        make_execution(node, now=now)
    claimed = claim(now)
    assert len(claimed) == 60
    spread = Counter((item.instance_id, item.base_url) for item in claimed)
    assert set(spread) == {("a", "http://127.0.0.1:9001"), ("b", "http://127.0.0.1:9002")}
    assert min(spread.values()) >= 10  # random, but never all on one
    stored = Counter(Execution.objects.values_list("node_instance_id", flat=True))
    assert stored == Counter(item.instance_id for item in claimed)  # the hand-off is recorded by the claim


def test_the_death_of_one_instance_requeues_exactly_its_work(now):
    node = make_node(now=now, instance_id="a", base_url="http://127.0.0.1:9001")
    make_instance(node, "b", base_url="http://127.0.0.1:9002", last_heartbeat_at=now - timedelta(seconds=ALIVE + 1))
    on_a = make_execution(node, now=now, status="running", attempt=1, node_instance_id="a")
    on_b = make_execution(node, now=now, status="running", attempt=1, node_instance_id="b")
    assert recovery.recover(now, alive_seconds=ALIVE, grace_seconds=300) == 1
    assert Execution.objects.get(pk=on_a.pk).status == "running"
    moved = Execution.objects.get(pk=on_b.pk)
    assert moved.status == "queued" and "stopped heart-beating" in moved.error
    [again] = claim(now)
    assert (again.execution.id, again.instance_id) == (on_b.id, "a")  # the survivor takes it over


def test_a_restart_at_the_same_address_replaces_the_instance_and_requeues_its_work(now):
    registration = {"id": "n", "base_url": "http://127.0.0.1:9001", "reasoners": [{"id": "echo"}], "instance_id": "a"}
    services.register_node(registration, now)
    execution = Execution.objects.create(
        id="exec_r", run_id="run_r", node_id="n", target_name="echo", status="running", attempt=1,
        node_instance_id="a", run_at=now, created_at=now, updated_at=now,
    )  # fmt: skip
    node, restarted = services.register_node({**registration, "instance_id": "a2"}, now + timedelta(seconds=1))
    assert restarted
    assert list(node.instances.values_list("instance_id", flat=True)) == ["a2"]
    assert recovery.recover(now + timedelta(seconds=1), alive_seconds=ALIVE, grace_seconds=300) == 1
    execution.refresh_from_db()
    assert execution.status == "queued" and "restarted" in execution.error


def test_a_shutdown_notice_takes_the_only_live_instance_offline_and_then_the_node(now):
    registration = {"id": "n", "base_url": "http://127.0.0.1:9001", "reasoners": [{"id": "echo"}], "instance_id": "a"}
    services.register_node(registration, now)
    services.register_node({**registration, "instance_id": "b", "base_url": "http://127.0.0.1:9002"}, now)
    node = services.shutdown("n", "b", now)
    assert node.shutdown_at is None  # "a" still serves it
    assert dict(node.instances.values_list("instance_id", "lifecycle_status")) == {"a": "starting", "b": "offline"}
    node = services.shutdown("n", None, now)  # the SDK names no instance: the only live one
    assert node.shutdown_at == now and node.lifecycle_status == "offline"
    assert claim(now) == []


def test_a_shutdown_notice_naming_no_instance_among_several_marks_none(now):
    registration = {"id": "n", "base_url": "http://127.0.0.1:9001", "reasoners": [{"id": "echo"}], "instance_id": "a"}
    services.register_node(registration, now)
    services.register_node({**registration, "instance_id": "b", "base_url": "http://127.0.0.1:9002"}, now)
    node = services.shutdown("n", None, now)
    assert node.shutdown_at is None
    assert set(node.instances.values_list("shutdown_at", flat=True)) == {None}


# -- a dispatcher that died between the hand-off and its record -----------------------------------


def handed_over_then_abandoned(node, now):
    """An execution a dispatcher claimed for `node`'s instance and then died on (its lease ran out)."""
    execution = make_execution(node, now=now)
    [first] = claim(now, worker="dead-dispatcher")
    assert first.execution.node_instance_id == node.instance_id
    return execution, now + timedelta(seconds=LEASE) + queue.LEASE_GRACE


@pytest.mark.django_db(transaction=True)
def test_work_the_agent_reported_starting_is_waited_for_not_dispatched_again(stub_agent):
    now = timezone.now()
    node = make_node(now=now, base_url=stub_agent.url, registered_at=now - timedelta(hours=1))
    execution, later = handed_over_then_abandoned(node, now)
    TraceEntry.objects.create(
        execution_id=execution.id, kind="step", message="step running", created_at=now + timedelta(seconds=1)
    )
    node.instances.update(last_heartbeat_at=later)
    dispatcher = ExecutionDispatcher("second", concurrency=2)
    dispatcher._claim_and_start(later)
    dispatcher.drain(timeout=5)
    execution.refresh_from_db()
    assert (execution.status, execution.attempt, execution.lease_token) == ("running", 1, None)
    assert stub_agent.requests == []


@pytest.mark.django_db(transaction=True)
def test_work_the_agent_never_reported_is_dispatched_again_under_the_same_ids(stub_agent):
    now = timezone.now()
    node = make_node(now=now, base_url=stub_agent.url, registered_at=now - timedelta(hours=1))
    execution, later = handed_over_then_abandoned(node, now)
    TraceEntry.objects.create(  # a report from before this hand-off proves nothing
        execution_id=execution.id, kind="step", message="step running", created_at=now - timedelta(seconds=1)
    )
    node.instances.update(last_heartbeat_at=later)
    dispatcher = ExecutionDispatcher("second", concurrency=2)
    dispatcher._claim_and_start(later)
    wait_until(lambda: stub_agent.requests, timeout=10, message="the second dispatch")
    dispatcher.drain(timeout=5)
    execution.refresh_from_db()
    assert (execution.status, execution.attempt) == ("running", 2)
    assert stub_agent.requests[0].headers["X-Execution-ID"] == execution.id


def test_a_lapsed_lease_is_left_to_its_holder_for_a_grace_period(now):
    node = make_node(now=now)
    execution = make_execution(node, now=now)
    claim(now, worker="slow")
    node.instances.update(last_heartbeat_at=now + timedelta(hours=1))
    assert claim(now + timedelta(seconds=LEASE), worker="other") == []
    [taken] = claim(now + timedelta(seconds=LEASE) + queue.LEASE_GRACE, worker="other")
    assert taken.execution.id == execution.id and taken.unrecorded and taken.may_run_there


def test_a_new_instance_replaces_instances_that_are_no_longer_alive_wherever_they_were(now):
    registration = {"id": "n", "base_url": "http://127.0.0.1:9001", "reasoners": [{"id": "echo"}], "instance_id": "a"}
    services.register_node(registration, now)
    later = now + timedelta(seconds=ALIVE + 1)  # "a" went silent: a crash
    node, restarted = services.register_node({**registration, "instance_id": "b", "base_url": "http://x:2"}, later)
    assert restarted and node.restarted_at == later
    assert list(node.instances.values_list("instance_id", flat=True)) == ["b"]
