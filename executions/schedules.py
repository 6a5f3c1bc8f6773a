"""Cron schedules: each tick fires one execution, however many dispatchers run.

Every dispatcher runs a Scheduler. A round locks the due schedules with SKIP LOCKED and, in the
same short transaction, inserts each one's execution and moves its `next_fire_at` past now: a
second dispatcher either skips the locked row or, once it commits, no longer sees it due. So a
tick fires exactly once, and a crash before the commit fires it on the next round instead.

Catching up after downtime (no dispatcher ran, or the database was away) is the schedule's
`misfire` policy (`plan`): `once` fires one execution for all the ticks it missed, `skip` fires
only if the tick is less than AGENTFIELD_SCHEDULE_GRACE_SECONDS late. Either way the schedule then
keeps to its cron: missed ticks are never fired one by one, so a week's outage of an every-minute
schedule is not 10,080 executions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from executions import cron, services
from executions.exceptions import ExecutionError
from executions.models import Execution, Schedule

logger = logging.getLogger(__name__)

# Short and alone in its transaction with the inserts it guards (see the module docstring); the
# partial index schedule_due_idx matches it.
_DUE = """
SELECT * FROM executions_schedule
 WHERE enabled AND next_fire_at <= %s
 ORDER BY next_fire_at
 LIMIT %s
   FOR UPDATE SKIP LOCKED
"""
BATCH = 50


def next_fire(schedule: Schedule, after: datetime) -> datetime | None:
    """The schedule's first tick after `after`; CronError if its cron or time zone is wrong."""
    return cron.next_tick(cron.parse(schedule.cron), after, cron.zone(schedule.timezone))


def plan(misfire: str, due_at: datetime, now: datetime, grace: timedelta) -> bool:
    """Whether a tick due at `due_at` still fires at `now` (the policy in the module docstring)."""
    return misfire == Schedule.Misfire.ONCE or now - due_at <= grace


def reschedule(schedule: Schedule, now: datetime) -> None:
    """Set `next_fire_at` from the cron (after an edit): None while disabled."""
    schedule.next_fire_at = next_fire(schedule, now) if schedule.enabled else None


def fire(schedule: Schedule, now: datetime) -> Execution:
    """A new execution of the schedule's target; ExecutionError if it cannot be created."""
    body = {"input": schedule.input, "priority": schedule.priority}
    submission = services.build_submission(schedule.target, body, {})
    execution, _, _ = services.submit(submission, now)
    return execution


class Scheduler:
    """The dispatcher's loop that fires due schedules (run_once + the runner's poll)."""

    channel = "agentfield_schedules"  # nothing NOTIFYs it: the runner polls it every poll interval

    def __init__(self, clock: Callable[[], datetime] = timezone.now) -> None:
        self._clock = clock

    def run_once(self) -> bool:
        now = self._clock()
        grace = timedelta(seconds=settings.AGENTFIELD_SCHEDULE_GRACE_SECONDS)
        with transaction.atomic():
            due = list(Schedule.objects.raw(_DUE, [now, BATCH]))
            for schedule in due:
                _fire_due(schedule, now, grace)
        return len(due) == BATCH  # more may be due: go again at once


def _fire_due(schedule: Schedule, now: datetime, grace: timedelta) -> None:
    due_at = schedule.next_fire_at
    fields = ["next_fire_at", "last_error", "updated_at"]
    schedule.last_error = ""
    if plan(schedule.misfire, due_at, now, grace):
        try:
            execution = fire(schedule, now)
        except ExecutionError as error:  # its target is gone or its input is wrong: say so, keep ticking
            schedule.last_error = f"{now:%Y-%m-%d %H:%M:%S} UTC: {error}"
            logger.warning("schedule %s did not fire: %s", schedule.name, error)
        else:
            schedule.last_fired_at, schedule.last_execution_id = now, execution.id
            fields += ["last_fired_at", "last_execution_id"]
    try:
        schedule.next_fire_at = next_fire(schedule, now)
    except cron.CronError as error:  # edited in the database by hand: stop rather than spin
        schedule.next_fire_at, schedule.last_error = None, str(error)
    schedule.updated_at = now
    schedule.save(update_fields=fields)
