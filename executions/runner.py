"""The `run_dispatcher` loop: run every work loop once, sleep on LISTEN when there is nothing to do."""

from __future__ import annotations

import logging
from typing import Protocol

from executions.wakeup import Wakeup

logger = logging.getLogger(__name__)


class WorkLoop(Protocol):
    channel: str

    def run_once(self) -> bool: ...


class Runner:
    """Drives the dispatcher's loops until `request_stop()`; signal handlers only call that."""

    def __init__(self, loops: list[WorkLoop], wakeup: Wakeup, poll_interval: float, max_rounds: int | None = None):
        self.loops = loops
        self.wakeup = wakeup
        self.poll_interval = poll_interval
        self.max_rounds = max_rounds
        self._stopping = False

    @property
    def stopping(self) -> bool:
        return self._stopping

    def request_stop(self) -> None:
        self._stopping = True
        self.wakeup.stop()

    def run(self, *, once: bool = False) -> None:
        """Loop until stopped (or, with `once`, until a round finds nothing to do)."""
        self.wakeup.start()
        rounds = 0
        while not self._stopping:
            did_work = False
            for loop in self.loops:
                did_work |= loop.run_once()
            rounds += 1
            if once and not did_work and not any(getattr(loop, "in_flight", 0) for loop in self.loops):
                break
            if self.max_rounds is not None and rounds >= self.max_rounds:
                break
            if not did_work:
                self.wakeup.wait(self.poll_interval)
        self.wakeup.stop()
