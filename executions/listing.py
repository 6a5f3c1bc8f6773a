"""The console's execution list: filters read from the query string, and keyset pages.

Keyset paging (created_at, id), not OFFSET or a COUNT: the newest-first index serves every page
at the same cost however deep the operator pages, and no page is shifted by rows arriving live.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime

from executions.models import Execution, Status

PAGE_SIZE = 50
SINCE = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
COLUMNS = ("id", "run_id", "node_id", "target_name", "status", "attempt", "max_attempts", "progress",
           "created_at", "started_at", "updated_at", "duration_ms")  # fmt: skip


@dataclass(frozen=True)
class Filters:
    """What the operator asked for; every field is optional (empty: no filter)."""

    status: str = ""
    node: str = ""
    target: str = ""
    q: str = ""
    since: str = ""

    @classmethod
    def from_query(cls, params: Any) -> Filters:
        """Unknown statuses and ranges are ignored rather than refused: this is a page, not an API."""
        status = params.get("status", "")
        since = params.get("since", "")
        return cls(
            status=status if status in Status.values else "",
            node=params.get("node", "").strip()[:255],
            target=params.get("target", "").strip()[:255],
            q=params.get("q", "").strip()[:255],
            since=since if since in SINCE else "",
        )

    def apply(self, rows: QuerySet[Execution], now: datetime) -> QuerySet[Execution]:
        if self.status:
            rows = rows.filter(status=self.status)
        if self.node:
            rows = rows.filter(node_id=self.node)
        if self.target:
            node, dot, name = self.target.rpartition(".")
            rows = rows.filter(node_id=node, target_name=name) if dot else rows.filter(target_name=name)
        if self.q:
            # A prefix of an execution id or of a run id: what an operator copies from a log line.
            rows = rows.filter(Q(id__startswith=self.q) | Q(run_id__startswith=self.q))
        if self.since:
            rows = rows.filter(created_at__gte=now - SINCE[self.since])
        return rows

    def query(self, **extra: str) -> str:
        """The query string of these filters (plus `extra`), for links that keep them."""
        values = {name: value for name, value in vars(self).items() if value} | extra
        return urlencode(values)


@dataclass(frozen=True)
class Page:
    """One page of executions, newest first, with the cursors of its neighbours (None: no more)."""

    rows: list[Execution]
    newer: str | None = None
    older: str | None = None
    first: bool = True


def cursor_of(execution: Execution) -> str:
    return f"{execution.created_at.isoformat()}|{execution.id}"


def parse_cursor(raw: str) -> tuple[datetime, str] | None:
    moment, _, execution_id = raw.partition("|")
    try:
        parsed = parse_datetime(moment)
    except ValueError:
        return None
    return (parsed, execution_id) if parsed and parsed.tzinfo and execution_id else None


def page(rows: QuerySet[Execution], before: str = "", after: str = "", size: int = PAGE_SIZE) -> Page:
    """The page older than `before`, or newer than `after`, or the newest one."""
    rows = rows.only(*COLUMNS)
    if (mark := parse_cursor(after)) is not None:
        newer_rows = Q(created_at__gt=mark[0]) | Q(created_at=mark[0], id__gt=mark[1])
        found = list(rows.filter(newer_rows).order_by("created_at", "id")[: size + 1])
        more_newer = len(found) > size
        found = found[:size][::-1]
        if not found:
            return page(rows, size=size)  # nothing newer any more: the newest page
        return Page(found, newer=cursor_of(found[0]) if more_newer else None,
                    older=cursor_of(found[-1]), first=not more_newer)  # fmt: skip
    if (mark := parse_cursor(before)) is not None:
        rows = rows.filter(Q(created_at__lt=mark[0]) | Q(created_at=mark[0], id__lt=mark[1]))
    found = list(rows.order_by("-created_at", "-id")[: size + 1])
    more_older = len(found) > size
    found = found[:size]
    first = mark is None
    return Page(found, newer=cursor_of(found[0]) if found and not first else None,
                older=cursor_of(found[-1]) if more_older else None, first=first)  # fmt: skip
