"""The `run_dispatcher` loop: run the work loops that have work, sleep on LISTEN when none has.

A loop runs in a round when its channel fired (a NOTIFY, or its own threads finishing a call),
when it did work in its previous round, or when its poll interval has passed. An idle loop thus
costs no database round trip while another loop is busy: it used to claim on every round.

Nothing a round raises stops the runner. A database that went away (a restart, a failover, a
network blip) is logged once, the round is retried with a jittered back-off until the database
answers again, and its recovery is logged once; the loops keep what they had not recorded yet
(see `ExecutionDispatcher._record_finished`). Any other error is a bug: it is logged with its
traceback and the round is retried after the same back-off, so one bad row cannot kill every
dispatcher.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

from django.conf import settings

from agentfield_project.postgres import availability
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
        self.outage = availability.Outage("dispatcher")
        self._failures = 0

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
                busy[id(loop)] = self._run_once(loop)
                next_poll[id(loop)] = now + self.poll_interval
                did_work |= busy[id(loop)]
                if self._failures:
                    break  # back off before any other loop tries the database
            rounds += 1
            if once and not did_work and not any(getattr(loop, "in_flight", 0) for loop in self.loops):
                break
            if self.max_rounds is not None and rounds >= self.max_rounds:
                break
            if self._failures:
                cap = settings.AGENTFIELD_DB_BACKOFF_CAP_SECONDS
                self.wakeup.wait(availability.backoff_seconds(self._failures, cap=cap))
            elif not did_work:
                self.wakeup.wait(max(0.0, min(next_poll.values()) - time.monotonic()))
        self.wakeup.stop()

    def _run_once(self, loop: WorkLoop) -> bool:
        """One round of `loop`; a failure is counted (the caller backs off), never raised."""
        try:
            did_work = loop.run_once()
        except Exception as error:  # noqa: BLE001 - see the module docstring
            self._failures += 1
            if availability.is_unavailable(error):
                self.outage.failed(error)
            else:
                logger.exception("%s loop failed; retrying", loop.channel)
            availability.discard_connections()
            return True  # run it again as soon as the back-off allows
        self._failures = 0
        self.outage.recovered()
        return did_work
