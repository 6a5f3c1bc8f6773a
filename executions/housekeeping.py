"""The dispatcher's housekeeping loop: retention and old memory change events, a little at a time."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from executions import memory_events, retention

logger = logging.getLogger(__name__)

INTERVAL = timedelta(minutes=1)


class Housekeeper:
    """Prunes one batch a round while there is a backlog, else looks again a minute later."""

    channel = "agentfield_housekeeping"  # nothing NOTIFYs it: it runs on its own schedule

    def __init__(self, clock: Callable[[], datetime] = timezone.now) -> None:
        self._clock = clock
        self._next = datetime.min.replace(tzinfo=UTC)
        self._resume_at: datetime | None = None

    def run_once(self) -> bool:
        now = self._clock()
        if now < self._next:
            return False
        pruned = retention.prune_batch(now, resume_at=self._resume_at)
        self._resume_at = pruned.resume_at  # None once a backlog is done: the next one starts from the oldest row
        memory_events.prune(now)
        if pruned.executions:
            logger.info("retention: pruned %s", pruned.describe())
            return True  # a backlog: the next round takes the next batch
        self._next = now + INTERVAL
        return False
