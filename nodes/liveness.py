"""Liveness policy: pure functions of the last heartbeat, the shutdown notice and `now`.

This is the one definition of "is this node instance alive": heard from within the window (a
heartbeat strictly newer than `cutoff(now, window)`) and no shutdown notice. Everything else
derives from it: `NodeQuerySet.alive` and `with_health` filter on `cutoff()`, and the raw SQL of
executions/queue.py interpolates `HEARD_SQL` / `ALIVE_SQL` below (tests/nodes/test_liveness.py
holds the Python and the SQL to the same answers at the window's edge).
"""

from __future__ import annotations

from datetime import datetime, timedelta

ACTIVE = "active"
INACTIVE = "inactive"
OFFLINE = "offline"
HEALTH_STATUSES = (ACTIVE, INACTIVE, OFFLINE)

# The same rule for statements that cannot go through the ORM: `i` is the nodes_nodeinstance row
# and %(alive_after)s is `cutoff(now, window)`. A NULL heartbeat is never "heard from".
HEARD_SQL = "i.last_heartbeat_at > %(alive_after)s"
ALIVE_SQL = f"i.shutdown_at IS NULL AND {HEARD_SQL}"


def cutoff(now: datetime, window_seconds: float) -> datetime:
    """The moment a heartbeat must be newer than (strictly) for its sender to count as heard from."""
    return now - timedelta(seconds=window_seconds)


def heard_from(last_heartbeat_at: datetime | None, now: datetime, window_seconds: float) -> bool:
    """Whether the last heartbeat is within the window (exactly one window old is too old)."""
    return last_heartbeat_at is not None and last_heartbeat_at > cutoff(now, window_seconds)


def is_alive(
    last_heartbeat_at: datetime | None, shutdown_at: datetime | None, now: datetime, window_seconds: float
) -> bool:
    """Heard from within the window and not shut down."""
    return shutdown_at is None and heard_from(last_heartbeat_at, now, window_seconds)


def health_status(
    last_heartbeat_at: datetime | None, shutdown_at: datetime | None, now: datetime, window_seconds: float
) -> str:
    """offline after a shutdown notice, active while heartbeats are recent, else inactive."""
    if shutdown_at is not None:
        return OFFLINE
    return ACTIVE if heard_from(last_heartbeat_at, now, window_seconds) else INACTIVE
