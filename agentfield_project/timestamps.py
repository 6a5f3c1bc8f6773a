"""The one format of a moment in API output (JSON bodies, SSE frames, webhook payloads).

RFC 3339 in UTC with milliseconds and a `Z`, e.g. `2026-11-23T12:00:01.250Z`: the form the status
response has always had (CONTRACT.md: "Timestamps are RFC 3339 UTC"). Every app formats through
`rfc3339`; it lives in the project package because nodes, executions and webhooks all need it.
"""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(moment: datetime | None) -> str | None:
    """`moment` in UTC as `YYYY-MM-DDTHH:MM:SS.mmmZ` (a naive moment is taken as UTC); None stays None."""
    if moment is None:
        return None
    utc = moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo is not None else moment
    return utc.isoformat(timespec="milliseconds") + "Z"  # truncated, never rounded up into the next second
