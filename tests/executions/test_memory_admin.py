"""The memory admin: a view-only browser of checkpoints with sizes and pretty JSON."""

import pytest

from executions import memory
from executions.memory import ScopeRef
from executions.memory_admin import human_size
from executions.models import MemoryEntry

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/executions/memoryentry/"


@pytest.fixture
def entries(now):
    memory.set_entry(
        ScopeRef("workflow", "run_abc"), "results", [{"item": i, "summary": "s" * 40} for i in range(500)], now
    )
    memory.set_entry(ScopeRef("workflow", "run_abc"), "done", 500, now)
    memory.set_entry(ScopeRef("session", "sess-9"), "topic", {"name": "<b>bold</b>"}, now)


def test_changelist_shows_scope_key_and_size(admin_client, entries):
    response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    page = response.content.decode()
    assert "run_abc" in page and "results" in page and "sess-9" in page
    assert " KB" in page  # the results list's stored size


def test_changelist_filters_by_scope_and_searches(admin_client, entries):
    page = admin_client.get(CHANGELIST, {"scope__exact": "session"}).content.decode()
    assert "sess-9" in page and "run_abc" not in page
    page = admin_client.get(CHANGELIST, {"q": "run_abc"}).content.decode()
    assert "run_abc" in page and "sess-9" not in page


def test_change_page_is_read_only_pretty_json(admin_client, entries):
    entry = MemoryEntry.objects.get(key="topic")
    response = admin_client.get(f"{CHANGELIST}{entry.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "&quot;name&quot;: &quot;&lt;b&gt;bold&lt;/b&gt;&quot;" in page  # indented JSON, escaped
    assert 'name="_save"' not in page
    assert admin_client.post(f"{CHANGELIST}{entry.pk}/change/", {"key": "x"}).status_code == 403


def test_an_entry_can_be_deleted_to_reset_a_checkpoint(admin_client, entries):
    entry = MemoryEntry.objects.get(key="done")
    response = admin_client.post(f"{CHANGELIST}{entry.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not MemoryEntry.objects.filter(pk=entry.pk).exists()


def test_human_size():
    assert [human_size(n) for n in (0, 1023, 1024, 1536, 3 * 1024 * 1024)] == [
        "0 B",
        "1023 B",
        "1.0 KB",
        "1.5 KB",
        "3.0 MB",
    ]


def test_execution_detail_shows_the_run_checkpoints(admin_client, entries, now):
    from executions.models import Execution

    Execution.objects.create(
        id="exec_ckpt", run_id="run_abc", node_id="batch", target_name="process_corpus", status="running",
        input={}, run_at=now, created_at=now, updated_at=now,
    )  # fmt: skip
    page = admin_client.get("/admin/executions/execution/exec_ckpt/change/").content.decode()
    assert "Checkpoints (memory of the run)" in page
    assert "<td>done</td>" in page and "<td>results</td>" in page and "<code>500</code>" in page
    assert "sess-9" not in page  # another scope
    assert "/admin/executions/memoryentry/?scope__exact=workflow&amp;q=run_abc" in page
