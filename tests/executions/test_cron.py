"""executions/cron.py: parsing cron expressions and finding the next tick (pure, time is a parameter)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from executions import cron

PARIS = cron.zone("Europe/Paris")


def tick(expression: str, after: datetime, tz=UTC) -> datetime | None:
    return cron.next_tick(cron.parse(expression), after, tz)


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_fields_accept_numbers_ranges_lists_steps_and_names():
    parsed = cron.parse("*/15 9-17 1,15 jan-mar mon-fri")
    assert parsed.minutes == {0, 15, 30, 45}
    assert parsed.hours == set(range(9, 18))
    assert parsed.days == {1, 15}
    assert parsed.months == {1, 2, 3}
    assert parsed.weekdays == {1, 2, 3, 4, 5}


def test_sunday_is_0_or_7_and_aliases_expand():
    assert cron.parse("0 0 * * 7").weekdays == {0}
    assert cron.parse("@daily") == cron.parse("0 0 * * *")


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * *", "five fields"),
        ("60 * * * *", "minute must be within 0-59"),
        ("* 24 * * *", "hour must be within"),
        ("* * 0 * *", "day of month must be within"),
        ("* * * 13 *", "month must be within"),
        ("* * * * 8", "day of week must be within"),
        ("*/0 * * * *", "minute must be within"),
        ("a * * * *", "bad minute field"),
        ("5-1 * * * *", "minute must be within"),
    ],
)
def test_bad_expressions_say_which_field_is_wrong(expression, message):
    with pytest.raises(cron.CronError, match=message):
        cron.parse(expression)


def test_the_next_tick_is_strictly_after_the_moment():
    assert tick("*/15 * * * *", at(2026, 12, 2, 10, 0)) == at(2026, 12, 2, 10, 15)
    assert tick("*/15 * * * *", at(2026, 12, 2, 10, 7, 30)) == at(2026, 12, 2, 10, 15)
    assert tick("0 0 1 1 *", at(2026, 12, 2)) == at(2027, 1, 1)


def test_ticks_are_wall_clock_times_of_the_time_zone():
    # 09:00 in Paris is 08:00 UTC in winter and 07:00 UTC in summer.
    assert tick("0 9 * * *", at(2026, 12, 2), PARIS) == at(2026, 12, 2, 8, 0)
    assert tick("0 9 * * *", at(2026, 7, 1), PARIS) == at(2026, 7, 1, 7, 0)


def test_a_time_the_clocks_skip_has_no_tick_that_day():
    # 29 March 2026: Paris goes from 02:00 to 03:00.
    assert tick("30 2 * * *", at(2026, 3, 28, 12, 0), PARIS) == at(2026, 3, 30, 0, 30)


def test_a_time_the_clocks_repeat_ticks_once():
    # 25 October 2026: Paris goes from 03:00 back to 02:00; 02:30 happens twice and ticks the first time.
    first = tick("30 2 * * *", at(2026, 10, 24, 12, 0), PARIS)
    assert first == at(2026, 10, 25, 0, 30)
    assert tick("30 2 * * *", first, PARIS) == at(2026, 10, 26, 1, 30)


def test_both_day_fields_restricted_match_either_as_in_vixie_cron():
    # The 13th, or any Friday: from Wednesday 2 December 2026 the next is Friday the 4th.
    assert tick("0 0 13 * 5", at(2026, 12, 2)) == at(2026, 12, 4)
    # Only the day of week restricted: Fridays only.
    assert tick("0 0 * * 5", at(2026, 12, 5)) == at(2026, 12, 11)


def test_an_impossible_date_has_no_tick():
    assert tick("0 0 30 2 *", at(2026, 12, 2)) is None


def test_unknown_time_zones_are_refused():
    with pytest.raises(cron.CronError, match="unknown time zone"):
        cron.zone("Mars/Olympus")
