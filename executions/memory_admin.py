"""Admin of scoped memory: browse checkpoints by scope, see their size, read them as pretty JSON."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from executions import memory
from executions.admin_base import ConsoleAdmin
from executions.models import MemoryEntry

PRETTY_LIMIT_CHARS = 200_000


@admin.register(MemoryEntry)
class MemoryEntryAdmin(ConsoleAdmin):
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


def checkpoints_table(run_id: str) -> str:
    """A run's checkpoints (workflow memory) as an escaped HTML table linking to the entries."""
    checkpoints = memory.checkpoints_for_run(run_id)
    if not checkpoints:
        return "no checkpoints"
    query = urlencode({"scope__exact": memory.WORKFLOW, "q": run_id})
    link = f"{reverse('admin:executions_memoryentry_changelist')}?{query}"
    return format_html(
        "<table><tr><th>key</th><th>size</th><th>updated</th><th>value (start)</th></tr>{}</table>"
        '<p><a href="{}">open in memory entries</a></p>',
        format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            ((c.key, human_size(c.size_bytes), c.updated_at, c.preview) for c in checkpoints),
        ),
        link,
    )


def human_size(size: int) -> str:
    """`812 B`, `74.9 KB`, `1.2 MB` (stored size, after PostgreSQL's compression)."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"
