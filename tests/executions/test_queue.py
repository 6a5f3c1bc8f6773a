"""executions.queue.claim: several due rows per round trip, SKIP LOCKED, live nodes only, leases."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from executions import queue
from executions.models import Execution
from nodes.models import Node
from tests.factories import make_execution, make_node, set_heartbeat

LEASE = 60.0
ALIVE = 7.0


def claim(now, limit: int = 10, worker: str = "worker-1"):
    return queue.claim(worker, now, limit, lease_seconds=LEASE, alive_seconds=ALIVE)


def claimed_ids(items) -> list[str]:
    return [item.execution.id for item in items]


@pytest.mark.django_db
def test_claim_takes_several_due_rows_in_one_query(now, django_assert_num_queries):
    node = make_node(now=now)
    executions = [make_execution(node, now=now - timedelta(seconds=5 - index)) for index in range(5)]
    with django_assert_num_queries(1):
        items = claim(now)
    assert sorted(claimed_ids(items)) == sorted(execution.id for execution in executions)


@pytest.mark.django_db
def test_claim_respects_the_limit_and_takes_the_first_in_order(now):
    node = make_node(now=now)
    first = make_execution(node, now=now, run_at=now - timedelta(seconds=1))
    second = make_execution(node, now=now, run_at=now - timedelta(seconds=30))
    third = make_execution(node, now=now, run_at=now - timedelta(seconds=10))
    assert sorted(claimed_ids(claim(now, limit=2))) == sorted([first.id, second.id])
    assert Execution.objects.get(pk=third.pk).attempt == 0
    assert claimed_ids(claim(now, limit=2)) == [third.id]


@pytest.mark.django_db
def test_claim_skips_rows_not_yet_due(now):
    node = make_node(now=now)
    make_execution(node, now=now, run_at=now + timedelta(seconds=1))
    assert claim(now) == []


@pytest.mark.django_db
@pytest.mark.parametrize("state", ["running", "succeeded", "failed", "cancelled", "timeout"])
def test_claim_takes_only_queued_rows(now, state):
    make_execution(now=now, status=state)
    assert claim(now) == []


@pytest.mark.django_db
def test_claim_leases_the_row_and_counts_an_attempt(now):
    node = make_node(now=now, base_url="http://127.0.0.1:8123", instance_id="inst-a")
    execution = make_execution(node, now=now)
    [item] = claim(now, worker="worker-7")
    assert item.base_url == "http://127.0.0.1:8123"
    assert item.instance_id == "inst-a"
    assert item.execution.lease_token is not None
    fresh = Execution.objects.get(pk=execution.pk)
    assert fresh.status == "queued"
    assert fresh.run_at == now + timedelta(seconds=LEASE)
    assert fresh.lease_token == item.execution.lease_token
    assert fresh.claimed_by == "worker-7"
    assert fresh.attempt == 1
    assert item.execution.attempt == 1


@pytest.mark.django_db
def test_a_leased_row_is_not_claimed_again_until_its_lease_expires(now):
    execution = make_execution(now=now)
    [first] = claim(now)
    set_heartbeat(Node.objects.get(pk=execution.node_id), now + timedelta(seconds=LEASE) + queue.LEASE_GRACE)
    assert claim(now + timedelta(seconds=LEASE - 1)) == []
    # Expired, but left to the dispatcher that held it for a grace period (it may still record).
    assert claim(now + timedelta(seconds=LEASE)) == []
    [second] = claim(now + timedelta(seconds=LEASE) + queue.LEASE_GRACE, worker="worker-2")
    assert second.execution.id == execution.id
    assert second.execution.attempt == 2
    assert second.execution.lease_token != first.execution.lease_token
    assert Execution.objects.get(pk=execution.pk).claimed_by == "worker-2"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "node_fields",
    [
        pytest.param({"last_heartbeat_at_offset": -ALIVE}, id="heartbeat-at-the-window-edge"),
        pytest.param({"last_heartbeat_at_offset": -3600}, id="stale-heartbeat"),
        pytest.param({"shutdown": True}, id="shut-down"),
    ],
)
def test_claim_leaves_work_of_a_node_that_is_down_queued(now, node_fields):
    heartbeat = now + timedelta(seconds=node_fields.get("last_heartbeat_at_offset", 0))
    shutdown_at = now if node_fields.get("shutdown") else None
    node = make_node(now=now, last_heartbeat_at=heartbeat, shutdown_at=shutdown_at)
    execution = make_execution(node, now=now)
    assert claim(now) == []
    fresh = Execution.objects.get(pk=execution.pk)
    assert (fresh.status, fresh.attempt, fresh.lease_token) == ("queued", 0, None)


@pytest.mark.django_db
def test_claim_leaves_work_of_an_unknown_node_queued(now):
    node = make_node(now=now)
    execution = make_execution(node, now=now)
    node.delete()
    assert claim(now) == []
    assert Execution.objects.get(pk=execution.pk).attempt == 0


@pytest.mark.django_db
def test_claim_takes_live_nodes_work_past_a_dead_nodes_older_work(now):
    dead = make_node("dead", now=now - timedelta(hours=1))
    alive = make_node("alive", now=now)
    for _ in range(3):
        make_execution(dead, now=now - timedelta(minutes=5))
    wanted = make_execution(alive, now=now)
    assert claimed_ids(claim(now, limit=1)) == [wanted.id]


@pytest.mark.django_db(transaction=True)
def test_claim_skips_rows_locked_by_another_transaction(now, db_url):
    node = make_node(now=now)
    locked = make_execution(node, now=now - timedelta(seconds=10))
    free = make_execution(node, now=now)
    with psycopg.connect(db_url) as other:
        other.execute("SELECT id FROM executions_execution WHERE id = %s FOR UPDATE", [locked.id])
        assert claimed_ids(claim(now)) == [free.id]
        other.rollback()
    assert claimed_ids(claim(now)) == [locked.id]


@pytest.mark.django_db(transaction=True)
def test_a_claim_takes_only_rows_another_open_claim_has_not_locked(now, db_url):
    node = make_node(now=now)
    executions = [make_execution(node, now=now - timedelta(seconds=10 - index)) for index in range(6)]
    with psycopg.connect(db_url) as other:
        # Another dispatcher's claim, not yet committed, holds the three earliest rows.
        other.execute(
            "SELECT id FROM executions_execution WHERE status = 'queued' ORDER BY fair_seq, id LIMIT 3 FOR UPDATE"
        )
        ours = claimed_ids(claim(now))
        other.rollback()
    assert sorted(ours) == sorted(execution.id for execution in executions[3:])
