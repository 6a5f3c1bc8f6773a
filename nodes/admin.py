"""Django admin for the node registry: derived liveness, heartbeats and what each node serves."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html

from nodes import auth, liveness, ownership
from nodes.models import ApiKey, Node, NodeInstance

FIRST_KEY_WARNING = (
    "No API key exists yet, so the API is open. Creating this first key closes it at once: every "
    "agent and client without a key gets 401 from then on (heartbeats, memory, callbacks, executes){live}. "
    "Create the agents' and clients' keys too and give them AGENTFIELD_API_KEY before they need it."
)
JSON_FIELDS = ("reasoners", "skills", "communication_config", "features", "metadata")


class LivenessFilter(admin.SimpleListFilter):
    """Filter by derived health (active / inactive / offline), evaluated in SQL at request time."""

    title = "liveness"
    parameter_name = "liveness"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(status, status.capitalize()) for status in liveness.HEALTH_STATUSES]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Node]) -> QuerySet[Node]:
        if self.value() not in liveness.HEALTH_STATUSES:
            return queryset
        return queryset.with_health(self.value(), timezone.now(), settings.AGENTFIELD_NODE_LIVENESS_SECONDS)


def _pretty_json(value: object) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))


class InstanceInline(admin.TabularInline):
    """The processes serving the node, each with its own liveness (read-only: agents own them)."""

    model = NodeInstance
    extra = 0
    can_delete = False
    fields = ("instance_id", "base_url", "health", "lifecycle_status", "registered_at", "last_heartbeat_at",
              "shutdown_at")  # fmt: skip
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Node | None = None) -> bool:
        return False

    @admin.display(description="liveness")
    def health(self, instance: NodeInstance) -> str:
        return instance.health_status(timezone.now(), settings.AGENTFIELD_NODE_LIVENESS_SECONDS)


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    list_display = (
        "id", "health", "lifecycle_status", "last_heartbeat_at", "instance_id", "reasoner_list", "skill_list",
        "version", "base_url",
    )  # fmt: skip
    list_filter = (LivenessFilter, "lifecycle_status")
    search_fields = ("^id", "base_url")
    ordering = ("id",)
    readonly_fields = (
        "registered_at", "restarted_at", "last_heartbeat_at", "shutdown_at", "health",
        *(f"{name}_pretty" for name in JSON_FIELDS),
    )  # fmt: skip
    exclude = JSON_FIELDS
    inlines = (InstanceInline,)
    fieldsets = (
        (None, {"fields": ("id", "owner_key", "team_id", "base_url", "version", "deployment_type", "instance_id")}),
        ("Concurrency limits", {"fields": ("max_concurrency", "target_concurrency"),
                                "description": "In-flight executions (handed over, running or waiting) of this node, "
                                "and per reasoner or skill name, e.g. {\"summarize\": 2}. Work beyond a limit waits "
                                "in the queue. A registration that declares limits replaces these."}),
        ("Liveness", {"fields": ("health", "lifecycle_status", "registered_at", "restarted_at",
                                 "last_heartbeat_at", "shutdown_at")}),
        ("Registered data", {"fields": tuple(f"{name}_pretty" for name in JSON_FIELDS)}),
    )  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # nodes exist because an agent registered

    def get_readonly_fields(self, request: HttpRequest, obj: Node | None = None) -> tuple[str, ...]:
        # The agent owns its registration; staff may only bind the node to an agent key (or delete it).
        editable = {"owner_key", "max_concurrency", "target_concurrency"}
        names = [field.name for field in Node._meta.fields if field.name not in editable]
        return (*names, *self.readonly_fields)

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs: Any):
        if db_field.name == "owner_key":
            kwargs["queryset"] = ApiKey.objects.filter(role=ApiKey.Role.AGENT, revoked_at__isnull=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Node, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        ownership.forget(obj.id)

    @admin.display(description="liveness")
    def health(self, node: Node) -> str:
        if node.last_heartbeat_at is None:
            return "-"
        return node.health_status(timezone.now(), settings.AGENTFIELD_NODE_LIVENESS_SECONDS)

    @admin.display(description="reasoners")
    def reasoner_list(self, node: Node) -> str:
        return ", ".join(node.reasoner_ids())

    @admin.display(description="skills")
    def skill_list(self, node: Node) -> str:
        return ", ".join(node.skill_ids())

    @admin.display(description="reasoners")
    def reasoners_pretty(self, node: Node) -> str:
        return _pretty_json(node.reasoners)

    @admin.display(description="skills")
    def skills_pretty(self, node: Node) -> str:
        return _pretty_json(node.skills)

    @admin.display(description="communication config")
    def communication_config_pretty(self, node: Node) -> str:
        return _pretty_json(node.communication_config)

    @admin.display(description="features")
    def features_pretty(self, node: Node) -> str:
        return _pretty_json(node.features)

    @admin.display(description="metadata")
    def metadata_pretty(self, node: Node) -> str:
        return _pretty_json(node.metadata)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Create (the key is shown once, on the page that answers the form) and revoke API keys."""

    list_display = ("name", "role", "prefix", "active", "created_at", "last_used_at", "revoked_at")
    list_filter = ("role", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "^prefix")
    actions = ("revoke",)
    readonly_fields = ("prefix", "created_at", "last_used_at", "revoked_at")

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> tuple[str, ...]:
        editable = ("name", "role", "node_ids")  # the secret itself is never shown again nor changed
        return editable if obj is None else (*editable, *self.readonly_fields)

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None) -> HttpResponse:
        if request.method == "GET" and not ApiKey.objects.filter(revoked_at__isnull=True).exists():
            messages.warning(request, first_key_warning())
        return super().add_view(request, form_url, extra_context)

    @admin.display(boolean=True)
    def active(self, key: ApiKey) -> bool:
        return key.revoked_at is None

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if not change:
            # On the request, never on this ModelAdmin: one instance serves every concurrent request.
            request.agentfield_raw_key = auth.assign_new_key(obj)
        super().save_model(request, obj, form, change)
        auth.forget_keys()  # a new role applies in this process at once, in the others within the cache TTL

    def response_add(self, request: HttpRequest, obj: ApiKey, post_url_continue: str | None = None) -> HttpResponse:
        # Rendered straight into this response: the key never passes through the message cookie.
        context = {**self.admin_site.each_context(request), "key": obj, "raw_key": request.agentfield_raw_key,
                   "opts": self.opts, "title": "API key created"}  # fmt: skip
        return TemplateResponse(request, "admin/nodes/apikey/created.html", context)

    @admin.action(description="Revoke selected API keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoked = [key for key in queryset if auth.revoke_key(key)]
        # An action is no form save: Django records nothing in "Recent actions" unless we do.
        LogEntry.objects.log_actions(request.user.pk, revoked, CHANGE, "Revoked the API key.")
        self.message_user(request, f"Revoked {len(revoked)} API key(s).", messages.SUCCESS)


def first_key_warning() -> str:
    """What the add form says while no key exists: the first key locks out every keyless caller."""
    live = NodeInstance.objects.alive(timezone.now(), settings.AGENTFIELD_NODE_LIVENESS_SECONDS).count()
    return FIRST_KEY_WARNING.format(live=f"; {live} agent instance(s) are heart-beating right now" if live else "")
