"""The queue overview's pure figures."""

from __future__ import annotations

from datetime import timedelta

from executions.overview import CHART_HEIGHT, MINUTES, age_text, minute_floor, throughput_bars


def test_throughput_has_a_bar_per_minute_scaled_to_the_busiest(now):
    last = minute_floor(now)
    bars = throughput_bars({last: 4, last - timedelta(minutes=1): 2, last - timedelta(hours=2): 99}, now)
    assert len(bars) == MINUTES
    assert [bar.minute for bar in bars] == sorted(bar.minute for bar in bars)
    assert (bars[-1].finished, bars[-1].height, bars[-1].y) == (4, CHART_HEIGHT, 0)
    assert (bars[-2].finished, bars[-2].height) == (2, CHART_HEIGHT / 2)
    assert sum(bar.finished for bar in bars) == 6


def test_an_idle_hour_draws_no_bars(now):
    assert {bar.height for bar in throughput_bars({}, now)} == {0}


def test_ages_read_naturally(now):
    assert age_text(None, now) == "—"
    assert age_text(now - timedelta(seconds=42), now) == "42 s"
    assert age_text(now - timedelta(minutes=3, seconds=5), now) == "3 min"
    assert age_text(now - timedelta(hours=2, minutes=5), now) == "2 h 5 min"
