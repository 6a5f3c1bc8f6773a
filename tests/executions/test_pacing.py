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
