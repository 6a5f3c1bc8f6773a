"""Staff views of executions: list, filters, the detail with input, result, error and trace."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Case, QuerySet, When
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from executions import approvals, steering
from executions.exceptions import ExecutionError, InvalidTransition
from executions.memory_admin import checkpoints_table  # also registers MemoryEntryAdmin
from executions.models import ACTIVE, AgentNotice, Approval, Execution, ExecutionEvent, TraceEntry
from nodes import policy

TRACE_ROWS = 500


def pretty(value: Any) -> str:
    """Indented JSON in a <pre>, escaped (agents and clients wrote it)."""
    return format_html(
        "<pre style='white-space:pre-wrap;max-height:30em;overflow:auto'>{}</pre>",
        json.dumps(value, indent=2, ensure_ascii=False),
    )


def _age(delta_seconds: float) -> str:
    if delta_seconds < 120:
        return f"{delta_seconds:.0f} s"
    if delta_seconds < 7200:
        return f"{delta_seconds / 60:.0f} min"
    return f"{delta_seconds / 3600:.1f} h"


@admin.register(Execution)
class ExecutionAdmin(admin.ModelAdmin):
    list_display = ["id", "status", "target_display", "attempt", "age", "duration", "run_id", "webhook_registered"]
    list_filter = ["status", "target_type", "node_id", "webhook_registered"]
    search_fields = ["=id", "=run_id", "=parent_execution_id", "target_name", "node_id"]
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

    @admin.display(description="notices to the agent")
    def agent_notices(self, obj: Execution) -> str:
        rows = AgentNotice.objects.filter(execution_id=obj.id).order_by("created_at")
        if not rows:
            return "(none)"
        return format_html_join(
            "\n", "<div>{} to {}/{}: {} after {} attempt(s) {}</div>",
            ((n.kind, n.node_id, n.instance_id, n.status, n.attempts, n.outcome) for n in rows),
        )  # fmt: skip

    @admin.display(description="target", ordering="target_name")
    def target_display(self, obj: Execution) -> str:
        return obj.target

    @admin.display(description="age", ordering="created_at")
    def age(self, obj: Execution) -> str:
        return _age((timezone.now() - obj.created_at).total_seconds())

    @admin.display(description="duration", ordering="duration_ms")
    def duration(self, obj: Execution) -> str:
        return "" if obj.duration_ms is None else _age(obj.duration_ms / 1000)

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

    @admin.display(description="trace (log lines, steps, notes)")
    def trace(self, obj: Execution) -> str:
        rows = TraceEntry.objects.filter(execution_id=obj.id).order_by("id")[:TRACE_ROWS]
        return format_html(
            "<table><tr><th>time</th><th>kind</th><th>level</th><th>message</th></tr>{}</table>",
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                             ((t.created_at, t.kind, t.level, t.message) for t in rows)),
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
        self.message_user(request, f"Cancelled {len(cancelled)} execution(s).", messages.SUCCESS)

    @admin.action(description="Restart selected executions (same input, new run)")
    def restart_executions(self, request, queryset: QuerySet[Execution]) -> None:
        now, started = timezone.now(), []
        for execution in queryset:
            try:
                started.append(steering.restart(execution.id, {}, now, policy.STAFF).id)
            except ExecutionError as exc:
                self.message_user(request, f"{execution.id} was not restarted: {exc}", messages.WARNING)
        if started:
            self.message_user(
                request, f"Started {len(started)} execution(s): {', '.join(started[:10])}", messages.SUCCESS
            )

    @admin.action(description="Re-queue selected finished executions (same ids, new attempts)")
    def requeue_executions(self, request, queryset: QuerySet[Execution]) -> None:
        now, done = timezone.now(), 0
        for execution in queryset.exclude(status__in=ACTIVE):
            try:
                execution.reset_for_retry(now)
                done += 1
            except InvalidTransition:
                pass
        self.message_user(request, f"Re-queued {done} execution(s).", messages.SUCCESS)


@admin.register(ExecutionEvent)
class ExecutionEventAdmin(admin.ModelAdmin):
    list_display = ["id", "created_at", "type", "status", "execution_id", "target"]
    list_filter = ["type", "status"]
    search_fields = ["=execution_id", "=run_id"]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(TraceEntry)
class TraceEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "level", "execution_id", "message"]
    list_filter = ["kind", "level"]
    search_fields = ["=execution_id"]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class DecisionForm(forms.ModelForm):
    decision = forms.ChoiceField(
        choices=[
            ("", "(undecided)"),
            *[(s.value, s.label) for s in Approval.Status if s not in ("pending", "expired")],
        ],
        required=False,
        help_text="Saving with a decision resumes the execution and tells the paused reasoner.",
    )

    class Meta:
        model = Approval
        fields = ["feedback"]


@admin.register(Approval)
class ApprovalAdmin(admin.ModelAdmin):
    """The Approvals inbox: pending first; decide on the change page (with feedback) or in bulk."""

    form = DecisionForm
    list_display = [
        "approval_request_id",
        "status",
        "execution_link",
        "run",
        "request_link",
        "age",
        "expires",
        "decided",
    ]
    list_filter = ["status"]
    search_fields = ["approval_request_id", "=execution__id", "=execution__run_id"]
    actions = ["approve_selected", "reject_selected"]
    info = ["approval_request_id", "status", "execution_link", "run", "request_link", "age", "expires", "callback_url",
            "decided", "response"]  # fmt: skip

    def get_queryset(self, request):
        pending_first = Case(When(status=Approval.Status.PENDING, then=0), default=1)
        return super().get_queryset(request).select_related("execution").order_by(pending_first, "-requested_at")

    def get_fields(self, request, obj=None):
        pending = obj is not None and obj.status == Approval.Status.PENDING
        return [*self.info, "decision", "feedback"] if pending else [*self.info, "feedback"]

    def get_readonly_fields(self, request, obj=None):
        pending = obj is not None and obj.status == Approval.Status.PENDING
        return self.info if pending else [*self.info, "feedback"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="execution")
    def execution_link(self, obj: Approval) -> str:
        url = reverse("admin:executions_execution_change", args=[obj.execution_id])
        return format_html('<a href="{}">{}</a> ({})', url, obj.execution_id, obj.execution.target)

    @admin.display(description="run")
    def run(self, obj: Approval) -> str:
        return obj.execution.run_id

    @admin.display(description="request")
    def request_link(self, obj: Approval) -> str:
        return (
            format_html('<a href="{}" rel="noopener noreferrer">{}</a>', obj.request_url, obj.request_url)
            if obj.request_url
            else "-"
        )

    @admin.display(description="age", ordering="requested_at")
    def age(self, obj: Approval) -> str:
        return _age((timezone.now() - obj.requested_at).total_seconds())

    @admin.display(description="expires", ordering="expires_at")
    def expires(self, obj: Approval) -> str:
        left = (obj.expires_at - timezone.now()).total_seconds()
        return f"in {_age(left)}" if left > 0 else "expired"

    @admin.display(description="decided")
    def decided(self, obj: Approval) -> str:
        return f"{obj.decided_by} at {obj.decided_at:%Y-%m-%d %H:%M:%S}" if obj.decided_at else "-"

    def save_model(self, request, obj: Approval, form, change) -> None:
        # Never a plain save: a decision is a transition of the approval and of its execution.
        decision = form.cleaned_data.get("decision")
        if decision and self._decide(request, obj, decision, form.cleaned_data.get("feedback") or ""):
            obj.refresh_from_db()  # the confirmation names the decision, not "pending"

    def _decide(self, request, obj: Approval, decision: str, feedback: str) -> bool:
        by = f"staff user '{request.user}' in the admin"
        try:
            approvals.decide(obj.execution_id, decision, feedback, None, by, timezone.now(), obj.approval_request_id)
        except ExecutionError as exc:
            self.message_user(request, f"{obj.approval_request_id}: {exc}", messages.ERROR)
            return False
        return True

    @admin.action(description="Approve selected")
    def approve_selected(self, request, queryset) -> None:
        done = sum(self._decide(request, obj, "approved", "") for obj in queryset.filter(status="pending"))
        self.message_user(request, f"Approved {done}.", messages.SUCCESS)

    @admin.action(description="Reject selected")
    def reject_selected(self, request, queryset) -> None:
        done = sum(self._decide(request, obj, "rejected", "") for obj in queryset.filter(status="pending"))
        self.message_user(request, f"Rejected {done}.", messages.SUCCESS)
