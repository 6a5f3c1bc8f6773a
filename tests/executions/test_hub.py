"""The in-process fan-out: filters, order, overflow, and the starting point."""

from __future__ import annotations

import asyncio

from executions.hub import Hub
from executions.models import ExecutionEvent


def event(event_id: int, execution_id: str = "exec_1") -> ExecutionEvent:
    return ExecutionEvent(id=event_id, execution_id=execution_id, run_id="run_1", node_id="n", target="n.r")


def run(coroutine):
    return asyncio.run(coroutine)


def test_publish_hands_new_events_in_order_to_matching_subscriptions_only():
    async def scenario():
        hub = Hub()
        hub.start_at(10)
        everything = hub.subscribe(lambda e: True, capacity=10)
        only_two = hub.subscribe(lambda e: e.execution_id == "exec_2", capacity=10)
        hub.publish([event(9), event(11), event(12, "exec_2"), event(12, "exec_2"), event(13)])
        return [e.id for e in everything.pending], [e.id for e in only_two.pending], hub.last_id

    assert run(scenario()) == ([11, 12, 13], [12], 13)


def test_a_subscription_that_falls_behind_overflows_and_drops_its_buffer():
    async def scenario():
        hub = Hub()
        hub.start_at(0)
        slow = hub.subscribe(lambda e: True, capacity=2)
        hub.publish([event(1), event(2), event(3), event(4)])
        return slow.overflowed, list(slow.pending), slow.wakeup.is_set()

    assert run(scenario()) == (True, [], True)


def test_the_starting_point_is_set_once_and_unsubscribe_is_idempotent():
    async def scenario():
        hub = Hub()
        hub.start_at(5)
        hub.start_at(1)  # a listener reconnect must not move the hub backwards
        subscription = hub.subscribe(lambda e: True, capacity=1)
        hub.unsubscribe(subscription)
        hub.unsubscribe(subscription)
        return hub.last_id, hub.ready.is_set(), hub.subscriber_count

    assert run(scenario()) == (5, True, 0)


def test_the_hub_remembers_which_executions_it_saw_end_until_they_move_again():
    hub = Hub()
    hub.start_at(0)

    def status_event(event_id: int, execution_id: str, status: str) -> ExecutionEvent:
        return ExecutionEvent(
            id=event_id, execution_id=execution_id, status=status, run_id="r", node_id="n", target="n.r"
        )

    hub.publish([status_event(1, "exec_a", "running"), status_event(2, "exec_b", "succeeded")])
    assert not hub.finished("exec_a") and hub.finished("exec_b") and not hub.finished("exec_unseen")
    hub.publish([status_event(3, "exec_a", "failed"), status_event(4, "exec_b", "queued")])  # b re-queued
    assert hub.finished("exec_a") and not hub.finished("exec_b")


def test_the_hub_remembers_which_executions_it_saw_unfinished_while_its_listener_is_connected():
    hub = Hub()
    hub.start_at(0)
    hub.listener_connected = True

    def status_event(event_id: int, execution_id: str, status: str) -> ExecutionEvent:
        return ExecutionEvent(
            id=event_id, execution_id=execution_id, status=status, run_id="r", node_id="n", target="n.r"
        )

    hub.publish([status_event(1, "exec_a", "queued"), status_event(2, "exec_b", "running")])
    assert hub.unfinished("exec_a") and hub.unfinished("exec_b") and not hub.unfinished("exec_unseen")
    hub.publish([status_event(3, "exec_a", "succeeded"), status_event(4, "exec_b", "waiting")])
    assert not hub.unfinished("exec_a") and hub.finished("exec_a") and hub.unfinished("exec_b")
    hub.publish([status_event(5, "exec_a", "queued")])  # re-queued: unfinished again
    assert hub.unfinished("exec_a") and not hub.finished("exec_a")
    hub.listener_connected = False  # reconnecting: its news may be late, so it cannot tell
    assert not hub.unfinished("exec_a") and not hub.unfinished("exec_b")
