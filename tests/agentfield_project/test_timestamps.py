"""Every moment in API output has one form: RFC 3339, UTC, milliseconds, `Z`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from agentfield_project.timestamps import rfc3339


def test_a_moment_is_utc_with_milliseconds_and_a_z():
    assert rfc3339(datetime(2026, 11, 23, 12, 0, 1, 250_000, tzinfo=UTC)) == "2026-11-23T12:00:01.250Z"


def test_a_whole_second_still_has_its_milliseconds():
    assert rfc3339(datetime(2026, 11, 23, 12, 0, 1, tzinfo=UTC)) == "2026-11-23T12:00:01.000Z"


def test_microseconds_are_truncated_never_rounded_into_the_next_second():
    assert rfc3339(datetime(2026, 11, 23, 12, 0, 1, 999_999, tzinfo=UTC)) == "2026-11-23T12:00:01.999Z"


def test_another_zone_is_converted_to_utc():
    eastern = timezone(timedelta(hours=-5))
    assert rfc3339(datetime(2026, 11, 23, 7, 0, 1, 5_000, tzinfo=eastern)) == "2026-11-23T12:00:01.005Z"


def test_a_naive_moment_is_taken_as_utc_and_none_stays_none():
    assert rfc3339(datetime(2026, 11, 23, 12, 0, 1)) == "2026-11-23T12:00:01.000Z"
    assert rfc3339(None) is None


def test_it_parses_back_to_the_same_millisecond():
    moment = datetime(2026, 11, 23, 12, 0, 1, 123_456, tzinfo=UTC)
    assert datetime.fromisoformat(rfc3339(moment)) == moment.replace(microsecond=123_000)
