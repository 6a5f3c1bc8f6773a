"""Scope resolution (pure) and the memory operations on a real PostgreSQL."""

from datetime import timedelta

import pytest
from django.utils import timezone

from executions import memory
from executions.exceptions import InvalidMemoryRequest
from executions.memory import ScopeRef
from executions.models import MemoryEntry

ALL_HEADERS = {"X-Workflow-ID": "run_1", "X-Session-ID": "s-1", "X-Actor-ID": "a-1"}


def test_unscoped_write_goes_to_the_first_present_header():
    assert memory.write_ref(None, ALL_HEADERS) == ScopeRef("workflow", "run_1")
    assert memory.write_ref(None, {"X-Session-ID": "s-1", "X-Actor-ID": "a-1"}) == ScopeRef("session", "s-1")
    assert memory.write_ref(None, {"X-Actor-ID": "a-1"}) == ScopeRef("actor", "a-1")
    assert memory.write_ref(None, {}) == ScopeRef("global", "global")


def test_unscoped_read_tries_workflow_session_actor_then_global():
    assert memory.read_refs(None, ALL_HEADERS) == [
        ScopeRef("workflow", "run_1"),
        ScopeRef("session", "s-1"),
        ScopeRef("actor", "a-1"),
        ScopeRef("global", "global"),
    ]
    assert memory.read_refs(None, {"X-Actor-ID": "a-1"}) == [ScopeRef("actor", "a-1"), ScopeRef("global", "global")]


def test_explicit_scope_takes_its_id_from_its_header():
    assert memory.write_ref("session", ALL_HEADERS) == ScopeRef("session", "s-1")
    assert memory.read_refs("actor", ALL_HEADERS) == [ScopeRef("actor", "a-1")]
    assert memory.write_ref("global", ALL_HEADERS) == ScopeRef("global", "global")


def test_explicit_scope_without_its_header_is_rejected():
    with pytest.raises(InvalidMemoryRequest, match="X-Session-ID"):
        memory.write_ref("session", {"X-Workflow-ID": "run_1"})


@pytest.mark.parametrize("scope", ["run", "WORKFLOW", 3, ["global"]])
def test_unknown_scope_is_rejected(scope):
    with pytest.raises(InvalidMemoryRequest, match="unknown scope"):
        memory.check_scope(scope)


@pytest.mark.parametrize("key", [None, "", 7, ["k"], "k" * (memory.MAX_KEY_LENGTH + 1)])
def test_bad_keys_are_rejected(key):
    with pytest.raises(InvalidMemoryRequest):
        memory.check_key(key)


def test_key_at_the_length_limit_is_accepted():
    assert memory.check_key("k" * memory.MAX_KEY_LENGTH)


@pytest.mark.django_db
def test_set_is_one_statement_and_upserts(now, django_assert_num_queries):
    ref = ScopeRef("workflow", "run_1")
    with django_assert_num_queries(1):
        first = memory.set_entry(ref, "done", 1, now)
    later = now + timedelta(seconds=5)
    with django_assert_num_queries(1):
        second = memory.set_entry(ref, "done", 2, later)
    assert second.id == first.id
    stored = MemoryEntry.objects.get()
    assert (stored.data, stored.created_at, stored.updated_at) == (2, now, later)
    assert second.created_at == now


@pytest.mark.django_db
def test_set_refuses_null_data(now):
    with pytest.raises(InvalidMemoryRequest, match="null"):
        memory.set_entry(ScopeRef("global", "global"), "k", None, now)
    assert not MemoryEntry.objects.exists()


@pytest.mark.django_db
def test_get_returns_the_first_scope_that_holds_the_key_in_one_query(now, django_assert_num_queries):
    memory.set_entry(ScopeRef("global", "global"), "k", "from global", now)
    memory.set_entry(ScopeRef("session", "s-1"), "k", "from session", now)
    refs = memory.read_refs(None, ALL_HEADERS)
    with django_assert_num_queries(1):
        assert memory.get_entry(refs, "k").data == "from session"
    memory.set_entry(ScopeRef("workflow", "run_1"), "k", "from workflow", now)
    assert memory.get_entry(refs, "k").data == "from workflow"
    assert memory.get_entry(refs, "missing") is None


@pytest.mark.django_db
@pytest.mark.parametrize("data", [{"a": [1, 2.5, None, True], "ü": "ünïcode"}, [], "text", 0, False])
def test_get_answers_the_stored_entry_as_the_orm_reads_it(now, data):
    ref = ScopeRef("actor", "a-1")
    memory.set_entry(ref, "k", data, now)
    memory.set_entry(ScopeRef("actor", "someone-else"), "k", "not this one", now)
    found = memory.get_entry([ScopeRef("session", "s-none"), ref], "k")
    stored = MemoryEntry.objects.get(scope="actor", scope_id="a-1", key="k")
    fields = ("id", "scope", "scope_id", "key", "data", "created_at", "updated_at")
    assert [getattr(found, name) for name in fields] == [getattr(stored, name) for name in fields]


@pytest.mark.django_db
def test_delete_reports_whether_the_key_existed(now):
    ref = ScopeRef("actor", "a-1")
    memory.set_entry(ref, "k", {"x": 1}, now)
    assert memory.delete_entry(ref, "k", timezone.now()) is True
    assert memory.delete_entry(ref, "k", timezone.now()) is False


@pytest.mark.django_db
def test_checkpoints_for_run_lists_the_run_workflow_scope_without_data(now):
    memory.set_entry(
        ScopeRef("workflow", "run_1"), "results", [{"item": i, "summary": "x" * 50} for i in range(100)], now
    )
    memory.set_entry(ScopeRef("workflow", "run_1"), "done", 100, now)
    memory.set_entry(ScopeRef("workflow", "run_2"), "done", 3, now)
    memory.set_entry(ScopeRef("session", "run_1"), "other", 3, now)
    checkpoints = memory.checkpoints_for_run("run_1")
    assert [c.key for c in checkpoints] == ["done", "results"]
    done, results = checkpoints
    assert done.preview == "100"
    assert len(results.preview) == memory.PREVIEW_CHARS and results.preview.startswith('[{"item": 0')
    assert results.size_bytes > done.size_bytes > 0
    assert results.updated_at == now


@pytest.mark.parametrize("scope", [None, "workflow"])
def test_scope_ids_the_table_cannot_hold_are_rejected(scope):
    with pytest.raises(InvalidMemoryRequest, match="longer than 255"):
        memory.write_ref(scope, {"X-Workflow-ID": "r" * 256})
    with pytest.raises(InvalidMemoryRequest, match="NUL"):
        memory.read_refs(scope, {"X-Workflow-ID": "run\x00"})
