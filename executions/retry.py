"""Retry policy for dispatching executions (pure: no Django, no clock reads)."""

from __future__ import annotations

from datetime import datetime, timedelta


def is_retryable(status_code: int | None) -> bool:
    """Connection errors, timeouts, 408, 429 and 5xx are worth another attempt; other 4xx are not."""
    return status_code is None or status_code in (408, 429) or status_code >= 500


def next_run_at(attempt: int, now: datetime, *, base: float, cap: float) -> datetime:
    """When to try again after `attempt` failed attempts: base doubling, capped."""
    # The exponent is bounded: 2 ** 1100 would overflow a float long after the cap was reached.
    delay = min(cap, base * 2.0 ** min(max(0, attempt - 1), 64))
    return now + timedelta(seconds=delay)
