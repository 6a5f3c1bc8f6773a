"""Admin: webhooks (secret masked, read-only), deliveries with their attempts, and "Redeliver"."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from webhooks import crypto, queue
from webhooks.exceptions import DeliveryInFlight
from webhooks.models import Delivery, DeliveryAttempt, Webhook

MASK = "\u2022" * 8


def mask_secret(secret: str) -> str:
    """A hint that a secret is set: only the last 4 characters, and only of a secret long enough."""
    if not secret:
        return "(none)"
    return MASK + secret[-4:] if len(secret) >= 16 else MASK


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the system writes: staff with the view permission see "View ...", with no Save button."""

    class Media:
        css = {"all": ["dashboard/admin.css"]}  # compact id columns

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Webhook)
class WebhookAdmin(ReadOnlyAdmin):
    list_display = ("execution_id", "url", "secret_hint", "created_at")
    search_fields = ("^execution_id", "url")
    fields = ("execution_id", "url", "secret_hint", "header_names", "created_at")
    readonly_fields = fields

    @admin.display(description="secret")
    def secret_hint(self, webhook: Webhook) -> str:
        try:
            return mask_secret(crypto.decrypt(webhook.secret))
        except crypto.SecretDecryptionError:
            return "(cannot be decrypted with AGENTFIELD_SECRET_KEYS)"

    @admin.display(description="extra headers")
    def header_names(self, webhook: Webhook) -> str:
        # Values may be credentials (Authorization, API keys): show only the names.
        try:
            return ", ".join(sorted(webhook.headers)) or "(none)"
        except crypto.SecretDecryptionError:
            return "(cannot be decrypted with AGENTFIELD_SECRET_KEYS)"


class AttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ("number", "started_at", "duration_ms", "status_code", "error_class", "error", "response_body")
    readonly_fields = fields
    ordering = ("started_at", "id")

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ("id", "execution_id", "event", "status", "attempt_count", "next_attempt_at", "last_status_code")
    list_filter = ("status", "event")
    search_fields = ("^execution_id",)
    date_hierarchy = "created_at"
    actions = ("redeliver",)
    inlines = (AttemptInline,)
    fields = (
        "id",
        "execution_id",
        "url",
        "event",
        "status",
        "attempt_count",
        "max_attempts",
        "next_attempt_at",
        "claimed_by",
        "claimed_at",
        "lease_expires_at",
        "last_status_code",
        "last_error",
        "created_at",
        "completed_at",
        "payload",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Delivery]:
        return super().get_queryset(request).select_related("webhook")

    @admin.display(description="url")
    def url(self, delivery: Delivery) -> str:
        return delivery.webhook.url

    @admin.display(description="body")
    def payload(self, delivery: Delivery) -> str:
        return bytes(delivery.body).decode("utf-8", errors="replace")

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Delivery], search_term: str):
        # A delivery id is a uuid (no prefix search on it); a whole one pasted from a log finds its row.
        found, duplicates = super().get_search_results(request, queryset, search_term)
        try:
            found |= queryset.filter(id=uuid.UUID(search_term.strip()))
        except ValueError:
            pass
        return found, duplicates

    def has_redeliver_permission(self, request: HttpRequest) -> bool:
        # Redelivering sends data again: it takes the change permission, though no form edits a delivery.
        return request.user.has_perm("webhooks.change_delivery")

    @admin.action(description="Redeliver (new attempt series, same webhook-id)", permissions=["redeliver"])
    def redeliver(self, request: HttpRequest, deliveries: QuerySet[Delivery]) -> None:
        now = timezone.now()
        queued, busy = [], 0
        for delivery in deliveries:
            try:
                delivery.redeliver(now, settings.AGENTFIELD_WEBHOOK_MAX_ATTEMPTS)
                queued.append(delivery)
            except DeliveryInFlight:
                busy += 1
        if queued:
            queue.wake()
            LogEntry.objects.log_actions(request.user.pk, queued, CHANGE, "Redelivered (new attempt series).")
            self.message_user(request, f"{len(queued)} delivery(ies) queued again.", messages.SUCCESS)
        if busy:
            self.message_user(
                request, f"{busy} delivery(ies) are being sent right now; try again shortly.", messages.WARNING
            )


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(ReadOnlyAdmin):
    list_display = ("delivery", "number", "started_at", "status_code", "error_class", "duration_ms", "succeeded")
    list_filter = ("succeeded", "error_class")
    search_fields = ("^delivery__execution_id",)
    list_select_related = ("delivery",)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
