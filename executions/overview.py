"""The console's overview figures: pure functions of counted rows and `now` (drawn as SVG by the templates)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

CHART_WIDTH = 600
CHART_HEIGHT = 120
MINUTES = 60
FAILED = ("failed", "timeout")


@dataclass(frozen=True)
class Span:
    """A time range of the overview, cut into `buckets` equal steps."""

    label: str
    buckets: int
    step: timedelta


SPANS = {
    "1h": Span("last hour", 60, timedelta(minutes=1)),
    "24h": Span("last 24 hours", 48, timedelta(minutes=30)),
    "7d": Span("last 7 days", 56, timedelta(hours=3)),
}


@dataclass(frozen=True)
class Bucket:
    """One step of the throughput chart: what finished in it, and where its bars go (SVG units)."""

    start: datetime
    succeeded: int
    failed: int
    other: int  # cancelled
    x: float
    width: float
    ok_y: float
    ok_height: float
    failed_y: float
    failed_height: float

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed + self.other

    @property
    def failure_rate(self) -> float | None:
        """Failed (or timed out) among those that succeeded or failed; None when none did."""
        judged = self.succeeded + self.failed
        return self.failed / judged if judged else None


def floor(moment: datetime, step: timedelta) -> datetime:
    """`moment` rounded down to a multiple of `step` since the epoch (what date_bin does in SQL)."""
    epoch = datetime(2000, 1, 1, tzinfo=moment.tzinfo)
    return moment - (moment - epoch) % step


def minute_floor(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def first_bucket(span: Span, now: datetime) -> datetime:
    return floor(now, span.step) - span.step * (span.buckets - 1)


def throughput(counts: dict[tuple[datetime, str], int], span: Span, now: datetime) -> list[Bucket]:
    """A stacked bar per step (succeeded below, failed above, cancelled left out of the height), oldest first."""
    start = first_bucket(span, now)
    steps = [start + span.step * index for index in range(span.buckets)]
    totals = []
    for moment in steps:
        by_status = {status: n for (at, status), n in counts.items() if at == moment}
        failed = sum(by_status.get(status, 0) for status in FAILED)
        totals.append((moment, by_status.get("succeeded", 0), failed, by_status.get("cancelled", 0)))
    peak = max([ok + failed for _, ok, failed, _ in totals] + [1])
    slot = CHART_WIDTH / span.buckets
    buckets = []
    for index, (moment, ok, failed, other) in enumerate(totals):
        ok_height = round(CHART_HEIGHT * ok / peak, 1)
        failed_height = round(CHART_HEIGHT * failed / peak, 1)
        ok_y = round(CHART_HEIGHT - ok_height, 1)
        buckets.append(Bucket(moment, ok, failed, other, round(index * slot, 1), round(max(slot - 1, 0.5), 1),
                              ok_y, ok_height, round(ok_y - failed_height, 1), failed_height))  # fmt: skip
    return buckets


def failure_points(buckets: list[Bucket]) -> str:
    """The failure-rate line as SVG polyline points (0 % at the bottom, 100 % at the top); steps with
    nothing judged are skipped."""
    points = []
    for bucket in buckets:
        if bucket.failure_rate is not None:
            x = round(bucket.x + bucket.width / 2, 1)
            points.append(f"{x},{round(CHART_HEIGHT * (1 - bucket.failure_rate), 1)}")
    return " ".join(points)


@dataclass(frozen=True)
class Durations:
    """Duration percentiles (ms) of one target's finished executions, with bar widths in % of the slowest."""

    target: str
    count: int
    failed: int
    p50: int
    p90: int
    p99: int
    longest: int
    p50_width: float = 0.0
    p90_width: float = 0.0
    p99_width: float = 0.0

    @property
    def texts(self) -> tuple[str, str, str, str]:
        """p50, p90, p99 and the longest, readable."""
        return tuple(duration_text(ms) for ms in (self.p50, self.p90, self.p99, self.longest))


def scaled(rows: list[Durations]) -> list[Durations]:
    """The rows with bar widths relative to the largest p99 among them."""
    top = max([row.p99 for row in rows] + [1])
    return [Durations(row.target, row.count, row.failed, row.p50, row.p90, row.p99, row.longest,
                      round(100 * row.p50 / top, 1), round(100 * row.p90 / top, 1), round(100 * row.p99 / top, 1))
            for row in rows]  # fmt: skip


def duration_text(ms: int | None) -> str:
    """`850 ms`, `12.4 s`, `3 min 5 s`, `2 h 5 min`; an em dash for none."""
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    seconds = ms // 1000
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


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
