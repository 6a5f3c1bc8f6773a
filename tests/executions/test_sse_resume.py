"""The replay/live boundary of a resuming stream, with an event published during the replay."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

from agentfield_project.runtime.flow import Writability
from executions import sse
from executions.hub import Hub
from executions.models import ExecutionEvent


def event(event_id: int) -> ExecutionEvent:
    return ExecutionEvent(
        id=event_id,
        execution_id="exec_1",
        run_id="run_1",
        node_id="n",
        target="n.r",
        type="t",
        created_at=datetime.now(UTC),
    )


def test_an_event_published_during_the_replay_is_sent_once_in_order(monkeypatch, settings):
    settings.AGENTFIELD_SSE_HEARTBEAT_SECONDS = 60
    hub = Hub()
    hub.start_at(4)

    async def replay_page(after, filters):
        if after >= 6:
            return []
        # Events 5 and 6 commit and reach the hub while the table is being read: 6 is both
        # in the replayed page and in the live buffer; 7 only in the buffer.
        hub.publish([event(5), event(6), event(7)])
        return [event(5), event(6)]

    monkeypatch.setattr(sse, "_replay_page", replay_page)

    async def read(count):
        stream = sse._stream(hub, 4, {}, Writability())
        frames = [await anext(stream) for _ in range(count)]
        await stream.aclose()
        return frames, hub.subscriber_count

    frames, left = asyncio.run(read(4))
    ids = [int(f.split(b"\n")[0].removeprefix(b"id: ")) for f in frames[1:]]
    assert json.loads(frames[0].split(b"\n")[0].removeprefix(b"data: "))["type"] == "connected"
    assert ids == [5, 6, 7]
    assert left == 0


def test_a_paused_client_that_overflows_ends_its_stream(monkeypatch, settings):
    settings.AGENTFIELD_SSE_CLIENT_QUEUE = 2
    hub = Hub()
    hub.start_at(0)
    flow = Writability()

    async def scenario():
        stream = sse._stream(hub, None, {}, flow)
        await anext(stream)  # connected
        flow.pauseProducing()  # the client's socket is full
        reader = asyncio.ensure_future(anext(stream, None))
        await asyncio.sleep(0)
        hub.publish([event(1), event(2), event(3)])
        return await asyncio.wait_for(reader, 5), hub.subscriber_count, flow.listeners

    assert asyncio.run(scenario()) == (None, 0, [])
