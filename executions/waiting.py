"""The one way to wait for an execution: on this process's event hub, holding no thread and no connection.

A waiter subscribes to the hub first and reads the execution's state second, so a change that
commits in between still wakes it. It then sleeps until an event of that execution arrives (the
listener reads every committed event, see executions/listener.py) or a re-check is due: the
re-check is the safety net for a listener that is reconnecting (the database restarted), so a
waiter never depends on a notification alone. Reads run on a small shared pool and give their
connection back at once (agentfield_project/runtime/handler.py), so a thousand waiters cost neither
threads nor pooled connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import TypeVar

from agentfield_project.postgres import availability
from agentfield_project.runtime.handler import read_while_waiting
from executions import events, listener
from executions.models import ExecutionEvent

T = TypeVar("T")

RECHECK_SECONDS = 5.0
BUFFER = 16
TERMINAL_TYPES = frozenset(events.TERMINAL_EVENT.values())


async def wait_until(
    execution_id: str,
    read: Callable[[str], T | None],
    seconds: float,
    *,
    wake_on: Callable[[ExecutionEvent], bool] = lambda event: True,
    recheck: float = RECHECK_SECONDS,
) -> T | None:
    """`read(execution_id)` once it returns something, waking on the execution's events; None after `seconds`."""
    hub = listener.running_hub()
    subscription = hub.subscribe(lambda event: event.execution_id == execution_id and wake_on(event), BUFFER)
    deadline = time.monotonic() + seconds
    try:
        while True:
            subscription.wakeup.clear()
            subscription.pending.clear()
            found = await _read(read, execution_id)
            remaining = deadline - time.monotonic()
            if found is not None or remaining <= 0:
                return found
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(recheck, remaining)):
                    await subscription.wakeup.wait()
    finally:
        hub.unsubscribe(subscription)


async def _read(read: Callable[[str], T | None], execution_id: str) -> T | None:
    """`read(execution_id)`; None while the database is away (the work is stored: keep waiting)."""
    try:
        return await read_while_waiting(read, execution_id)
    except Exception as error:
        if availability.is_unavailable(error):
            return None
        raise


async def wait_for_news(execution_id: str, seconds: float, still_waiting: Callable[[str], bool] | None) -> None:
    """Return at the execution's next event, or after `seconds`; at once unless `still_waiting(id)`.

    `still_waiting` None: the caller knows, from the hub and without awaiting since, that it is still
    waiting (no event can have slipped in between: the hub publishes on this same event loop).
    """
    hub = listener.running_hub()
    subscription = hub.subscribe(lambda event: event.execution_id == execution_id, BUFFER)
    try:
        if still_waiting is not None and not await read_while_waiting(still_waiting, execution_id):
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await subscription.wakeup.wait()
    finally:
        hub.unsubscribe(subscription)
