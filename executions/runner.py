"""The `run_dispatcher` loop: run the work loops that have work, sleep on LISTEN when none has.

A loop runs in a round when its channel fired (a NOTIFY, or its own threads finishing a call),
when it did work in its previous round, or when its poll interval has passed. An idle loop thus
costs no database round trip while another loop is busy: it used to claim on every round.
"""

from __future__ import annotations

import logging
import time
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
        busy = {id(loop): True for loop in self.loops}
        next_poll = {id(loop): 0.0 for loop in self.loops}
        rounds = 0
        while not self._stopping:
            fired = self.wakeup.fired()
            did_work = False
            for loop in self.loops:
                now = time.monotonic()
                if not (busy[id(loop)] or loop.channel in fired or now >= next_poll[id(loop)]):
                    continue
                busy[id(loop)] = loop.run_once()
                next_poll[id(loop)] = now + self.poll_interval
                did_work |= busy[id(loop)]
            rounds += 1
            if once and not did_work and not any(getattr(loop, "in_flight", 0) for loop in self.loops):
                break
            if self.max_rounds is not None and rounds >= self.max_rounds:
                break
            if not did_work:
                self.wakeup.wait(max(0.0, min(next_poll.values()) - time.monotonic()))
        self.wakeup.stop()
