"""Queue overview figures for the dashboard: pure functions of counted rows and `now`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

CHART_WIDTH = 600
CHART_HEIGHT = 120
MINUTES = 60


@dataclass(frozen=True)
class Bar:
    """One minute of the throughput chart, in SVG user units."""

    x: float
    y: float
    width: float
    height: float
    minute: datetime
    finished: int


def minute_floor(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def throughput_bars(per_minute: dict[datetime, int], now: datetime) -> list[Bar]:
    """A bar per minute of the last hour (oldest first), scaled to the busiest minute."""
    last = minute_floor(now)
    minutes = [last - timedelta(minutes=MINUTES - 1 - index) for index in range(MINUTES)]
    peak = max([per_minute.get(minute, 0) for minute in minutes] + [1])
    slot = CHART_WIDTH / MINUTES
    bars = []
    for index, minute in enumerate(minutes):
        finished = per_minute.get(minute, 0)
        height = round(CHART_HEIGHT * finished / peak, 1)
        bars.append(Bar(round(index * slot, 1), CHART_HEIGHT - height, round(slot - 1, 1), height, minute, finished))
    return bars


def age_text(since: datetime | None, now: datetime) -> str:
    """A short human age ("42 s", "3 min", "2 h 5 min"), or an em dash when there is none."""
    if since is None:
        return "—"
    seconds = max(0, int((now - since).total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
