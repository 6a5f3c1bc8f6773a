"""executions/api/pacing.py: the hold before an SDK's status poll, when the database is away."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from executions import listener
from executions.api import pacing
from executions.hub import Hub

SDK_POLL = {
    "type": "http",
    "method": "GET",
    "path": "/api/v1/executions/exec_1",
    "headers": [(b"user-agent", b"AgentField-SDK-AsyncClient/1.0")],
}


@pytest.fixture
def ready_hub(monkeypatch):
    hub = Hub()
    hub.ready.set()
    monkeypatch.setattr(listener, "running_hub", lambda: hub)
    return hub


def test_a_database_that_is_away_means_the_poll_is_not_held_not_an_error(ready_hub, monkeypatch, settings):
    settings.AGENTFIELD_SDK_POLL_HOLD_SECONDS = 30

    def away(key, execution_id):
        raise psycopg.OperationalError("connection refused")

    monkeypatch.setattr(pacing, "_worth_holding", away)
    asyncio.run(asyncio.wait_for(pacing.hold(SDK_POLL), 10))  # returns at once, raises nothing
    assert ready_hub.subscriber_count == 0


def test_any_other_error_of_the_hold_is_not_hidden(ready_hub, monkeypatch, settings):
    settings.AGENTFIELD_SDK_POLL_HOLD_SECONDS = 30

    def bug(key, execution_id):
        raise ZeroDivisionError

    monkeypatch.setattr(pacing, "_worth_holding", bug)
    with pytest.raises(ZeroDivisionError):
        asyncio.run(pacing.hold(SDK_POLL))


def test_a_poll_of_an_execution_the_hub_saw_end_is_answered_without_reading_the_database(
    ready_hub, monkeypatch, settings
):
    from executions.models import ExecutionEvent

    settings.AGENTFIELD_SDK_POLL_HOLD_SECONDS = 30
    ready_hub.start_at(0)
    ended = ExecutionEvent(id=1, execution_id="exec_1", status="succeeded", run_id="r", node_id="n", target="n.r")
    ready_hub.publish([ended])
    reads = []
    monkeypatch.setattr(pacing, "_worth_holding", lambda key, execution_id: reads.append(execution_id) or True)
    asyncio.run(asyncio.wait_for(pacing.hold(SDK_POLL), 10))  # returns at once
    assert reads == [] and ready_hub.subscriber_count == 0


def running_event(event_id: int, status: str = "running"):
    from executions.models import ExecutionEvent

    return ExecutionEvent(id=event_id, execution_id="exec_1", status=status, run_id="r", node_id="n", target="n.r")


def test_a_poll_of_an_execution_the_hub_saw_running_is_held_without_reading_the_database(
    ready_hub, monkeypatch, settings
):
    # A fan-out's parent polls each of its children: the hub saw them queued and started, so the
    # hold needs neither a thread nor a query to know they have not ended.
    settings.AGENTFIELD_SDK_POLL_HOLD_SECONDS = 30
    ready_hub.start_at(0)
    ready_hub.listener_connected = True
    ready_hub.publish([running_event(1)])
    monkeypatch.setattr(pacing.auth, "credentials_without_database", lambda key, has_session: True)
    reads = []
    monkeypatch.setattr(pacing, "_worth_holding", lambda key, execution_id: reads.append(execution_id) or True)

    async def scenario() -> int:
        held = asyncio.create_task(pacing.hold(SDK_POLL))
        await asyncio.sleep(0.2)
        assert not held.done(), "the poll of a running execution was not held"
        subscribers = ready_hub.subscriber_count
        ready_hub.publish([running_event(2, "succeeded")])  # the news: the hold ends
        await asyncio.wait_for(held, 10)
        return subscribers

    assert asyncio.run(scenario()) == 1
    assert reads == [] and ready_hub.subscriber_count == 0


@pytest.mark.parametrize("connected, key_known", [(False, True), (True, None), (True, False)])
def test_without_a_connected_listener_or_a_known_good_key_the_hold_reads_the_database(
    ready_hub, monkeypatch, settings, connected, key_known
):
    settings.AGENTFIELD_SDK_POLL_HOLD_SECONDS = 30
    ready_hub.start_at(0)
    ready_hub.publish([running_event(1)])
    ready_hub.listener_connected = connected
    monkeypatch.setattr(pacing.auth, "credentials_without_database", lambda key, has_session: key_known)
    reads = []
    monkeypatch.setattr(pacing, "_worth_holding", lambda key, execution_id: reads.append(execution_id) or False)
    asyncio.run(asyncio.wait_for(pacing.hold(SDK_POLL), 10))  # the read says "not worth holding": at once
    assert reads == ["exec_1"]
