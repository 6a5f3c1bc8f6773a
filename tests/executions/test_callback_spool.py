"""Terminal callbacks kept on disk while the database was away, applied once it is back."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from executions import callback_spool
from executions.models import Execution
from tests.factories import make_execution

pytestmark = pytest.mark.django_db


def running() -> Execution:
    return make_execution(status="running", attempt=1, node_instance_id="instance-1")


def test_a_kept_callback_is_applied_with_the_time_it_arrived_and_then_forgotten():
    execution = running()
    arrived = timezone.now() - timedelta(seconds=40)
    assert callback_spool.keep(execution.id, {"status": "completed", "result": {"n": 3}}, arrived)
    assert len(callback_spool.pending()) == 1
    assert callback_spool.replay() == 1
    execution.refresh_from_db()
    assert (execution.status, execution.result, execution.completed_at) == ("succeeded", {"n": 3}, arrived)
    assert callback_spool.pending() == []


def test_the_first_kept_callback_of_an_execution_wins():
    execution = running()
    callback_spool.keep(execution.id, {"status": "failed", "error": "boom"}, timezone.now())
    callback_spool.keep(execution.id, {"status": "succeeded", "result": 1}, timezone.now())
    callback_spool.replay()
    execution.refresh_from_db()
    assert (execution.status, execution.error) == ("failed", "boom")


def test_a_callback_for_a_finished_or_unknown_execution_is_dropped_without_harm():
    finished = make_execution(status="succeeded", result={"first": True})
    callback_spool.keep(finished.id, {"status": "failed", "error": "late"}, timezone.now())
    callback_spool.keep("exec_nobody", {"status": "succeeded", "result": 1}, timezone.now())
    assert callback_spool.replay() == 2
    finished.refresh_from_db()
    assert (finished.status, finished.result) == ("succeeded", {"first": True})
    assert callback_spool.pending() == []


def test_files_are_whole_json_records_named_after_no_user_text(settings):
    execution = running()
    callback_spool.keep(execution.id, {"status": "succeeded", "result": "../../etc"}, timezone.now())
    (path,) = callback_spool.pending()
    assert path.parent == callback_spool.spool_dir()
    assert execution.id not in path.name and len(path.stem) == 64
    assert json.loads(path.read_text())["execution_id"] == execution.id


def test_a_full_spool_keeps_nothing_more(settings):
    settings.AGENTFIELD_CALLBACK_SPOOL_MAX_FILES = 2
    kept = [callback_spool.keep(f"exec_{n}", {"status": "succeeded"}, timezone.now()) for n in range(3)]
    assert kept == [True, True, False]
    assert len(callback_spool.pending()) == 2
