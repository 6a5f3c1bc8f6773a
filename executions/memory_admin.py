"""Admin of scoped memory: browse checkpoints by scope, see their size, read them as pretty JSON."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html

from executions import memory
from executions.models import MemoryEntry

PRETTY_LIMIT_CHARS = 200_000


@admin.register(MemoryEntry)
class MemoryEntryAdmin(admin.ModelAdmin):
    """View-only (entries are the agents' checkpoints); deleting one resets that key."""

    list_display = ("scope", "scope_id", "key", "size", "updated_at")
    list_filter = ("scope",)
    search_fields = ("key", "scope_id")
    ordering = ("-updated_at",)
    fields = ("scope", "scope_id", "key", "size", "created_at", "updated_at", "pretty_data")
    readonly_fields = fields
    list_per_page = 50
    show_full_result_count = False

    def get_queryset(self, request):
        entries = memory.with_size(super().get_queryset(request))
        # The changelist never needs the (possibly megabyte) values themselves.
        return entries.defer("data") if request.resolver_match.url_name.endswith("changelist") else entries

    @admin.display(description="size", ordering="size_bytes")
    def size(self, entry: MemoryEntry) -> str:
        return human_size(entry.size_bytes or 0)

    @admin.display(description="data")
    def pretty_data(self, entry: MemoryEntry) -> str:
        text = json.dumps(entry.data, indent=2, ensure_ascii=False, sort_keys=False)
        if len(text) > PRETTY_LIMIT_CHARS:
            text = text[:PRETTY_LIMIT_CHARS] + f"\n… ({len(text) - PRETTY_LIMIT_CHARS:,} more characters)"
        return format_html('<pre style="max-height:40em;overflow:auto;white-space:pre-wrap">{}</pre>', text)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


def human_size(size: int) -> str:
    """`812 B`, `74.9 KB`, `1.2 MB` (stored size, after PostgreSQL's compression)."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"
