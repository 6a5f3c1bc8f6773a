"""The executions admin as a console: prefix search, per-execution buttons, every action in Recent actions."""

from __future__ import annotations

import re

import pytest
from django.contrib.admin.models import LogEntry
from django.utils import timezone

from executions.models import Execution, TraceEntry
from tests.executions.test_admin import make
from tests.factories import make_node

pytestmark = pytest.mark.django_db


def test_search_matches_the_start_of_an_execution_or_run_id(admin_client):
    make(id="exec_1764680000000_ab12cd34", run_id="run_1764680000000_ffff0000")
    make(id="exec_1764689999999_00000000", run_id="run_other")
    by_id = admin_client.get("/admin/executions/execution/", {"q": "exec_176468000"}).content.decode()
    assert "exec_1764680000000_ab12cd34" in by_id and "exec_1764689999999_00000000" not in by_id
    by_run = admin_client.get("/admin/executions/execution/", {"q": "run_17646800"}).content.decode()
    assert "exec_1764680000000_ab12cd34" in by_run and "exec_1764689999999_00000000" not in by_run


def test_an_execution_page_is_a_view_with_buttons_for_what_its_status_allows(admin_client):
    running = make("running", id="exec_admin_running")
    failed = make("failed", id="exec_admin_failed", completed_at=timezone.now())
    page = admin_client.get(f"/admin/executions/execution/{running.id}/change/").content.decode()
    assert "View execution" in page and 'name="_save"' not in page
    assert re.findall(r'action="/dashboard/executions/[^/]+/(\w+)/"', page) == ["cancel"]
    page = admin_client.get(f"/admin/executions/execution/{failed.id}/change/").content.decode()
    assert re.findall(r'action="/dashboard/executions/[^/]+/(\w+)/"', page) == ["requeue", "restart"]


def test_a_button_on_the_admin_page_acts_goes_back_there_and_is_logged(admin_client):
    running = make("running", id="exec_admin_button")
    admin_url = f"/admin/executions/execution/{running.id}/change/"
    answer = admin_client.post(f"/dashboard/executions/{running.id}/cancel/", {"next": admin_url})
    assert answer["Location"] == admin_url
    assert Execution.objects.get(id=running.id).status == "cancelled"
    assert LogEntry.objects.get(object_id=running.id).change_message == "Cancelled. (the admin)"
    history = admin_client.get(f"/admin/executions/execution/{running.id}/history/").content.decode()
    assert "<td>admin</td>" in history and "Cancelled. (the admin)" in history


@pytest.mark.parametrize(
    ("action", "status", "message"),
    [
        ("cancel_executions", "running", "Cancelled (the admin)."),
        ("requeue_executions", "failed", "Re-queued under the same ids. (the admin)"),
        ("restart_executions", "failed", "Restarted as exec_"),
    ],
)
def test_every_bulk_action_leaves_an_entry_per_execution_in_recent_actions(admin_client, action, status, message):
    make_node("batch", reasoners=("process_corpus",))
    rows = [make(status, id=f"exec_bulk_{n}", completed_at=timezone.now() if status == "failed" else None)
            for n in range(2)]  # fmt: skip
    admin_client.post("/admin/executions/execution/", {"action": action, "_selected_action": [r.id for r in rows]})
    entries = LogEntry.objects.filter(object_id__in=[r.id for r in rows])
    assert entries.count() == 2
    assert all(e.user.username == "admin" and e.change_message.startswith(message) for e in entries)
    index = admin_client.get("/admin/").content.decode()
    assert all(f">{row.id}</a>" in index for row in rows)  # the "Recent actions" box lists them


def test_the_admin_page_shows_the_newest_trace_lines_without_debug_and_links_to_the_whole_trace(admin_client):
    execution = make("running", id="exec_admin_trace")
    now = timezone.now()
    TraceEntry.objects.bulk_create(
        TraceEntry(execution_id=execution.id, kind="log", level="debug" if n % 2 else "info",
                   message=f"line {n}:", created_at=now)
        for n in range(200)
    )  # fmt: skip
    page = admin_client.get(f"/admin/executions/execution/{execution.id}/change/").content.decode()
    assert "line 198:" in page and "line 100:" in page and "line 98:" not in page and "line 199:" not in page
    assert f'href="/dashboard/executions/{execution.id}/#trace"' in page
