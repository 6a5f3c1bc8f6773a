"""Cron expressions and their next tick: a pure policy (no Django, time is a parameter).

Five fields, `minute hour day-of-month month day-of-week`, each `*`, a number, a range `a-b`, a
list `a,b`, a step `*/n` or `a-b/n`; months and days may be names (`jan`, `mon`); Sunday is 0 or
7. As in Vixie cron, when both day fields are restricted a day matches either. `@hourly`,
`@daily`, `@weekly`, `@monthly` and `@yearly` are accepted.

Ticks are wall-clock times in the schedule's time zone. A time the clocks skip (the spring
change) has no tick that day; a time they repeat (the autumn change) ticks once, the first time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
# (low, high, names whose index + offset is the value)
FIELDS = [(0, 59, [], 0), (0, 23, [], 0), (1, 31, [], 0), (1, 12, MONTHS, 1), (0, 7, DAYS, 0)]
FIELD_NAMES = ["minute", "hour", "day of month", "month", "day of week"]
SEARCH_DAYS = 366 * 8  # a schedule with no tick in eight years (e.g. 30 February) has none


class CronError(ValueError):
    """Not a cron expression."""


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day of month is `*`
    any_weekday: bool  # day of week is `*`

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        in_month, in_week = day.day in self.days, (day.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return in_month and in_week
        return in_month or in_week


def parse(expression: str) -> Cron:
    """The parsed expression; CronError saying which field is wrong."""
    text = ALIASES.get(expression.strip().lower(), expression.strip().lower())
    parts = text.split()
    if len(parts) != 5:
        raise CronError("a cron expression has five fields: minute hour day-of-month month day-of-week")
    values = [_field(part, index) for index, part in enumerate(parts)]
    weekdays = frozenset(day % 7 for day in values[4])
    return Cron(*values[:4], weekdays, parts[2] == "*", parts[4] == "*")


def _field(text: str, index: int) -> frozenset[int]:
    low, high, names, offset = FIELDS[index]
    chosen: set[int] = set()
    for item in text.split(","):
        span, _, step_text = item.partition("/")
        try:
            step = int(step_text) if step_text else 1
            start, end = (low, high) if span == "*" else _span(span, names, offset)
        except ValueError:
            raise CronError(f"bad {FIELD_NAMES[index]} field: {text!r}") from None
        if step < 1 or not low <= start <= end <= high:
            raise CronError(f"{FIELD_NAMES[index]} must be within {low}-{high}: {text!r}")
        chosen.update(range(start, end + 1, step))
    return frozenset(chosen)


def _span(text: str, names: list[str], offset: int) -> tuple[int, int]:
    first, _, last = text.partition("-")
    start = _value(first, names, offset)
    return start, _value(last, names, offset) if last else start


def _value(text: str, names: list[str], offset: int) -> int:
    return names.index(text) + offset if text in names else int(text)


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`; CronError if there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(f"unknown time zone {name!r} (an IANA name such as Europe/Paris or UTC)") from None


def next_tick(cron: Cron, after: datetime, tz: ZoneInfo) -> datetime | None:
    """The first tick strictly after `after` (aware), in UTC; None if there is none."""
    local = after.astimezone(tz).replace(tzinfo=None)
    day = local.date()
    for _ in range(SEARCH_DAYS):
        if cron.matches_day(day):
            for moment in _times(cron):
                aware = datetime.combine(day, moment).replace(tzinfo=tz)
                if _exists(aware, tz) and aware > after:
                    return aware.astimezone(UTC)
        day += timedelta(days=1)
    return None


def _times(cron: Cron) -> list[time]:
    return [time(hour, minute) for hour in sorted(cron.hours) for minute in sorted(cron.minutes)]


def _exists(aware: datetime, tz: ZoneInfo) -> bool:
    """Whether the wall-clock time happens at all that day (not in a spring-forward gap)."""
    return aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == aware.replace(tzinfo=None)
