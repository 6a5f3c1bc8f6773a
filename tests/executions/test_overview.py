"""The overview's pure figures: throughput and failure rate per step, duration bars, readable ages."""

from __future__ import annotations

from datetime import timedelta

from executions.overview import (
    CHART_HEIGHT,
    SPANS,
    Durations,
    age_text,
    duration_text,
    failure_points,
    first_bucket,
    floor,
    scaled,
    throughput,
)

HOUR = SPANS["1h"]


def test_throughput_has_a_bar_per_step_scaled_to_the_busiest(now):
    last = floor(now, HOUR.step)
    counts = {(last, "succeeded"): 3, (last, "failed"): 1, (last - timedelta(minutes=1), "succeeded"): 2,
              (last - timedelta(hours=2), "succeeded"): 99}  # fmt: skip
    buckets = throughput(counts, HOUR, now)
    assert len(buckets) == HOUR.buckets and buckets[0].start == first_bucket(HOUR, now)
    assert [b.start for b in buckets] == sorted(b.start for b in buckets)
    newest = buckets[-1]
    assert (newest.succeeded, newest.failed, newest.failure_rate) == (3, 1, 0.25)
    assert (newest.ok_height, newest.failed_height, newest.failed_y) == (CHART_HEIGHT * 3 / 4, CHART_HEIGHT / 4, 0)
    assert (buckets[-2].ok_height, buckets[-2].failure_rate) == (CHART_HEIGHT / 2, 0)
    assert sum(b.finished for b in buckets) == 6


def test_an_idle_range_draws_no_bars_and_no_failure_line(now):
    buckets = throughput({}, SPANS["24h"], now)
    assert {b.ok_height for b in buckets} == {b.failed_height for b in buckets} == {0}
    assert failure_points(buckets) == ""


def test_the_failure_line_skips_steps_where_nothing_ended(now):
    last = floor(now, HOUR.step)
    buckets = throughput({(last, "failed"): 2, (last - timedelta(minutes=3), "succeeded"): 1}, HOUR, now)
    points = failure_points(buckets).split()
    assert len(points) == 2
    assert points[0].endswith(f",{float(CHART_HEIGHT)}") and points[1].endswith(",0.0")  # 0 %, then 100 %


def test_steps_are_aligned_like_postgres_date_bin(now):
    assert floor(now + timedelta(minutes=47, seconds=3), timedelta(minutes=30)) == now + timedelta(minutes=30)
    assert floor(now + timedelta(hours=4), timedelta(hours=3)) == now + timedelta(hours=3)


def test_duration_bars_are_scaled_to_the_slowest_p99():
    rows = scaled([Durations("a.x", 10, 1, 100, 200, 400, 500), Durations("b.y", 3, 0, 50, 50, 100, 100)])
    assert [(r.p50_width, r.p90_width, r.p99_width) for r in rows] == [(25.0, 50.0, 100.0), (12.5, 12.5, 25.0)]
    assert rows[0].texts == ("100 ms", "200 ms", "400 ms", "500 ms")


def test_durations_and_ages_read_naturally(now):
    assert [duration_text(ms) for ms in (None, 850, 12_400, 185_000, 7_500_000)] == [
        "—", "850 ms", "12.4 s", "3 min 5 s", "2 h 5 min",
    ]  # fmt: skip
    assert age_text(None, now) == "—"
    assert age_text(now - timedelta(seconds=42), now) == "42 s"
    assert age_text(now - timedelta(minutes=3, seconds=5), now) == "3 min"
    assert age_text(now - timedelta(hours=2, minutes=5), now) == "2 h 5 min"
