"""In-process fan-out of lifecycle events to the open SSE streams of this server process.

The hub lives on the server's event loop. The listener (executions/listener.py) reads new event
rows once per wake-up and `publish`es them; every subscription keeps its own bounded buffer, so a
stream that cannot keep up is told to end (it resumes from the table with Last-Event-ID) instead
of growing without bound or slowing the others down.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from executions.statuses import TERMINAL

if TYPE_CHECKING:
    from executions.models import ExecutionEvent

logger = logging.getLogger(__name__)

Matcher = Callable[["ExecutionEvent"], bool]
# Executions whose last event this process saw was terminal (or not), remembered up to this many each.
FINISHED_MEMORY = 50_000
UNFINISHED_MEMORY = 50_000


class Subscription:
    """One stream's bounded buffer of live events; `overflowed` once it fell `capacity` behind."""

    def __init__(self, matches: Matcher, capacity: int) -> None:
        self.matches = matches
        self.capacity = capacity
        self.pending: deque[ExecutionEvent] = deque()
        self.overflowed = False
        self.wakeup = asyncio.Event()

    def offer(self, event: ExecutionEvent) -> None:
        """Buffer `event` if it matches the stream's filters; flag overflow instead of growing."""
        if self.overflowed or not self.matches(event):
            return
        if len(self.pending) >= self.capacity:
            self.overflowed = True
            self.pending.clear()
        else:
            self.pending.append(event)
        self.wakeup.set()

    def wake(self) -> None:
        """Make the stream re-check its state (used by the transport's flow control)."""
        self.wakeup.set()


class Hub:
    """The set of subscriptions plus the id of the last event published to them."""

    def __init__(self) -> None:
        self.subscriptions: set[Subscription] = set()
        self.last_id: int | None = None
        self.ready = asyncio.Event()
        self.listener_connected = False
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._unfinished: OrderedDict[str, None] = OrderedDict()

    def finished(self, execution_id: str) -> bool:
        """Whether this hub saw `execution_id` end (its newest event was terminal); False when it cannot tell."""
        return execution_id in self._finished

    def unfinished(self, execution_id: str) -> bool:
        """Whether the newest event this hub saw of `execution_id` was not terminal, while the listener
        is connected (so its news is not held up); False when it cannot tell."""
        return self.listener_connected and execution_id in self._unfinished

    @property
    def subscriber_count(self) -> int:
        return len(self.subscriptions)

    def start_at(self, last_id: int) -> None:
        """Set the starting point once (the newest id when the listener first connects)."""
        if self.last_id is None:
            self.last_id = last_id
        self.ready.set()

    def subscribe(self, matches: Matcher, capacity: int) -> Subscription:
        """A new subscription that receives every event published from now on."""
        subscription = Subscription(matches, capacity)
        self.subscriptions.add(subscription)
        logger.debug("event stream subscribed (%d open)", len(self.subscriptions))
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget `subscription`; safe to call twice."""
        if subscription in self.subscriptions:
            self.subscriptions.discard(subscription)
            logger.debug("event stream unsubscribed (%d open)", len(self.subscriptions))

    def publish(self, events: Iterable[ExecutionEvent]) -> None:
        """Hand events (in id order, newer than `last_id`) to every subscription, without awaiting."""
        # No await in here: a subscription added concurrently sees either all or none of a batch,
        # which is what lets a resuming stream replay from the table without a gap.
        for event in events:
            if self.last_id is not None and event.id <= self.last_id:
                continue
            self.last_id = event.id
            self._remember(event)
            for subscription in self.subscriptions:
                subscription.offer(event)

    def _remember(self, event: ExecutionEvent) -> None:
        ended = event.status in TERMINAL
        # A move the other way forgets the old state: e.g. re-queued after an interrupted run.
        (self._unfinished if ended else self._finished).pop(event.execution_id, None)
        remembered, limit = (self._finished, FINISHED_MEMORY) if ended else (self._unfinished, UNFINISHED_MEMORY)
        remembered[event.execution_id] = None
        if len(remembered) > limit:
            remembered.popitem(last=False)
