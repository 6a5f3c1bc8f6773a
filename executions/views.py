"""The staff dashboard: server-rendered pages that the event stream keeps current in the browser."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.db.models import Count, Max, Min
from django.db.models.functions import TruncMinute
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from executions import overview
from executions.models import Execution, ExecutionEvent, MemoryEntry, Status, TraceEntry
from nodes.models import Node
from webhooks.services import attempts_for

LIST_LIMIT = 100


def newest_event_id() -> int:
    """Read before the page's data: the browser's stream resumes after it, so no change slips by."""
    return ExecutionEvent.objects.aggregate(newest=Max("id"))["newest"] or 0


def pretty(value: Any) -> str:
    """Indented JSON for a <pre> block (the template escapes it)."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def home(request: HttpRequest) -> HttpResponse:
    """`/`, the address `make run` prints: where to go from here (public; it names no data)."""
    return render(request, "landing.html")


@staff_member_required
def executions(request: HttpRequest) -> HttpResponse:
    """The newest executions, optionally of one status; rows change live from the stream."""
    stream_from = newest_event_id()
    rows = Execution.objects.only(
        "id", "run_id", "node_id", "target_name", "status", "attempt", "created_at", "updated_at", "duration_ms"
    )
    status = request.GET.get("status", "")
    if status in Status.values:
        rows = rows.filter(status=status)
    context = {"executions": rows[:LIST_LIMIT], "statuses": Status.choices, "status": status}
    context |= {"section": "executions", "stream_from": stream_from}
    return render(request, "dashboard/executions.html", context)


@staff_member_required
def execution(request: HttpRequest, execution_id: str) -> HttpResponse:
    """One execution: timeline, trace, its run's memory checkpoints, webhook attempts, input, result."""
    stream_from = newest_event_id()
    record = get_object_or_404(Execution, pk=execution_id)
    memory = MemoryEntry.objects.filter(scope=MemoryEntry.Scope.WORKFLOW, scope_id=record.run_id)
    context = {
        "execution": record,
        "timeline": [
            (event, json.dumps(event.data, sort_keys=True) if event.data else "")
            for event in ExecutionEvent.objects.filter(execution_id=record.id).order_by("id")
        ],
        "trace": [
            (entry, pretty(entry.data) if entry.data else "")
            for entry in TraceEntry.objects.filter(execution_id=record.id)
        ],
        "memory": [(entry, pretty(entry.data)) for entry in memory.order_by("key")],
        "attempts": attempts_for([record.id]).get(record.id, []),
        "input_json": pretty(record.input),
        "result_json": pretty(record.result) if record.result is not None else "",
        "context_json": pretty(record.context) if record.context else "",
        "section": "executions",
        "stream_from": stream_from,
    }
    return render(request, "dashboard/execution.html", context)


@staff_member_required
def nodes(request: HttpRequest) -> HttpResponse:
    """Every registered node with its liveness (the page re-reads liveness every few seconds)."""
    now = timezone.now()
    window = settings.AGENTFIELD_NODE_LIVENESS_SECONDS
    rows = [
        (node, node.health_status(now, window), overview.age_text(node.last_heartbeat_at, now))
        for node in Node.objects.all()
    ]
    return render(request, "dashboard/nodes.html", {"nodes": rows, "section": "nodes"})


@staff_member_required
def queue(request: HttpRequest) -> HttpResponse:
    """Counts by status, the age of the oldest queued execution, and the last hour's throughput."""
    now = timezone.now()
    stream_from = newest_event_id()
    counts = dict(Execution.objects.values_list("status").annotate(n=Count("id")).order_by())
    oldest = Execution.objects.filter(status=Status.QUEUED).aggregate(oldest=Min("created_at"))["oldest"]
    finished = (
        Execution.objects.filter(completed_at__gte=overview.minute_floor(now) - timedelta(minutes=overview.MINUTES - 1))
        .annotate(minute=TruncMinute("completed_at"))
        .values_list("minute")
        .annotate(n=Count("id"))
        .order_by()
    )
    bars = overview.throughput_bars(dict(finished), now)
    context = {
        "counts": [(value, label, counts.get(value, 0)) for value, label in Status.choices],
        "total": sum(counts.values()),
        "oldest_queued_age": overview.age_text(oldest, now),
        "bars": bars,
        "finished_last_hour": sum(bar.finished for bar in bars),
        "peak": max(bar.finished for bar in bars),
        "chart": {"width": overview.CHART_WIDTH, "height": overview.CHART_HEIGHT},
        "section": "queue",
        "stream_from": stream_from,
    }
    return render(request, "dashboard/queue.html", context)
