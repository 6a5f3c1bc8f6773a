"""Django admin for the node registry: derived liveness, heartbeats and what each node serves."""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from nodes import liveness
from nodes.models import Node

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


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    list_display = (
        "id", "health", "lifecycle_status", "last_heartbeat_at", "instance_id", "reasoner_list", "skill_list",
        "version", "base_url",
    )  # fmt: skip
    list_filter = (LivenessFilter, "lifecycle_status")
    search_fields = ("id", "base_url")
    ordering = ("id",)
    readonly_fields = (
        "registered_at", "restarted_at", "last_heartbeat_at", "shutdown_at", "health",
        *(f"{name}_pretty" for name in JSON_FIELDS),
    )  # fmt: skip
    exclude = JSON_FIELDS
    fieldsets = (
        (None, {"fields": ("id", "team_id", "base_url", "version", "deployment_type", "instance_id")}),
        ("Liveness", {"fields": ("health", "lifecycle_status", "registered_at", "restarted_at",
                                 "last_heartbeat_at", "shutdown_at")}),
        ("Registered data", {"fields": tuple(f"{name}_pretty" for name in JSON_FIELDS)}),
    )  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # nodes exist because an agent registered

    def has_change_permission(self, request: HttpRequest, obj: Node | None = None) -> bool:
        return False  # the agent owns its registration; staff may view and delete

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
