"""Staff views of executions: list, filters, the detail with input, result, error and trace."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from executions import (
    approval_admin,  # noqa: F401 - registers ApprovalAdmin
    console_actions,
    overview,
    schedule_admin,  # noqa: F401 - registers ScheduleAdmin
    steering,
    timing,
)
from executions.admin_base import ConsoleAdmin
from executions.exceptions import ExecutionError
from executions.memory_admin import checkpoints_table  # also registers MemoryEntryAdmin
from executions.models import ACTIVE, AgentNotice, Execution, ExecutionEvent, TraceEntry
from nodes import policy

TRACE_ROWS = 50  # the newest, without debug lines; the dashboard pages through the whole trace


def pretty(value: Any) -> str:
    """Indented JSON in a <pre>, escaped (agents and clients wrote it)."""
    return format_html(
        "<pre style='white-space:pre-wrap;max-height:30em;overflow:auto'>{}</pre>",
        json.dumps(value, indent=2, ensure_ascii=False),
    )


def _age(delta_seconds: float) -> str:
    return overview.duration_text(int(delta_seconds * 1000))


@admin.register(Execution)
class ExecutionAdmin(ConsoleAdmin):
    # Fits a 1400 px screen with full ids (webhook_registered is a filter; the attempt rides with the status).
    list_display = ["id", "status_attempt", "target_display", "age", "duration", "run_id"]
    list_filter = ["status", "target_type", "node_id", "webhook_registered"]
    # "^": the start of an id is enough (what an operator copies from a log line or a truncated column).
    search_fields = ["^id", "^run_id", "^parent_execution_id", "target_name", "^node_id"]
    change_form_template = "admin/executions/execution/change_form.html"
    date_hierarchy = "created_at"
    list_per_page = 100
    show_full_result_count = False
    actions = ["cancel_executions", "restart_executions", "requeue_executions"]
    readonly_fields = [
        "id", "status", "target_display", "target_type", "run_id", "parent_execution_id", "restarted_from",
        "session_id", "actor_id", "attempt", "max_attempts", "created_at", "started_at", "completed_at", "duration", "run_at",
        "node_instance_id", "claimed_by", "idempotency_key", "webhook_registered", "error",
        "input_pretty", "result_pretty", "error_details_pretty", "timeline", "trace", "checkpoints", "agent_notices",
    ]  # fmt: skip
    fieldsets = [
        (None, {"fields": ["id", "status", "target_display", "target_type", "run_id", "parent_execution_id", "restarted_from", "error"]}),
        ("Timing", {"fields": ["created_at", "started_at", "completed_at", "duration", "attempt", "max_attempts", "run_at"]}),
        ("Payload", {"fields": ["input_pretty", "result_pretty", "error_details_pretty"]}),
        ("Timeline and trace", {"fields": ["timeline", "trace", "checkpoints"]}),
        ("Dispatch", {"classes": ["collapse"], "fields": ["agent_notices", "node_instance_id", "claimed_by", "idempotency_key", "session_id", "actor_id", "webhook_registered"]}),
    ]  # fmt: skip

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # The buttons of this one execution (cancel, re-queue, ...), posted to the console's action view.
        context["execution_actions"] = console_actions.available(obj) if obj is not None else []
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description="notices to the agent")
    def agent_notices(self, obj: Execution) -> str:
        rows = AgentNotice.objects.filter(execution_id=obj.id).order_by("created_at")
        if not rows:
            return "(none)"
        return format_html_join(
            "\n", "<div>{} to {}/{}: {} after {} attempt(s) {}</div>",
            ((n.kind, n.node_id, n.instance_id, n.status, n.attempts, n.outcome) for n in rows),
        )  # fmt: skip

    @admin.display(description="status (attempt)", ordering="status")
    def status_attempt(self, obj: Execution) -> str:
        return f"{obj.get_status_display()} ({obj.attempt})"

    @admin.display(description="target", ordering="target_name")
    def target_display(self, obj: Execution) -> str:
        return obj.target

    @admin.display(description="age", ordering="created_at")
    def age(self, obj: Execution) -> str:
        return _age((timezone.now() - obj.created_at).total_seconds())

    @admin.display(description="duration", ordering="duration_ms")
    def duration(self, obj: Execution) -> str:
        elapsed = timing.elapsed_ms(obj.status, obj.started_at, obj.duration_ms, timezone.now())
        if elapsed is None:
            return ""
        return overview.duration_text(elapsed) + ("" if obj.duration_ms is not None or obj.is_terminal else " so far")

    @admin.display(description="input")
    def input_pretty(self, obj: Execution) -> str:
        return pretty(obj.input)

    @admin.display(description="result")
    def result_pretty(self, obj: Execution) -> str:
        return pretty(obj.result)

    @admin.display(description="error details")
    def error_details_pretty(self, obj: Execution) -> str:
        return pretty(obj.error_details)

    @admin.display(description="timeline")
    def timeline(self, obj: Execution) -> str:
        rows = ExecutionEvent.objects.filter(execution_id=obj.id).order_by("id")
        return format_html(
            "<table><tr><th>id</th><th>time</th><th>event</th><th>status</th><th>data</th></tr>{}</table>",
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                             ((e.id, e.created_at, e.type, e.status, json.dumps(e.data)) for e in rows)),
        )  # fmt: skip

    @admin.display(description="trace (the newest log lines, steps, notes)")
    def trace(self, obj: Execution) -> str:
        rows = TraceEntry.objects.filter(execution_id=obj.id).exclude(level="debug").order_by("-id")[:TRACE_ROWS]
        return format_html(
            '<p><a href="{}#trace">The whole trace, paged and filtered by level, in the dashboard</a></p>'
            "<table><tr><th>time</th><th>kind</th><th>level</th><th>message</th></tr>{}</table>",
            reverse("dashboard-execution", args=[obj.id]),
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                             ((t.created_at, t.kind, t.level, t.message[:2000]) for t in reversed(rows))),
        )  # fmt: skip

    @admin.display(description="checkpoints (memory of the run)")
    def checkpoints(self, obj: Execution) -> str:
        return checkpoints_table(obj.run_id)

    @admin.action(description="Cancel selected executions and their descendants (agents are told)")
    def cancel_executions(self, request, queryset: QuerySet[Execution]) -> None:
        # Select all that match a filter (e.g. status=running, node=...) to cancel in bulk.
        roots = list(queryset.filter(status__in=ACTIVE).values_list("id", flat=True))
        cancelled = steering.cancel_trees(
            roots, timezone.now(), f"cancelled by staff user '{request.user}' in the admin"
        )
        console_actions.record(request.user, Execution.objects.filter(id__in=cancelled), "Cancelled (the admin).")
        self.message_user(request, f"Cancelled {len(cancelled)} execution(s).", messages.SUCCESS)

    @admin.action(description="Restart selected executions (same input, new run)")
    def restart_executions(self, request, queryset: QuerySet[Execution]) -> None:
        now, started = timezone.now(), []
        for execution in queryset:
            try:
                started.append(steering.restart(execution.id, {}, now, policy.STAFF).id)
            except ExecutionError as exc:
                self.message_user(request, f"{execution.id} was not restarted: {exc}", messages.WARNING)
            else:
                console_actions.record(request.user, [execution], f"Restarted as {started[-1]} (the admin).")
        if started:
            self.message_user(
                request, f"Started {len(started)} execution(s): {', '.join(started[:10])}", messages.SUCCESS
            )

    @admin.action(description="Re-queue selected finished executions (same ids, new attempts)")
    def requeue_executions(self, request, queryset: QuerySet[Execution]) -> None:
        actor, done = console_actions.Actor(request.user, "the admin"), 0
        for execution in queryset.exclude(status__in=ACTIVE):
            try:
                console_actions.perform("requeue", execution, actor, timezone.now())
                done += 1
            except ExecutionError:
                pass  # it was re-queued (or restarted) by someone else meanwhile
        self.message_user(request, f"Re-queued {done} execution(s).", messages.SUCCESS)


@admin.register(ExecutionEvent)
class ExecutionEventAdmin(ConsoleAdmin):
    list_display = ["id", "created_at", "type", "status", "execution_id", "target"]
    list_filter = ["type", "status"]
    search_fields = ["^execution_id", "^run_id"]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(TraceEntry)
class TraceEntryAdmin(ConsoleAdmin):
    list_display = ["created_at", "kind", "level", "execution_id", "message"]
    list_filter = ["kind", "level"]
    search_fields = ["^execution_id"]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
