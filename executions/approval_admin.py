"""The Approvals inbox: pending first; decide on the change page (with feedback) or in bulk."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Case, When
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from executions import approvals, console_actions, overview
from executions.admin_base import ConsoleAdmin
from executions.exceptions import ExecutionError
from executions.models import Approval


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
class ApprovalAdmin(ConsoleAdmin):
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
    search_fields = ["^approval_request_id", "^execution__id", "^execution__run_id"]
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
        return _age_text((timezone.now() - obj.requested_at).total_seconds())

    @admin.display(description="expires", ordering="expires_at")
    def expires(self, obj: Approval) -> str:
        left = (obj.expires_at - timezone.now()).total_seconds()
        return f"in {_age_text(left)}" if left > 0 else "expired"

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
        console_actions.record(request.user, [obj.execution], f"Approval {obj.approval_request_id}: {decision}.")
        return True

    @admin.action(description="Approve selected")
    def approve_selected(self, request, queryset) -> None:
        done = sum(self._decide(request, obj, "approved", "") for obj in queryset.filter(status="pending"))
        self.message_user(request, f"Approved {done}.", messages.SUCCESS)

    @admin.action(description="Reject selected")
    def reject_selected(self, request, queryset) -> None:
        done = sum(self._decide(request, obj, "rejected", "") for obj in queryset.filter(status="pending"))
        self.message_user(request, f"Rejected {done}.", messages.SUCCESS)


def _age_text(delta_seconds: float) -> str:
    return overview.duration_text(int(delta_seconds * 1000))
