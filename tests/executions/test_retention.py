"""Retention: old finished executions go with everything kept about them; active ones and live runs stay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from executions import retention
from executions.housekeeping import Housekeeper
from executions.memory import ScopeRef, set_entry
from executions.models import AgentNotice, Approval, Execution, ExecutionEvent, MemoryEntry, TraceEntry
from tests.factories import make_execution, make_node
from tests.webhooks.factories import delivery as make_delivery
from webhooks.models import Delivery, Webhook

pytestmark = pytest.mark.django_db


@pytest.fixture
def old_and_new(settings):
    settings.AGENTFIELD_RETENTION_DAYS = 30
    now = timezone.now()
    long_ago = now - timedelta(days=40)
    node = make_node()
    old = make_execution(node, status="succeeded", created_at=long_ago, completed_at=long_ago, run_id="run_old")
    sibling = make_execution(node, status="running", created_at=long_ago, run_id="run_live")  # active: stays
    finished_in_live_run = make_execution(
        node, status="failed", created_at=long_ago, completed_at=long_ago, run_id="run_live"
    )
    recent = make_execution(node, status="succeeded", created_at=now, completed_at=now, run_id="run_new")
    for execution in (old, finished_in_live_run, recent):
        ExecutionEvent.objects.create(id=ExecutionEvent.objects.count() + 1, execution_id=execution.id, run_id=execution.run_id,
                                      node_id=node.id, target="t", type="execution_completed", status="succeeded",
                                      created_at=long_ago)  # fmt: skip
        TraceEntry.objects.create(execution_id=execution.id, kind="note", message="m", created_at=long_ago)
        AgentNotice.objects.create(
            execution_id=execution.id, node_id=node.id, next_attempt_at=long_ago, created_at=long_ago
        )
    Approval.objects.create(execution=old, approval_request_id="r", requested_at=long_ago, expires_at=long_ago)
    make_delivery("https://hooks.example.com/x", long_ago, execution_id=old.id)
    for run in ("run_old", "run_live", "run_new"):
        set_entry(ScopeRef("workflow", run), "progress", {"n": 1}, long_ago)
    return {"old": old, "sibling": sibling, "finished_in_live_run": finished_in_live_run, "recent": recent, "now": now}


def test_a_batch_prunes_old_finished_executions_and_what_hangs_off_them(old_and_new):
    pruned = retention.prune_batch(old_and_new["now"])
    assert (pruned.executions, pruned.events, pruned.trace_entries, pruned.approvals) == (2, 2, 2, 1)
    assert (pruned.agent_notices, pruned.webhook_deliveries, pruned.memory_entries) == (2, 1, 1)
    assert set(Execution.objects.values_list("id", flat=True)) == {old_and_new["sibling"].id, old_and_new["recent"].id}
    assert not Webhook.objects.exists() and not Delivery.objects.exists()
    # The live run keeps its checkpoints (a restart with same_run resumes from them); the new run too.
    assert set(MemoryEntry.objects.values_list("scope_id", flat=True)) == {"run_live", "run_new"}
    assert retention.prune_batch(old_and_new["now"]).executions == 0


def test_the_dry_run_counts_exactly_what_pruning_deletes(old_and_new):
    expected = retention.would_prune(old_and_new["now"])
    assert expected == retention.prune_batch(old_and_new["now"])


def test_the_command_prints_what_it_would_delete_and_then_deletes_it(old_and_new, capsys):
    call_command("prune", "--dry-run")
    assert "would delete" in capsys.readouterr().out and Execution.objects.count() == 4
    call_command("prune", "--batch", "1")
    assert "deleted" in capsys.readouterr().out and Execution.objects.count() == 2


def test_retention_zero_keeps_everything(old_and_new, settings, capsys):
    settings.AGENTFIELD_RETENTION_DAYS = 0
    assert retention.prune_batch(old_and_new["now"]).executions == 0
    call_command("prune")
    assert "retention is off" in capsys.readouterr().out and Execution.objects.count() == 4


def test_the_housekeeper_works_through_a_backlog_then_rests_a_minute(old_and_new):
    clock = {"now": old_and_new["now"]}
    keeper = Housekeeper(clock=lambda: clock["now"])
    assert keeper.run_once() is True and Execution.objects.count() == 2  # a batch went: more may be due
    assert keeper.run_once() is False  # nothing left: it rests
    make_execution(make_node(), status="failed", created_at=clock["now"] - timedelta(days=90),
                   completed_at=clock["now"] - timedelta(days=90))  # fmt: skip
    assert keeper.run_once() is False and Execution.objects.count() == 3  # not before the minute is over
    clock["now"] += timedelta(minutes=1)
    assert keeper.run_once() is True and Execution.objects.count() == 2


def test_a_batch_deletes_its_executions_without_loading_them(old_and_new, django_assert_num_queries):
    # QuerySet.delete() would load every execution as a model to cascade to its approvals in Python:
    # over half of a batch's time (bench scenario 10). The batch deletes the approvals itself, which
    # is enough only while Approval is the one model that points at an execution.
    assert [relation.related_model for relation in Execution._meta.related_objects] == [Approval]
    with django_assert_num_queries(17) as captured:  # 19 with QuerySet.delete()
        retention.prune_batch(old_and_new["now"])
    assert not [query for query in captured.captured_queries if '"executions_execution"."input"' in query["sql"]]


def test_through_a_backlog_each_batch_starts_where_the_previous_one_ended(settings):
    # The index entries of deleted rows stay until VACUUM: from the oldest row, every batch would
    # step over all of them (bench scenario 10: 180 ms a batch after 4M rows, growing with each).
    settings.AGENTFIELD_RETENTION_DAYS = 30
    now, node = timezone.now(), make_node()

    def finished(days: int) -> Execution:
        moment = now - timedelta(days=days)
        return make_execution(node, status="succeeded", created_at=moment, completed_at=moment)

    fifty, forty = finished(50), finished(40)
    first = retention.prune_batch(now, limit=1)
    assert first.executions == 1 and first.resume_at == fifty.created_at
    older = finished(60)  # created before the cursor: the next backlog's, not this one's
    second = retention.prune_batch(now, limit=1, resume_at=first.resume_at)
    assert second.resume_at == forty.created_at and not Execution.objects.filter(pk=forty.pk).exists()
    done = retention.prune_batch(now, limit=1, resume_at=second.resume_at)
    assert (done.executions, done.resume_at) == (0, None) and Execution.objects.filter(pk=older.pk).exists()
    assert retention.prune_batch(now, limit=1).executions == 1 and not Execution.objects.exists()
