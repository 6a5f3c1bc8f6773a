"""Liveness policy: pure functions of the last heartbeat, the shutdown notice and `now`."""

from __future__ import annotations

from datetime import datetime, timedelta

ACTIVE = "active"
INACTIVE = "inactive"
OFFLINE = "offline"
HEALTH_STATUSES = (ACTIVE, INACTIVE, OFFLINE)


def health_status(
    last_heartbeat_at: datetime, shutdown_at: datetime | None, now: datetime, window_seconds: float
) -> str:
    """offline after a shutdown notice, active while heartbeats are recent, else inactive."""
    if shutdown_at is not None:
        return OFFLINE
    if now - last_heartbeat_at < timedelta(seconds=window_seconds):
        return ACTIVE
    return INACTIVE
