"""How long an execution has taken so far (pure: the clock is a parameter)."""

from __future__ import annotations

from datetime import datetime

from executions.statuses import TERMINAL


def elapsed_ms(status: str, started_at: datetime | None, duration_ms: int | None, now: datetime) -> int | None:
    """The stored duration once finished; while active, the time since the first start (it grows).

    Counted from `started_at` (the first hand-over, kept across re-queues and resumes), so the
    figure a client watches while it runs is the one it reads once the execution is finished.
    """
    if duration_ms is not None or started_at is None or status in TERMINAL:
        return duration_ms
    return max(0, int((now - started_at).total_seconds() * 1000))
