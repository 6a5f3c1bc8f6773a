"""The staff console: server-rendered pages that the event stream keeps current in the browser."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.paginator import Paginator
from django.db.models import Max
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from executions import console_actions, lineage, listing, memory, overview, reports, timing
from executions.exceptions import ExecutionError
from executions.models import Execution, ExecutionEvent, Status, TraceEntry
from nodes.models import Node
from webhooks.exceptions import WebhookError
from webhooks.services import attempts_for

TRACE_PAGE = 100
# Minimum levels of the trace filter; a level the SDK invents counts as info.
TRACE_LEVELS = {
    "all": None,
    "info": ("debug", "trace"),
    "warning": ("warning", "warn", "error", "critical", "fatal", "exception"),
    "error": ("error", "critical", "fatal", "exception"),
}


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
    """Executions newest first, filtered, a page at a time; rows change (and new ones appear) live."""
    stream_from = newest_event_id()
    now = timezone.now()
    filters = listing.Filters.from_query(request.GET)
    page = listing.page(filters.apply(Execution.objects.all(), now), request.GET.get("before", ""),
                        request.GET.get("after", ""))  # fmt: skip
    rows = [(row, timing.elapsed_ms(row.status, row.started_at, row.duration_ms, now)) for row in page.rows]
    context = {
        "rows": [(row, overview.duration_text(ms)) for row, ms in rows],
        "page": page,
        "filters": filters,
        "newer_query": filters.query(after=page.newer) if page.newer else "",
        "older_query": filters.query(before=page.older) if page.older else "",
        "first_query": filters.query(),
        "statuses": Status.choices,
        "spans": listing.SINCE,
        "node_ids": Node.objects.order_by("id").values_list("id", flat=True)[:500],
        "section": "executions",
        "stream_from": stream_from,
    }
    return render(request, "dashboard/executions.html", context)


def trace(request: HttpRequest, execution_id: str) -> tuple[Any, str]:
    """A page of the execution's trace at or above the chosen level (debug hidden unless asked)."""
    level = request.GET.get("level", "info")
    level = level if level in TRACE_LEVELS else "info"
    rows = TraceEntry.objects.filter(execution_id=execution_id).order_by("id")
    if level == "info":
        rows = rows.exclude(level__in=TRACE_LEVELS["info"])
    elif level != "all":
        rows = rows.filter(level__in=TRACE_LEVELS[level])
    # A count per page view is fine here: one execution's trace is thousands of rows, not millions.
    return Paginator(rows, TRACE_PAGE).get_page(request.GET.get("trace_page")), level


@staff_member_required
def execution(request: HttpRequest, execution_id: str) -> HttpResponse:
    """One execution: header, actions, lineage, timeline, paged trace, checkpoints, webhook attempts."""
    stream_from = newest_event_id()
    now = timezone.now()
    record = get_object_or_404(Execution, pk=execution_id)
    trace_page, level = trace(request, record.id)
    context = {
        "execution": record,
        "duration": overview.duration_text(
            timing.elapsed_ms(record.status, record.started_at, record.duration_ms, now)
        ),
        "actions": console_actions.available(record),
        "ancestors": lineage.ancestors(record),
        "descendants": lineage.descendants(record),
        "timeline": [
            (event, json.dumps(event.data, sort_keys=True) if event.data else "")
            for event in ExecutionEvent.objects.filter(execution_id=record.id).order_by("id")
        ],
        "trace_page": trace_page,
        "trace": [(entry, pretty(entry.data) if entry.data else "") for entry in trace_page],
        "trace_level": level,
        "trace_levels": list(TRACE_LEVELS),
        "memory": memory.checkpoints_for_run(record.run_id),
        "attempts": attempts_for([record.id]).get(record.id, []),
        "input_json": pretty(record.input),
        "result_json": pretty(record.result) if record.result is not None else "",
        "context_json": pretty(record.context) if record.context else "",
        "section": "executions",
        "stream_from": stream_from,
    }
    return render(request, "dashboard/execution.html", context)


@require_POST
@staff_member_required
def execution_action(request: HttpRequest, execution_id: str, action: str) -> HttpResponse:
    """A button of the execution page (or the admin's): do it, log it, say how it went, go back."""
    record = get_object_or_404(Execution, pk=execution_id)
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
        back = ""
    back = back or f"/dashboard/executions/{record.id}/"
    if action not in console_actions.ACTIONS:
        messages.error(request, f"Unknown action '{action}'.")
        return HttpResponseRedirect(back)
    place = "the admin" if back.startswith("/admin/") else "the dashboard"
    actor = console_actions.Actor(request.user, place)
    try:
        messages.success(request, console_actions.perform(action, record, actor, timezone.now()))
    except (ExecutionError, WebhookError) as error:
        messages.error(request, f"{action}: {error}")
    return HttpResponseRedirect(back)


@staff_member_required
def nodes(request: HttpRequest) -> HttpResponse:
    """Every node: its instances and their liveness, what it serves, its load and recent failures."""
    now = timezone.now()
    window = settings.AGENTFIELD_NODE_LIVENESS_SECONDS
    registered = list(Node.objects.prefetch_related("instances").order_by("id"))
    loads = reports.node_loads(now)
    failures = reports.recent_failures(now, [node.id for node in registered])
    rows = [
        {
            "node": node,
            "health": node.health_status(now, window),
            "age": overview.age_text(node.last_heartbeat_at, now),
            "instances": [
                (i, i.health_status(now, window), overview.age_text(i.last_heartbeat_at, now))
                for i in node.instances.all()
            ],  # fmt: skip
            "load": loads.get(node.id, reports.NodeLoad()),
            "failures": failures.get(node.id, []),
        }
        for node in registered
    ]
    return render(request, "dashboard/nodes.html", {"nodes": rows, "section": "nodes"})


@staff_member_required
def queue(request: HttpRequest) -> HttpResponse:
    """The overview: queue depth and oldest due age, throughput and failure rate, duration percentiles."""
    now = timezone.now()
    stream_from = newest_event_id()
    span_name = request.GET.get("span", "1h")
    span_name = span_name if span_name in overview.SPANS else "1h"
    span = overview.SPANS[span_name]
    depth = reports.depth(now)
    buckets = reports.throughput(span, now)
    judged = sum(b.succeeded + b.failed for b in buckets)
    context = {
        "counts": [(value, label, depth.by_status.get(value, 0)) for value, label in Status.choices],
        "total": sum(depth.by_status.values()),
        "depth": depth,
        "oldest_queued_age": overview.age_text(depth.oldest_due, now),
        "span": span,
        "span_name": span_name,
        "spans": overview.SPANS,
        "buckets": buckets,
        "failure_points": overview.failure_points(buckets),
        "finished": sum(b.finished for b in buckets),
        "failed": sum(b.failed for b in buckets),
        "failure_rate": f"{100 * sum(b.failed for b in buckets) / judged:.1f} %" if judged else "—",
        "peak": max(b.succeeded + b.failed for b in buckets),
        "durations": reports.durations(span, now),
        "chart": {"width": overview.CHART_WIDTH, "height": overview.CHART_HEIGHT},
        "section": "queue",
        "stream_from": stream_from,
    }
    return render(request, "dashboard/queue.html", context)
