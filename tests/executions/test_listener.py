"""The hub's listener against the real PostgreSQL: how often it reads the event table."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from django.db import connection
from django.utils import timezone

from agentfield_project.postgres.listen import listen_forever
from executions import events, listener
from executions.hub import Hub
from tests.factories import make_execution

pytestmark = pytest.mark.django_db(transaction=True)
INTERVAL = 2.0  # long enough that three events written one after the other fall inside it on a loaded machine


class CountingListener(listener.Listener):
    """The listener, noting when each of its reads of the event table began."""

    def __init__(self, hub: Hub) -> None:
        super().__init__(hub)
        self.reads: list[float] = []

    async def catch_up(self, conn) -> None:
        self.reads.append(time.monotonic())
        await super().catch_up(conn)


def _record(execution) -> int:
    try:
        return events.record(execution, events.QUEUED, timezone.now())  # commits and NOTIFYs on its own
    finally:
        connection.close()  # a worker thread's connection: it must not outlive the test


async def _until(condition, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_events_that_come_one_at_a_time_are_read_together_and_the_first_after_quiet_at_once(settings):
    settings.AGENTFIELD_SSE_READ_INTERVAL_SECONDS = INTERVAL
    executions = [make_execution() for _ in range(4)]
    hub = Hub()
    counting = CountingListener(hub)
    seen = hub.subscribe(lambda event: True, capacity=100)

    async def scenario() -> None:
        task = asyncio.get_running_loop().create_task(
            listen_forever([events.CHANNEL], counting.session, name="listener test", backoff_cap=0.5)
        )
        try:
            await _until(lambda: len(counting.reads) == 1)  # connected: the first read of the table
            await asyncio.sleep(INTERVAL + 0.2)  # a quiet spell longer than the interval
            first = await asyncio.to_thread(_record, executions[0])
            await _until(lambda: hub.last_id == first)
            assert len(counting.reads) == 2  # read at once: nothing made it wait
            for execution in executions[1:]:  # one at a time, each its own commit and NOTIFY
                last = await asyncio.to_thread(_record, execution)
            await _until(lambda: hub.last_id == last)
            assert len(counting.reads) == 3  # the three were read together, in one read
            assert counting.reads[2] - counting.reads[1] >= INTERVAL - 0.05
            assert [event.execution_id for event in seen.pending] == [e.id for e in executions]
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(scenario())
