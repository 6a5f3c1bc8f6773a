"""When to try a delivery again (pure; no Django).

Attempt 1 goes out at once; after failed attempt n the next is due base·2^(n-1) later, at most
`cap` (defaults: 0, +5 s, +10 s, +20 s, +40 s). A 2xx is success; 410 Gone stops at once; every
other answer (3xx included: redirects are never followed) and every transport error is retried.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal

DELIVERED = "delivered"
RETRY = "retry"
FAILED = "failed"


@dataclass(frozen=True)
class Schedule:
    max_attempts: int = 5
    base_seconds: float = 5.0
    cap_seconds: float = 300.0


@dataclass(frozen=True)
class Decision:
    outcome: Literal["delivered", "retry", "failed"]
    next_attempt_at: datetime | None = None
    reason: str = ""


def backoff_seconds(attempt: int, schedule: Schedule) -> float:
    """The wait after failed attempt `attempt` (1-based): base·2^(attempt-1), never above the cap."""
    exponent = min(max(attempt - 1, 0), 62)  # 2**62 seconds is already far past any cap
    return min(schedule.base_seconds * 2**exponent, schedule.cap_seconds)


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Seconds asked for by a Retry-After header (delta-seconds or HTTP-date); None if absent or garbage."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    seconds = (when - now).total_seconds()
    return seconds if math.isfinite(seconds) else None


def decide(
    status_code: int | None,
    attempt: int,
    now: datetime,
    schedule: Schedule,
    retry_after: str | None = None,
) -> Decision:
    """The outcome of attempt number `attempt` that ended at `now` with `status_code` (None: no answer)."""
    if status_code is not None and 200 <= status_code < 300:
        return Decision(DELIVERED)
    if status_code == 410:
        return Decision(FAILED, reason="receiver answered 410 Gone; not retrying")
    if attempt >= schedule.max_attempts:
        return Decision(FAILED, reason=f"gave up after {attempt} attempts")
    delay = backoff_seconds(attempt, schedule)
    asked = retry_after_seconds(retry_after, now)
    if asked is not None:
        # The receiver's wish wins, but never sooner than base nor later than the cap.
        delay = min(max(asked, schedule.base_seconds), schedule.cap_seconds)
    return Decision(RETRY, now + timedelta(seconds=delay))
