"""Cron schedules in the admin: edit the target, input, cron and time zone; see the next tick."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from executions import console_actions, schedules
from executions.admin_base import ConsoleAdmin
from executions.exceptions import ExecutionError
from executions.models import Schedule


@admin.register(Schedule)
class ScheduleAdmin(ConsoleAdmin):
    list_display = ["name", "target", "cron", "timezone", "enabled", "next_fire_at", "last_fired_at", "last_run"]
    list_filter = ["enabled", "misfire"]
    search_fields = ["name", "^target"]
    readonly_fields = ["next_fire_at", "last_fired_at", "last_run", "last_error", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "target", "input", "priority", "enabled"]}),
        ("When", {"fields": ["cron", "timezone", "misfire", "next_fire_at"]}),
        ("Last tick", {"fields": ["last_fired_at", "last_run", "last_error", "created_at", "updated_at"]}),
    ]
    actions = ["fire_now", "enable", "disable"]

    @admin.display(description="last execution")
    def last_run(self, schedule: Schedule) -> str:
        if not schedule.last_execution_id:
            return "-"
        url = reverse("admin:executions_execution_change", args=[schedule.last_execution_id])
        return format_html('<a href="{}">{}</a>', url, schedule.last_execution_id)

    def save_model(self, request: HttpRequest, schedule: Schedule, form, change: bool) -> None:
        # The next tick follows from what was saved (clean() has already refused a bad cron or zone).
        if not change or {"cron", "timezone", "enabled"} & set(form.changed_data):
            schedules.reschedule(schedule, timezone.now())
        super().save_model(request, schedule, form, change)

    @admin.action(description="Fire the selected schedules now (besides their ticks)")
    def fire_now(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        for schedule in queryset:
            try:
                execution = schedules.fire(schedule, timezone.now())
            except ExecutionError as error:
                self.message_user(request, f"{schedule.name}: {error}", messages.ERROR)
                continue
            console_actions.record(request.user, [schedule], f"Fired now as {execution.id}.")
            self.message_user(request, f"{schedule.name}: fired as {execution.id}.")

    @admin.action(description="Enable the selected schedules")
    def enable(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        self._set_enabled(request, queryset, True)

    @admin.action(description="Disable the selected schedules")
    def disable(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        self._set_enabled(request, queryset, False)

    def _set_enabled(self, request: HttpRequest, queryset: QuerySet[Schedule], enabled: bool) -> None:
        changed = [schedule for schedule in queryset if schedule.enabled != enabled]
        for schedule in changed:
            schedule.enabled = enabled
            schedules.reschedule(schedule, timezone.now())
            schedule.save(update_fields=["enabled", "next_fire_at", "updated_at"])
        console_actions.record(request.user, changed, "Enabled." if enabled else "Disabled.")
        self.message_user(request, f"{len(changed)} schedule(s) {'enabled' if enabled else 'disabled'}.")
